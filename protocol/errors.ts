/**
 * The one error table. Every error Tapedeck reports carries a stable `code` that clients
 * match on, an HTTP status for the REST layer, and a message. Add a row here rather than
 * throwing ad-hoc errors; docs/errors.md lists the same table for users.
 */
export const ERRORS = {
  TPD_BAD_REQUEST: { status: 400, meaning: 'A request does not match its JSON Schema (the message names the field).' },
  TPD_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The request body has a content type this route does not take (JSON routes take application/json; ingest takes NDJSON).' },
  TPD_NOT_FOUND: { status: 404, meaning: 'No such route or resource.' },
  TPD_SESSION_NOT_FOUND: { status: 404, meaning: 'No playback session with this id (it was deleted or collected).' },
  TPD_SESSION_LIMIT: { status: 429, meaning: 'Too many playback sessions: max_sessions or max_sessions_per_client reached.' },
  TPD_BAD_CONTROL: { status: 400, meaning: 'A playback control value is invalid (the message names the control).' },
  TPD_BAD_FRAME: { status: 400, meaning: 'A WebSocket frame from the client is not valid JSON/msgpack or not a known message, or holds a key twice in one object or map (`{"set":{"pos":"-1h","pos":"end"}}`: one of the two would be lost), or a msgpack str that is not UTF-8.' },
  TPD_UNAUTHORIZED: { status: 401, meaning: 'No bearer token, or one the server does not know.' },
  TPD_FORBIDDEN: { status: 403, meaning: 'The token lacks the scope this route needs (read, ingest or admin).' },
  TPD_RATE_LIMITED: { status: 429, meaning: 'Too many requests (or session controls) per time window for this client; retry later.' },
  TPD_HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line or headers exceed the HTTP parser limit (a URL with a very long query string, for instance).' },
  TPD_REQUEST_TIMEOUT: { status: 408, meaning: 'The request was not received completely in time.' },
  TPD_BODY_TOO_LARGE: { status: 413, meaning: 'The request body exceeds the server body limit.' },
  TPD_NOT_READY: { status: 503, meaning: 'The server is not ready: the archive is not open, a required source is stale, or the query API is still preparing at start.' },
  TPD_BAD_ARGUMENT: { status: 400, meaning: 'An argument or value is malformed or out of range.' },
  TPD_BAD_PATH: { status: 400, meaning: 'A path is empty, does not start with "/", is too long, holds NUL or holds a lone UTF-16 surrogate (paths are stored as UTF-8).' },
  TPD_BATCH_TOO_LARGE: { status: 413, meaning: 'A batch exceeds batchUpdatesMax updates or batchBytesMax bytes (estimated), or an NDJSON line exceeds ingestLineBytesMax.' },
  TPD_BACKPRESSURE: { status: 503, meaning: 'The archive writer queue is full (writeQueueBytesMax); retry after it drains.' },
  TPD_ARCHIVE_CLOSED: { status: 503, meaning: 'The archive was closed.' },
  TPD_ARCHIVE_LOCKED: { status: 409, meaning: 'Another live process holds the archive lock for writing.' },
  TPD_ARCHIVE_READONLY: { status: 409, meaning: 'The archive was opened read-only.' },
  TPD_NOT_AN_ARCHIVE_FILE: { status: 422, meaning: 'A file does not start with the Tapedeck magic.' },
  TPD_FORMAT_VERSION: { status: 422, meaning: 'A file was written by a newer, unsupported format version.' },
  TPD_FOREIGN_FILE: { status: 422, meaning: 'A file belongs to a different archive (archive id mismatch).' },
  TPD_CORRUPT_HEADER: { status: 422, meaning: 'A file header fails its checksum or holds impossible values.' },
  TPD_CORRUPT_BLOCK: { status: 422, meaning: 'A committed block fails its CRC32C, its framing or its decoding.' },
  TPD_CORRUPT_CATALOG: { status: 422, meaning: 'The catalog fails SQLite\'s checks or its row checksums, or disagrees with the files; a writable open moves it aside and rebuilds it, a read-only open indexes the files in memory, `tapedeck reindex` rebuilds it for good.' },
  TPD_FILE_UNAVAILABLE: { status: 503, meaning: 'An archive file is not on local disk (remote or missing) and cannot be read now.' },
  TPD_BUFFERING: { status: 200, meaning: 'Informational (an `info` frame): a playback session waits while an archive file is fetched from cold storage (get hook).' },
  TPD_BUFFERED: { status: 200, meaning: 'Informational (an `info` frame): the archive file a session waited for was fetched; playback goes on.' },
  TPD_IO: { status: 500, meaning: 'The file system reported an error.' },
  TPD_INTERNAL: { status: 500, meaning: 'An invariant was broken: a bug in Tapedeck.' },
  TPD_BAD_CONFIG: { status: 400, meaning: 'The config file is not valid JSON or breaks its schema (the message names the key path and why).' },
  TPD_BAD_INGEST_LINE: { status: 400, meaning: 'A pushed line (an NDJSON line, or a msgpack map in a binary WebSocket message) is not { "ts"?, "updates": { path: value } } with at least one update (the response names each bad line; good lines are kept).' },
  TPD_NO_PUSH_SOURCE: { status: 404, meaning: 'Push ingest is not enabled: the config has no source of type "push".' },
  TPD_BAD_GLOB: { status: 400, meaning: 'A path glob is malformed or exceeds globBytesMax / globSegmentsMax (the message names the glob and why).' },
  TPD_DISK_FULL: { status: 507, meaning: 'The archive\'s file system is full: recording is paused and new data refused (Retry-After says when to retry); nothing already acknowledged is lost, and recording resumes by itself when space returns.' },
  TPD_INGEST_FILTERED: { status: 422, meaning: 'Every update of a push falls outside the record spec and the push source refuses filtered pushes (refuse_filtered); nothing was recorded.' },
  TPD_TOO_MANY_BAD_LINES: { status: 400, meaning: 'A pushed NDJSON body had more bad lines than ingestBadLinesMax; reading stopped there (the response lists the first errors; good lines before it are kept).' },
  TPD_NO_MATCH: { status: 200, meaning: 'Informational (a "warning" field or a Tapedeck-Warning header): the globs match no recorded path, so the answer is empty.' },
  TPD_CLAMPED: { status: 200, meaning: 'Informational (an `info` frame): a batch step (pos "+N"/"-N") ran into the start or the end of the archive and stopped there; the message says how many batches it moved.' },
  TPD_QUERY_LIMIT: { status: 422, meaning: 'A PromQL query goes past one of the promql* limits (series, samples, points per series, size, nesting; the message names it). Prometheus errorType "execution".' },
  TPD_ANSWER_TOO_LARGE: { status: 422, meaning: 'A /state or /diff answer, written whole as JSON, would pass jsonAnswerCharsMax characters (SERVER_LIMITS; large values, or very many paths): narrow the globs, or read the values through /history, which streams.' },
  TPD_BUSY: { status: 503, meaning: 'The server is streaming as many history answers as it takes at once (historyAnswersMax), or as many batches feeds to merging nodes (/api/v1/shard/batches: clusterShardFeedsMax), or building as many whole JSON answers (/state, /diff, /paths: jsonAnswersBuiltMax) with as many waiting (jsonAnswersWaitingMax) (SERVER_LIMITS); retry after Retry-After seconds.' },
  TPD_QUERY_TIMEOUT: { status: 503, meaning: 'A query ran past its time budget: a PromQL query past promqlTimeoutMs or its timeout parameter (Prometheus errorType "timeout"), or /api/v1/diff past diffTimeBudgetMs.' },
  TPD_CANCELED: { status: 499, meaning: 'The client closed its connection before its answer was ready: a PromQL query or metadata request (Prometheus errorType "canceled"), a /state, /diff or /paths answer waiting for its turn or being built, a merged (cluster) read, the update-times walk of a shard, or the creation or a change (PATCH) of a playback session whose seek was under way, stopped at its next slice or block (its requests to the shards and its waits for cold files aborted) and gave its place back. Nobody receives it; it shows in access logs and metrics, never as a server error.' },
  TPD_QUERY_EXEC: { status: 422, meaning: 'A PromQL query could not be evaluated (for instance a many-to-many match). Prometheus errorType "execution".' },
  TPD_HTTP: { status: 502, meaning: 'Client side (SDK, CLI): a server answered with an HTTP status and no Tapedeck error body (not a Tapedeck server, or a proxy in between); the message gives the status.' },
  TPD_HA_DISABLED: { status: 404, meaning: 'Active/standby is not configured (the config has no ha section), so there is no role to control.' },
  TPD_HA_UNAVAILABLE: { status: 503, meaning: 'Redis did not take an active/standby control (unreachable or failing); the role is unchanged.' },
  TPD_BAD_REMOTE_WRITE: { status: 400, meaning: 'A Prometheus remote-write body a retry cannot fix: not snappy (block format), not a protobuf WriteRequest, a series without __name__, with an empty or duplicate label name, invalid UTF-8, more labels than remoteWriteLabelsPerSeriesMax, a negative timestamp, or a native histogram (the message names the series); nothing of the request was recorded.' },
  TPD_REMOTE_WRITE_OUT_OF_ORDER: { status: 400, meaning: 'A remote-write sample is older than the archive\'s last batch (archive timestamps only increase, and a sample\'s time is never moved), or two samples of one series share a timestamp with different values; the message names the series and the time; nothing of the request was recorded.' },
  TPD_NO_REMOTE_WRITE_SOURCE: { status: 404, meaning: 'Prometheus remote write is not enabled: the config has no source of type "remote_write" (or none of the name asked for).' },
  TPD_NOT_OWNER: { status: 421, meaning: 'Cluster: a pushed path belongs to another shard (by the shards\' owned globs); the body names the owning shard and its URL; nothing of the request was recorded.' },
  TPD_SHARDS_MISSING: { status: 200, meaning: 'Informational (a "partial" field, a Tapedeck-Partial header, or an `info` frame with this code): a merged cluster answer lacks the shards it names (unreachable, lease expired or timed out); what is there is complete for the other shards.' },
  TPD_CLUSTER_DISABLED: { status: 404, meaning: 'Cluster: the config has no cluster section, so there are no shards to list or merge.' },
  TPD_CLUSTER_UNAVAILABLE: { status: 503, meaning: 'Cluster: Redis (membership) is unreachable, or no shard answered; retry later.' },
  TPD_KAFKA_PARTS: { status: 422, meaning: 'Kafka source: a message in parts (tpd-part, a sink batch larger than its topic takes) that cannot be assembled: a malformed part header, a part out of order or without the parts before it, a set that did not complete within partSetSpanMessagesMax messages or partsHeldBytesMax bytes, or parts that do not make their tpd-sum; counted and logged with its offsets, nothing of the set recorded.' },
  TPD_KAFKA_STALE_FENCE: { status: 409, meaning: 'Kafka source: a message of an active/standby pair whose tpd-fence is below the highest one already read on its partition (an old active, paused past its lease, that sent after the new one took over); counted and logged, not recorded: the new active publishes that batch itself.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class TapedeckError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TapedeckError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }
}

export function isTapedeckError(err: unknown, code?: ErrorCode): err is TapedeckError {
  return err instanceof TapedeckError && (code === undefined || err.code === code);
}
