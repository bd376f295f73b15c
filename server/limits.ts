/**
 * Every limit and default of the recording side of the server in one place (units last).
 *
 * How they relate: an ingest body (HTTP NDJSON) is at most ingestBodyBytesMax and one of
 * its lines at most ingestLineBytesMax; a WebSocket ingest message is bounded by the app's
 * wsMaxPayloadBytes (server/app.ts), and at most wsIngestPendingMessagesMax of them wait on
 * one socket before it stops reading (TCP then pushes back on the sender). Lines are appended in slices of ingestSliceLines so
 * one large body never holds the event loop for long. A poller's response body is read up
 * to sourceResponseBytesMax, and every poller's together up to sourceResponseBytesInFlightMax; a JSON document exploded to leaves yields at most
 * leafUpdatesMax updates (the storage engine refuses batches past 1 000 000 updates).
 * Whatever a source produces goes straight to the archive writer, whose own queue limits
 * (storage/limits.ts) push back: the recorder awaits drain() past the high-water mark,
 * so the only buffers here are the ones named below.
 */
export const SERVER_LIMITS = {
  /** Largest HTTP NDJSON ingest body. */
  ingestBodyBytesMax: 64 * 1024 * 1024,
  /** Largest single NDJSON line (one batch). */
  ingestLineBytesMax: 16 * 1024 * 1024,
  /** Lines appended between two yields to the event loop. */
  ingestSliceLines: 50,
  /** Rejected lines described in one ingest response (the count is always exact). */
  ingestRejectionsListedMax: 100,
  /**
   * Bad lines read from one ingest body or WebSocket message before reading stops with
   * TPD_TOO_MANY_BAD_LINES: refusing garbage costs at most this many parse failures
   * (each builds an error with a stack), whatever the body's size.
   */
  ingestBadLinesMax: 1000,
  /** Retry-After (seconds) when ingest meets a full write queue (TPD_BACKPRESSURE): it drains at disk pace. */
  ingestBackpressureRetryAfterS: 1,
  /** Retry-After (seconds) when the archive's disk is full and the error names no time of its own. */
  ingestDiskFullRetryAfterS: 30,
  /** Retry-After (seconds) when the archive is closed (a shutdown: another instance or a restart takes over). */
  ingestClosedRetryAfterS: 5,
  /** WebSocket ingest messages waiting on one socket; past this the socket stops reading. */
  wsIngestPendingMessagesMax: 8,
  /** Largest response body a poller reads from an upstream. */
  sourceResponseBytesMax: 64 * 1024 * 1024,
  /**
   * Response bytes held at once by every poller of the process together (server/sources/response-budget.ts):
   * past it a poll fails rather than the process running out of memory (1 024 scrape targets at sourceResponseBytesMax each).
   */
  sourceResponseBytesInFlightMax: 512 * 1024 * 1024,
  /** Most updates one JSON document may explode into. */
  leafUpdatesMax: 1_000_000,
  /** Deepest JSON nesting exploded to leaves; deeper values are kept whole. */
  leafDepthMax: 32,
  /** Keep-alive sockets per poller upstream. */
  sourceConnectionsMax: 4,
  /** Most paths listed by GET /api/v1/paths. */
  pathsListedMax: 100_000,
  /**
   * Paths a request matches against a spec between two yields to the event loop: a spec of
   * globsPerSpecMax globs costs up to ~10 µs a path, so 200 000 paths took 1.5 s in one piece.
   */
  specPathsPerYield: 4096,
  /**
   * Longest stretch of matching paths against a spec between two yields: with long paths of
   * many segments each glob costs far more than ~10 µs (28 globs over paths of 61 segments
   * took 13 ms a path), so 2000 paths held the event loop 27 s, and a client's leaving went
   * unseen, within specPathsPerYield. The clock is read at every path.
   */
  specSliceMs: 10,
  /** History text gathered before a chunk goes to the response stream (characters). */
  historyChunkCharsTarget: 64 * 1024,
  /**
   * Updates a history answer (any format) reads between two yields to the event loop: read
   * from blocks already decoded, its batches come without a turn of the loop, and twenty
   * Parquet exports starting at once gathered their first row groups in one piece (/health
   * waited over a second).
   */
  historyUpdatesPerYield: 4096,
  /*
   * A history answer whose client stops reading: the answer waits for the socket to take
   * each chunk (backpressure, nothing piles up), but without a bound it waited for ever,
   * holding the connection, a cursor and the decoded block the cursor holds (stuck clients
   * over different ranges each pinned a block beside the shared cache). The client must take
   * each chunk within historyStallMs plus the chunk's bytes at historyReadBytesPerSMin
   * (Parquet row groups may be megabytes); past it the connection is closed, and the body
   * ends without its last chunk (chunked encoding: clients see it cut).
   */
  /** Time a history answer waits for its client to take a chunk, beyond the chunk's own reading time. */
  historyStallMs: 60_000,
  /** The slowest reading a history answer allows for: a chunk of B bytes waits historyStallMs + B / this. */
  historyReadBytesPerSMin: 32 * 1024,
  /**
   * History answers streamed at once; past it a request is refused 503 TPD_BUSY. Each holds
   * a cursor, the decoded block it reads and a chunk in the socket: a hundred clients that
   * stopped reading at different times held 190 MB until historyStallMs let them go, so
   * more of them could exhaust the heap.
   */
  historyAnswersMax: 64,
  /** Retry-After (seconds) of a history request refused for historyAnswersMax. */
  historyBusyRetryAfterS: 5,
  /**
   * /api/v1/state, /api/v1/diff and /api/v1/paths answers built at once
   * (server/routes/answer-gate.ts); a cached latest state is not built. Each build holds a
   * state of every matching path and its JSON text, and parts of it go in one piece: a
   * hundred as-of states of 50 000 paths asked at once held 1.5 GB and /health waited 14 s
   * behind their pieces. More wait their turn, up to jsonAnswersWaitingMax; past it a
   * request is refused 503 TPD_BUSY.
   */
  jsonAnswersBuiltMax: 4,
  /** State, diff and paths requests waiting for one of the jsonAnswersBuiltMax places; past it 503 TPD_BUSY. */
  jsonAnswersWaitingMax: 256,
  /** Retry-After (seconds) of a state, diff or paths request refused for jsonAnswersWaitingMax. */
  jsonAnswersBusyRetryAfterS: 1,
  /**
   * Longest /state or /diff answer, in characters of JSON: they are written whole, and
   * large values (a string of control characters is six times longer as JSON) made one
   * past V8's longest string (2^29 - 24), a 500 TPD_INTERNAL after seconds of building it.
   * Past this they are refused with TPD_ANSWER_TOO_LARGE; /history streams any size.
   */
  jsonAnswerCharsMax: 128 * 1024 * 1024,
  /*
   * Parquet history (server/history-parquet.ts) is written one row group at a time: rows
   * gather until either bound below is reached, then the group is encoded and sent. One
   * export holds about one row group of values plus its encoding (a few times
   * parquetRowGroupValueBytesTarget at most), whatever the range. A single update larger
   * than the target makes a row group of its own (a batch is at most 16 MiB at ingest).
   * Encoding a group is one synchronous call of the writer: at 16 384 rows it holds the
   * event loop for tens of ms (100 000 rows took ~0.5 s), at 2.5 bytes per row of output
   * (node --import tsx test/bench/export.ts). The encodes of all exports take turns, one
   * per turn of the loop, so concurrent exports do not add up into one long hold. Until
   * the footer the writer keeps about 9 KB of metadata per row group (no min/max of the
   * columns of variable length, which it would keep whole): about 0.6 bytes per row.
   */
  /** Rows (updates) in one Parquet row group at most. */
  parquetRowGroupRowsMax: 16_384,
  /** Value bytes (strings, bytes, JSON text, paths, ~16 per row) gathered before a Parquet row group is written. */
  parquetRowGroupValueBytesTarget: 2 * 1024 * 1024,
  /** Record-spec decisions cached per path; past this the cache starts afresh. */
  specCachePathsMax: 1_000_000,
  /** Updates of a batch the recorder turns into columns in its reused scratch arrays; a larger batch gets arrays of its own. */
  recorderScratchUpdatesMax: 65_536,
  /** Glob lists whose matching paths the recorder caches for /api/v1/state; past this it starts afresh. */
  stateGlobListsCachedMax: 1024,
  /**
   * Latest-state answers kept rendered until the next recorded batch (the hot query is
   * polled far more often than a switch reports): bytes in all, and the largest one kept.
   */
  stateBodiesCachedMaxBytes: 8 * 1024 * 1024,
  stateBodyCachedMaxBytes: 256 * 1024,
  /** Most sources in one config. */
  sourcesMax: 256,
  /**
   * Failed authentications (no or unknown token) per client address per minute; after that
   * many the address gets 429 TPD_RATE_LIMITED until the minute is over (token guessing). The
   * per-token rate limit counts only authenticated requests, so this is its counterpart.
   */
  authFailuresPerMinuteMax: 120,
  /** Addresses whose failures are counted at once (and, separately, addresses locked out); past it the oldest count goes. */
  authFailureAddressesMax: 10_000,
  /** Longest reason text kept per source-outage event in the coverage journal (an upstream's error can be long). */
  outageReasonCharsMax: 300,
  /**
   * Prometheus remote write (POST /api/v1/write). The snappy body is read up to
   * remoteWriteBodyBytesMax, and its declared uncompressed length (the block's preamble) must
   * be at most remoteWriteDecodedBytesMax before anything is decompressed, so a small hostile
   * body cannot expand into gigabytes. Prometheus sends at most a few thousand samples per
   * request (queue_config.max_samples_per_send), far below these.
   */
  remoteWriteBodyBytesMax: 32 * 1024 * 1024,
  /** Largest uncompressed WriteRequest, as its snappy preamble declares it (checked before decompressing). */
  remoteWriteDecodedBytesMax: 256 * 1024 * 1024,
  /** Samples in one request (all series); one batch per timestamp, each at most the storage's batch limit. */
  remoteWriteSamplesMax: 1_000_000,
  /** Labels of one series, __name__ included (Prometheus sets no limit; a path holds them all, so keep them sane). */
  remoteWriteLabelsPerSeriesMax: 128,
  /** Series (raw label bytes -> path) remembered so a known series costs one map lookup; past this the cache starts afresh. */
  remoteWriteSeriesCachedMax: 1_000_000,
  /**
   * Recent requests remembered by digest with how far they were recorded, so Prometheus'
   * retry of a request answered 5xx records only what was not, and the retry of one already
   * recorded is answered 204 instead of refused as out of order.
   */
  remoteWriteRequestsRememberedMax: 256,
  /**
   * A request none of whose digests is remembered (the first after a restart: a crash lost
   * the memory) whose samples start at or before the archive's last millisecond is checked
   * against what the archive holds, so that Prometheus' retry of a request recorded whole or
   * in part before the crash records the rest and nothing twice: at most this far back
   * (ms before the archive's last batch); a request reaching further back is judged by its
   * first batch within it (found recorded: the batches before it were recorded before it,
   * and are dropped too; else the request is refused as out of order, as before) ...
   */
  remoteWriteReadBackSpanMsMax: 600_000,
  /** ... and at most this many updates read back; past it, such a request is refused as out of order, as before. */
  remoteWriteReadBackUpdatesMax: 2_000_000,
  /** Retry-After (seconds) on a remote-write answer of 503 for backpressure (Prometheus backs off on its own too). */
  remoteWriteBackpressureRetryAfterS: 1,
  /** Series one scrape may yield (Prometheus' sample_limit); past it the scrape fails and records nothing. */
  scrapeSamplesMax: 1_000_000,
  /** Longest line of a text exposition. */
  scrapeLineBytesMax: 64 * 1024,
  /** Series per scrape target remembered for staleness (those seen in the last scrape). */
  scrapeSeriesTrackedMax: 1_000_000,
  /*
   * The Prometheus query API (server/promql/, docs/prometheus.md): how the promql* limits
   * relate. A query's text is at most promqlQueryCharsMax characters and nests at most
   * promqlNestingDepthMax levels (the tree is walked recursively); a regex matcher is at most
   * promqlRegexCharsMax characters and runs in linear time (server/promql/regex.ts), so
   * matching one label value costs O(regex × value). A query selects at most promqlSeriesMax
   * series and loads at most promqlSamplesMax samples (16 bytes each in memory: the largest
   * query holds about promqlSamplesMax × 16 bytes); a range query has at most
   * promqlPointsPerSeriesMax steps (Prometheus' own 11 000), and its subqueries at most
   * promqlSubqueryStepsMax steps together, their points counted as loaded samples. Evaluation yields to the event
   * loop every promqlSliceMs and gives up after promqlTimeoutMs (a request's `timeout` may
   * only shorten it); at most promqlConcurrentQueriesMax queries and metadata requests (each
   * with at most promqlMatchersMax match[] selectors) run at once, later ones get 503 until
   * one ends.
   */
  /** Longest PromQL query text, in characters. */
  promqlQueryCharsMax: 64 * 1024,
  /** Deepest nesting of a PromQL expression (the tree is walked recursively). */
  promqlNestingDepthMax: 200,
  /** Longest regex in a label matcher, in characters (matched in linear time). */
  promqlRegexCharsMax: 4096,
  /**
   * Repetitions in a label regex, each weighted by the counts around it (`.*.*` 2,
   * `(?:a.*){10}` 10; server/promql/regex.ts repeatWeight): matching a value costs about this
   * many steps per character (~0.5 µs each in V8's linear engine), so one value of a path's
   * 4096 characters costs at most ~0.2 s; 2000 `.*` took 15 s on 10 000 characters.
   */
  promqlRegexRepeatsMax: 100,
  /** Most series one PromQL query may select. */
  promqlSeriesMax: 100_000,
  /** Most samples one PromQL query may load into memory (16 bytes each; Prometheus' --query.max-samples default). */
  promqlSamplesMax: 50_000_000,
  /** Most steps of a range query per series (Prometheus' own 11 000). */
  promqlPointsPerSeriesMax: 11_000,
  /**
   * Most steps at which one query's subqueries evaluate their expression, all subqueries
   * together (each, nested or not, is evaluated once over the steps of what it is in:
   * server/promql/subquery.ts); checked before a subquery runs, so `x[100d:1ms]` is refused
   * at once (422 execution). Prometheus has no such bound (a subquery's points count against
   * its max-samples, as here against promqlSamplesMax), but a subquery of no series costs a
   * step without a point: a year at 1 ms is 3·10¹⁰ steps. `max_over_time(x[1d:1s])` over a
   * week's range query is ~700 000.
   */
  promqlSubqueryStepsMax: 2_000_000,
  /** Evaluation yields to the event loop at least this often. */
  promqlSliceMs: 10,
  /** Longest evaluation of one query; a request's `timeout` may only shorten it. */
  promqlTimeoutMs: 120_000,
  /**
   * Characters of a label value label_replace or label_join makes (a path's own limit,
   * protocol pathCharsMax); longer is a 422 execution error, checked as the value is built:
   * a replacement of thousands of `$0` would otherwise make megabytes a series.
   */
  promqlLabelValueCharsMax: 4096,
  /** Queries and metadata requests evaluated at once; later ones get 503 until one ends. */
  promqlConcurrentQueriesMax: 20,
  /**
   * match[] selectors of one metadata request (/api/v1/series, /labels, /label/<name>/values;
   * each is parsed and matched against every series); more is 400 bad_data. Grafana sends one.
   */
  promqlMatchersMax: 64,
  /** Series, label names or label values listed by one metadata request (/api/v1/series, /labels, /label/<name>/values). */
  promqlListedMax: 100_000,
  /**
   * Series read at once by a streaming range query (server/promql/stream.ts): its samples are
   * what it holds, with one number per step per group. Small, so that a batch's decoded
   * chunks and sample arrays stay in the CPU's caches (32 series of a day at 15 s: ~3 MB):
   * a day of 10 000 series took 25-30 % less CPU with 32 than with 256 (16 and 64 alike).
   */
  promqlStreamSeriesBatch: 32,
  /**
   * Parsed queries kept by their text (server/promql/parse-cache.ts), least recently used
   * dropped first, and the longest text kept: at most about 256 × 4 096 characters of
   * queries and their trees. Parsing a query costs about as much CPU as evaluating one
   * series over a day; dashboards send the same queries at every refresh.
   */
  promqlParsedQueriesMax: 256,
  /** Longest query text the parse cache keeps (longer ones are parsed every time): bounds the cache's memory with promqlParsedQueriesMax. */
  promqlParsedQueryCharsMax: 4096,
  /*
   * "What changed" (GET /api/v1/diff, server/diff.ts, server/diff-pass.ts): one forward pass by columns over (start, end]
   * after one state read at start. Each list of the answer (changed, appeared, disappeared
   * paths) holds at most diffPathsListedMax entries (about 150 bytes each in JSON, so the
   * body stays under a few MB) with `truncated` set past it; the pass yields to the event
   * loop every diffSliceMs and gives up after diffTimeBudgetMs (a day of 10 k paths takes
   * about half a second of CPU: npm run bench:diff).
   */
  /** Paths listed in each list of a diff answer; the counts stay exact past it. */
  diffPathsListedMax: 10_000,
  /** Longest diff pass; past it the request ends with TPD_QUERY_TIMEOUT. */
  diffTimeBudgetMs: 10_000,
  /** The diff pass yields to the event loop at least this often. */
  diffSliceMs: 10,
  /*
   * The workspace (server/workspace/store.ts): bookmarks and named layouts kept beside the
   * archive in one small JSON file, rewritten whole on each change. Its largest size is about
   * workspaceBookmarksMax × (bookmarkNoteBytesMax + bookmarkUrlBytesMax) plus
   * workspaceLayoutsMax × workspaceLayoutBytesMax: under 20 MiB, read once at start.
   */
  /** Bookmarks kept; adding one more answers 400 TPD_BAD_ARGUMENT. */
  workspaceBookmarksMax: 1000,
  /** A bookmark's note, in UTF-8 bytes (413 TPD_BODY_TOO_LARGE past it). */
  bookmarkNoteBytesMax: 2048,
  /** A bookmark's URL state (the player's query string), in UTF-8 bytes. */
  bookmarkUrlBytesMax: 8192,
  /** Named layouts kept; a new name past it answers 400 TPD_BAD_ARGUMENT. */
  workspaceLayoutsMax: 200,
  /** One layout as JSON text, in UTF-8 bytes (413 TPD_BODY_TOO_LARGE past it). */
  workspaceLayoutBytesMax: 64 * 1024,
  /*
   * Session streams (server/routes/sessions.ts) and a client that does not read. The session's
   * loop sends batches, state and coverage only while fewer than wsBufferHighBytes
   * (PLAYBACK_DEFAULTS) were sent past the client's last answered ping (in the server or the
   * kernels' buffers), and its control frames are rate-limited, so a client that does not read
   * cannot make frames pile up by asking. What may still come (controls frames of REST
   * changes, errors, info) is counted from the moment the stream is over the mark: past
   * wsSessionOverflowBytesMax the stream closes with 4008 `unresponsive` (protocol/close-codes.ts). Every wsPingIntervalMs the
   * server pings each stream; one that has not answered the ping before within
   * wsPongTimeoutMs (a peer gone without a FIN, a client that stopped reading) closes with
   * 4008 too (the push ingest WebSocket is pinged the same way, server/routes/ws-liveness.ts,
   * except while the server itself has paused it). A ping waits behind every byte sent before
   * it (in the kernel's buffers too: megabytes), so its pong has wsPongTimeoutMs plus the
   * time to read those bytes at wsReadBytesPerSMin (a session stream's backlog stays within
   * about wsBufferHighBytes, so its peer gone is found within wsPongTimeoutMs plus that). A stream whose close handshake does not
   * finish within wsCloseGraceMs is cut. A stream over the mark then holds at most
   * wsBufferHighBytes plus one frame plus wsSessionOverflowBytesMax, and a session whose
   * client is gone is detached and collected.
   */
  /** Frames queued on a session stream while it is over wsBufferHighBytes before it closes with 4008: the answers sent at once (controls, error, info, end, gap); the loop's batch, state, coverage and paths frames wait for the client to be under the mark and never count. */
  wsSessionOverflowBytesMax: 4 * 1024 * 1024,
  /** How often the server pings every session stream and ingest WebSocket. */
  wsPingIntervalMs: 30_000,
  /** A session stream or ingest WebSocket that answers no ping within this closes with 4008 (at least wsPingIntervalMs after the ping). */
  wsPongTimeoutMs: 60_000,
  /** The slowest reading the pong wait allows for: a ping behind B unread bytes has wsPongTimeoutMs + B / this to be answered. */
  wsReadBytesPerSMin: 32 * 1024,
  /** Time for a client to answer a close before its socket is cut (ws's own wait is 30 s). */
  wsCloseGraceMs: 5_000,
  /**
   * Answers of the push ingest WebSocket waiting in the server for a client that does not
   * read them (past what the kernels' buffers took) before it closes with 4008: a pusher
   * that sent and never read held every answer (one of a message of bad lines lists a
   * hundred of them) for as long as its pings allowed, and its pong deadline grows with
   * what was sent. The messages of the socket not yet ingested are then dropped, unanswered.
   */
  wsIngestAnswersWaitingBytesMax: 4 * 1024 * 1024,
  /*
   * HTTP requests arriving slowly (slowloris): fastify turns Node's request timeout off, and
   * without it Node enforces no headers timeout either, so a client trickling headers or a
   * body byte by byte held its connection (and a file descriptor) for ever. A request's
   * headers must arrive within httpHeadersTimeoutMs and the whole request, body included,
   * within httpRequestTimeoutMs (an ingest body of ingestBodyBytesMax then needs about
   * 220 KB/s); connections are checked every httpTimeoutsCheckMs. Past either the client
   * gets 408 TPD_REQUEST_TIMEOUT and the connection closes. Answers (a long history export,
   * a WebSocket stream) are not bounded by these.
   *
   * An answer whose client does not read it: once the answer is complete on the server's side
   * (its last byte handed to the socket), Node keeps what the kernel has not taken in the
   * socket's buffer until the client reads it, with no timeout (the keep-alive timeout starts
   * only once all of it is taken), so twenty clients asking a 30 MB /state and reading
   * nothing held 1.1 GB and their connections for ever. What is left must be taken within
   * httpAnswerStallMs plus its bytes at httpReadBytesPerSMin; past it the connection is cut
   * (the client sees its answer end short). A history answer is also bounded chunk by chunk
   * (historyStallMs); this bounds its last chunk.
   */
  /** The headers of a request must all arrive within this. */
  httpHeadersTimeoutMs: 60_000,
  /** A whole request, headers and body, must arrive within this. */
  httpRequestTimeoutMs: 300_000,
  /** How often connections are checked against the two timeouts above. */
  httpTimeoutsCheckMs: 1_000,
  /** Time a complete answer waits for its client to take what is left of it, beyond that part's own reading time. */
  httpAnswerStallMs: 60_000,
  /** The slowest reading an answer allows for: B bytes left when it is complete wait httpAnswerStallMs + B / this. */
  httpReadBytesPerSMin: 32 * 1024,
  /**
   * Connections (HTTP and WebSocket) the server holds at once; past it a new connection is
   * closed at once (Node's server.maxConnections). Without a cap, idle connections took every
   * file descriptor the process may open (400 of them under `ulimit -n 300`) and the archive's
   * own files failed with EMFILE (a coverage event was lost). The cap is the smaller of this
   * and httpConnectionsFdShare of the process's open-file limit, so the rest stays the archive's.
   */
  httpConnectionsMax: 8_192,
  /** Share of the open-file limit (soft RLIMIT_NOFILE, from /proc/self/limits) connections may take. */
  httpConnectionsFdShare: 0.5,
  /**
   * Connections one client address holds at once (HTTP and WebSocket, counted as they
   * arrive, before any byte is parsed); past it a new connection from that address is closed
   * at once, and other addresses are served. Without it one address opening the whole cap of
   * idle connections locked every other client out. The limit is the smaller of this and
   * httpConnectionsPerAddressShare of the connection cap (1 024 of 8 192; 18 of 150 under
   * `ulimit -n 300`), so at least eight clients always find room; an IPv6 client counts by
   * its /64. Behind a reverse proxy every client is the proxy's address: raise it with
   * publish.max_connections_per_address (up to the cap) and let the proxy limit each client.
   */
  httpConnectionsPerAddressMax: 1024,
  /** Share of the connection cap one address may hold (see httpConnectionsPerAddressMax). */
  httpConnectionsPerAddressShare: 0.125,
  /** Time granted to in-flight requests and sources at shutdown before connections are cut. */
  shutdownGraceMs: 10_000,
  /** Cluster: pushed paths whose owner (another shard, or none) is remembered; cleared whole past it. */
  clusterOwnerCachePathsMax: 100_000,
  /** Cluster: how often a Kafka partition whose last batch is in doubt asks Redis again whether it was resolved. */
  clusterInDoubtPollMs: 250,
  /*
   * Merged cluster reads (docs/cluster.md, "Merged reads"): a merged answer waits at most
   * clusterShardAnswerTimeoutMs for each shard's headers and clusterShardIdleTimeoutMs between
   * two chunks of a shard's body; a shard slower than that is named missing, never waited for
   * longer. A merged session reads one batch ahead per shard (the rest waits in the shard's
   * socket: TCP pushes back), so N shards hold N batches plus the sockets' buffers.
   */
  /** Cluster reads: time for one shard to send the headers of its answer before it is named missing. */
  clusterShardAnswerTimeoutMs: 2_000,
  /** Cluster reads: silence allowed between two chunks of a shard's streamed body (history, session feed). */
  clusterShardIdleTimeoutMs: 10_000,
  /** Cluster reads: longest Tapedeck-Partial header; past it the missing shards not named are counted (the body names every one). */
  clusterPartialHeaderCharsMax: 2048,
  /** Cluster reads: time for the next record of a shard's stream (a history line or row, a session's batch) to arrive whole once asked for; a shard that dribbles it is lost. */
  clusterShardRecordMs: 15_000,
  /** Cluster reads: time for one shard's whole JSON answer (paths, state, coverage, steps, update times: headers and body) before it is named missing, however it dribbles. */
  clusterShardJsonAnswerMs: 15_000,
  /** Cluster reads: time for one shard's probe (a StaticDirectory's GET /api/v1/shard) before it counts as not live. */
  clusterShardProbeTimeoutMs: 1_000,
  /** Cluster reads: largest answer of one shard's probe (GET /api/v1/shard: its horizon and whether it records). */
  clusterShardProbeBytesMax: 4096,
  /** Cluster reads: how long a StaticDirectory reuses its last probe of the shards. */
  clusterShardProbeCacheMs: 100,
  /** Cluster reads: keep-alive connections this node keeps to each shard. */
  clusterShardConnectionsMax: 64,
  /** Cluster reads: largest JSON answer read from one shard (paths, state, coverage). */
  clusterShardAnswerBytesMax: 256 * 1024 * 1024,
  /** Cluster reads: bytes of shards' JSON answers held while being read, all requests of the process together; past it the answer that grows it is dropped and its shard named missing. */
  clusterShardAnswersHeldBytesMax: 512 * 1024 * 1024,
  /**
   * Cluster reads: longest NDJSON or CSV line (or shard batch record) read from a shard's
   * history: the longest string V8 holds (2^29 - 24 characters), i.e. any line a shard can
   * write at all. A batch of one archive block writes a line far past 64 Mi characters when
   * JSON escapes its text (a control character is 6 characters: a 12 MB string of them, which
   * the Kafka source records in parts, is 72 M), and a lower bound refused on a merged read a
   * value every shard gives back. Such a line is held once per shard while it is merged.
   */
  clusterShardLineCharsMax: 2 ** 29 - 24,
  /** Cluster reads: how often tailing merged sessions ask the shards whether their horizon moved. */
  clusterTailPollMs: 100,
  /** Cluster reads: how often a merged session tries again a shard it lost. */
  clusterShardRetryMs: 1_000,
  /** Cluster reads: how often a node with merged sessions open asks the shards for their coverage (coverage frames). */
  clusterCoveragePollMs: 1_000,
  /** Cluster reads: paths per request when a merged state asks a shard when it last updated the paths it shares with another shard (at most PROTOCOL_LIMITS.globsPerSpecMax). */
  clusterUpdateTimesPathsMax: 256,
  /** Cluster reads: batches (holding one of those paths) a shard steps back in the first round of that walk; each next round doubles, up to clusterUpdateTimesStepBatches. */
  clusterUpdateTimesFirstRoundBatches: 8,
  /** Cluster reads: most batches a shard steps back per round while looking for those paths' last updates (the walk reads back until each is found). */
  clusterUpdateTimesStepBatches: 1_000,
  /** Cluster reads: time a merged history cut by a lost shard waits for its last record (the error record) to reach the client before the connection is closed. */
  clusterCutRecordDrainMs: 10_000,
  /** Cluster reads: bytes of batch records a shard gathers before it sends a chunk of a merged session's feed (GET /api/v1/shard/batches). */
  clusterShardChunkBytesTarget: 64 * 1024,
  /*
   * A shard's batches feeds (GET /api/v1/shard/batches) and clients that do not read them.
   * A feed gathers its next chunk only once the socket took the one before (TCP pushes
   * back; no chunk is read ahead), so one feed queues in the shard's process at most one
   * chunk: clusterShardChunkBytesTarget plus the batch record that filled it (a batch of up
   * to STORAGE_LIMITS.batchBytesMax). But a client that stopped reading held its feed, a
   * cursor and its decoded block (about 1 MB) and the kernels' buffers (about 4 MB on
   * loopback) for ever, and any number of feeds were served at once: a hundred such clients
   * held 100 MB of the shard's memory and 370 MB of the kernel's. The client must take each
   * chunk within clusterShardFeedStallMs plus the chunk's bytes at
   * clusterShardFeedReadBytesPerSMin, else the connection is reset (logged: `unresponsive`);
   * a merged session whose feed was cut (it was paused, or plays slowly) opens it again from
   * its position when it next reads. At most clusterShardFeedsMax feeds are served at once;
   * past it a feed is refused 503 TPD_BUSY (a merged session names the shard missing and
   * tries again every clusterShardRetryMs). That is two merging nodes each using its
   * clusterShardConnectionsMax connections for feeds.
   */
  /** Feeds (GET /api/v1/shard/batches) a shard serves at once; past it: 503 TPD_BUSY with Retry-After. */
  clusterShardFeedsMax: 128,
  /** Time a feed waits for its client to take a chunk, beyond the chunk's own reading time; past it the connection is reset. */
  clusterShardFeedStallMs: 60_000,
  /** The slowest reading a feed allows for: a chunk of B bytes waits clusterShardFeedStallMs + B / this. */
  clusterShardFeedReadBytesPerSMin: 32 * 1024,
  /** Bytes of label keys the remote-write series cache holds (with remoteWriteSeriesCachedMax; past either, it starts afresh before the next request). */
  remoteWriteSeriesCachedBytesMax: 256 * 1024 * 1024,
  /** At start, the query API loads the sidecar indexes of sealed files ending within this of the newest file (server/promql/prepare.ts; at most seriesIndexOpenMax). */
  promqlPrepareSpanMs: 24 * 3_600_000,
  /** At start, the series catalog is built only for archives of at most this many paths (about 1 kB of memory a path: 100 MB here); larger ones build it at their first query. */
  promqlPrepareCatalogPathsMax: 100_000,
  /** At start, after the preparation, the query path's warm-up (a few queries of one series through the routes, server/promql/prepare.ts) stops after this long; /ready waits at most this for it. */
  promqlWarmUpMs: 2_000,
  /** The warm-up sends its queries over loopback connections to the server's listener once it listens; past this long without one (within promqlWarmUpMs), in process instead. */
  promqlWarmUpListenWaitMs: 1_000,
  /** Series whose chunks of the newest day the warm-up decodes first (without caching them), so that V8 optimizes the chunk decoders before a user's first query reads a new series. */
  promqlWarmUpDecodeSeries: 64,
  /** The warm-up's rounds: each asks the same queries (selector, rate, sum by, topk; range and instant) once. */
  promqlWarmUpRounds: 3,
  /** Series the warm-up tries, newest defined first, before it finds one with values in the newest day (else it is skipped). */
  promqlWarmUpSeriesTriedMax: 8,
} as const;

/** Defaults of poller sources (each may override them in its config entry). */
export const SOURCE_DEFAULTS = {
  /** Poll interval when neither the source nor record.poll_interval gives one (seed 003: 5 s). */
  pollIntervalMs: 5_000,
  /** Whole request (connect, headers, body) must finish within this. */
  timeoutMs: 5_000,
  /** First retry delay after a failure; doubles per consecutive failure. */
  backoffInitialMs: 250,
  /** Retry delay never exceeds this. */
  backoffMaxMs: 30_000,
  /** Keep-alive of idle upstream sockets. */
  keepAliveMs: 30_000,
} as const;
