/**
 * The config file's schema, written once: each key's type, constraints, default and
 * description. It is JSON Schema (TypeBox builds it), so the same object gives the static
 * type (`RawConfig`), the validation (ajv, server/config/validate.ts, which fills the
 * defaults), `tapedeck --example` (clients/cli/example.ts) and the key table of
 * docs/config.md (scripts/gen-config-doc.ts). Defaults come from each layer's limit table,
 * written as the config writes them ("10m", not 600000).
 *
 * `examples` holds the value `tapedeck --example` shows where it differs from the default.
 */
import { Type, type Static } from '@sinclair/typebox';
import { COLD_DEFAULTS, HOOK_DEFAULTS, HOOK_GET_DEFAULTS, HOOK_LIST_TIMEOUT_MS, STORAGE_DEFAULTS } from '../../storage/index.js';
import { SERVER_LIMITS, SOURCE_DEFAULTS } from '../limits.js';
import { SOURCE_TYPES } from '../sources/registry.js';
import { READINESS_DEFAULT_MAX_STALENESS_MS } from '../ops/stats.js';
import { KAFKA_SINK_DEFAULTS } from '../sinks/kafka.js';
import { HA_DEFAULTS } from '../ha/coordinator.js';
import { CLUSTER_DEFAULTS, LOG_LEVELS, PUBLISH_DEFAULTS, SIMULATOR_DEFAULTS } from './defaults.js';
import { choice, duration, durationOrNull, durationText, hookCommand, orNull, section } from './kinds.js';

const ArchiveCmds = section({
  list: hookCommand({ default: null, description: 'Prints the names of the files in cold storage, one a line (e.g. 2026-11-23T07:45:12.123456Z); they join the archive as remote files. Run with no arguments of Tapedeck\'s.' }),
  get: hookCommand({ default: null, description: 'Before a remote file is read: writes NAME to DEST. Tapedeck appends DEST NAME.' }),
  put: hookCommand({ default: null, description: 'After NAME was rotated: ships it to cold storage, exiting 0 only once it is stored; until then the file is never removed locally. Tapedeck appends PATH NAME.' }),
}, { default: {}, description: 'Archive hooks, each as [ "program", [ "arg", ... ] ] run without a shell, or null (docs/archive-hooks.md has the whole contract). E.g. "put": ["/usr/local/bin/tapedeck-s3", ["put", "s3://bucket/fabric"]].' });

const ArchiveHooks = section({
  timeout: duration({ default: durationText(HOOK_DEFAULTS.timeoutMs), description: 'One run of put is killed, with its children, after this long.' }),
  list_timeout: duration({ default: durationText(HOOK_LIST_TIMEOUT_MS), description: 'One run of list is killed after this long.' }),
  get_timeout: duration({ default: durationText(HOOK_GET_DEFAULTS.timeoutMs), description: 'One run of get is killed after this long (sessions and queries wait on it).' }),
  attempts: Type.Integer({ minimum: 1, maximum: 100, default: HOOK_DEFAULTS.attempts, description: 'Runs per put or list call, the first included (failed puts are also queued again at every retention check).' }),
  get_attempts: Type.Integer({ minimum: 1, maximum: 100, default: HOOK_GET_DEFAULTS.attempts, description: 'Runs per get call, the first included.' }),
  backoff_initial: duration({ default: durationText(HOOK_DEFAULTS.backoffInitialMs), description: 'Delay before the first retry of a failed run; it doubles per failure, random in [d/2, d].' }),
  backoff_max: duration({ default: durationText(HOOK_DEFAULTS.backoffMaxMs), description: 'Retry delays never exceed this (not less than backoff_initial).' }),
  list_interval: durationOrNull({ default: durationText(COLD_DEFAULTS.listIntervalMs), description: 'list runs at start and this often; null = at start only.' }),
}, { default: {}, description: 'How the archive hooks run: per-run timeouts, attempts with backoff, the list period.' });

const Retention = section({
  max_age: durationOrNull({ default: null, description: 'Rotated files whose last batch is older than this are removed from local disk once put has shipped them; null = no age limit.' }),
  max_bytes: orNull(Type.Integer({ minimum: 0 }), { default: null, description: 'Shipped files are removed, oldest first, while local files (segments and their per-series sidecars) hold more than this many bytes; null = no size limit.' }),
  check_interval: duration({ default: durationText(COLD_DEFAULTS.checkIntervalMs), description: 'How often retention runs (and failed puts are queued again).' }),
  keep_fetched: duration({ default: durationText(COLD_DEFAULTS.fetchedKeepMs), description: 'A file fetched back with get is not removed again for this long.' }),
}, { default: {}, description: 'Local disk retention of rotated files that put has shipped (never of others); removed files stay in the archive as remote files, fetched back with get when read.' });

const RecordSection = orNull(section({
  spec: Type.Array(Type.String(), { minItems: 1, default: ['/**'], examples: [['/fabric/**', '/twin/**', '/push/**']], description: 'Globs of the paths to record: * is one level, ** any depth (docs/globs.md). A path matching several globs is recorded once.' }),
  poll_interval: duration({ default: durationText(SOURCE_DEFAULTS.pollIntervalMs), examples: ['1s'], description: 'Poll interval of the sources that set no "interval" of their own.' }),
  image_frequency: Type.Integer({ minimum: 0, default: STORAGE_DEFAULTS.imageFrequencyBytes, description: 'Bytes of data between two full images (faster seeks, bigger files); 0 = only at the start of each file.' }),
  flush_frequency: Type.Integer({ minimum: 0, default: STORAGE_DEFAULTS.flushFrequencyPages, description: 'Commit to disk after this many filesystem pages (4 KiB) of new data: at most this much is lost in a crash.' }),
  flush_interval: duration({ default: durationText(STORAGE_DEFAULTS.flushIntervalMs), examples: ['1s'], description: 'Commit at least this often while data is pending; "0" = no timer. The embedded default (tapedeck serve without --config) uses 1s so that live tailing and history see new data promptly.' }),
  rotate_interval: durationOrNull({ default: null, examples: ['1d'], description: 'Close "current" under its end time and start a new file this often; null = never.' }),
  rotate_size: orNull(Type.Integer({ minimum: 65536 }), { default: null, examples: [1_073_741_824], description: 'Also rotate when "current" reaches this many bytes (at least 65536); null = no size limit.' }),
  compact: Type.Boolean({ default: true, description: 'Compact each rotated file in the background (larger blocks, codec 3: a third to a half of the bytes for Prometheus-like data) and swap it in under live readers before it is shipped or indexed; files whose compaction would keep more than 3/4 of their bytes stay as recorded (docs/storage.md, "Compaction"). false = files stay as recorded (`tapedeck compact` can compact them with the server stopped).' }),
}, {}), { default: {}, description: 'What to record and how to write it; null = playback only (the archive is opened read-only and no source runs).' });

const RateLimit = orNull(section({
  max: Type.Integer({ minimum: 1, description: 'Requests per window per client (token name, else address).' }),
  window: duration({ default: durationText(PUBLISH_DEFAULTS.rateLimit.timeWindowMs), description: 'The window the requests are counted in.' }),
}, {}), { default: { max: PUBLISH_DEFAULTS.rateLimit.max, window: durationText(PUBLISH_DEFAULTS.rateLimit.timeWindowMs) }, description: 'Requests per window per client; past it: 429 TPD_RATE_LIMITED. null = no limit.' });

const Publish = section({
  bind: orNull(Type.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$' }), { default: PUBLISH_DEFAULTS.bind, description: 'host:port to listen on ([::1]:8080 for IPv6); null = the default.' }),
  max_sessions: Type.Integer({ minimum: 1, default: PUBLISH_DEFAULTS.maxSessions, description: 'Playback sessions at once, all clients.' }),
  max_sessions_per_client: Type.Integer({ minimum: 1, default: PUBLISH_DEFAULTS.maxSessionsPerClient, description: 'Playback sessions at once per client (token name, else address).' }),
  max_connections_per_address: Type.Optional(Type.Integer({ minimum: 1, examples: [8192], description: 'Connections (HTTP and WebSocket) one client address holds at once (an IPv6 client: its /64); past it its new connections are closed on arrival while other addresses are served. Default: an eighth of the connection cap, at most 1024 (SERVER_LIMITS httpConnectionsPerAddressMax, docs/operations.md); never above the cap. Behind a reverse proxy every client has the proxy\'s address: set it to the cap (8192) and limit clients at the proxy.' })),
  session_grace: duration({ default: durationText(PUBLISH_DEFAULTS.sessionGraceMs), description: 'A session with no stream attached and no REST call on it for this long is collected (a client that went away).' }),
  rate_limit: RateLimit,
  promql_warm_up: Type.Boolean({ default: PUBLISH_DEFAULTS.promqlWarmUp, description: 'At start, before /ready says ready, hold the newest day\'s sidecar chunk bytes in memory and run a few queries of one series of that day through the query API (at most promqlWarmUpMs, not counted in metrics) so that the first dashboard\'s queries find the code compiled (docs/prometheus.md, "Performance"); false = none.' }),
}, { default: {}, description: 'The HTTP/WebSocket server.' });

const Token = section({
  name: Type.String({ pattern: '^[A-Za-z0-9_.@-]{1,64}$', description: 'Shown in logs and used as the rate-limit key; never the secret itself.' }),
  token: Type.String({ minLength: 16, maxLength: 4096, description: 'The secret, sent as Authorization: Bearer <token> (browsers\' WebSockets may use ?access_token=).' }),
  scopes: Type.Array(choice(['read', 'ingest', 'admin'] as const, {}), { minItems: 1, uniqueItems: true, description: '"read" (queries, playback, /metrics, /stats), "ingest" (push), "admin" (everything, e.g. listing all sessions).' }),
}, {});

const Auth = orNull(section({
  tokens: Type.Array(Token, {
    maxItems: 1024,
    default: [],
    examples: [[
      { name: 'grafana', token: 'change-me-read-0123456789', scopes: ['read'] },
      { name: 'collector', token: 'change-me-ingest-0123456789', scopes: ['ingest'] },
      { name: 'ops', token: 'change-me-admin-0123456789', scopes: ['admin'] },
    ]],
    description: 'Bearer tokens. With none the server is open and may only bind a loopback address; binding elsewhere without tokens refuses to start.',
  }),
}, {}), { default: {}, description: 'Who may call the server.' });

/** The keys every source entry takes; the rest are checked by the schema its type exports. */
const SourceEntry = section({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Unique among the sources; names the source in /stats, /ready and logs.' }),
  type: choice(Object.keys(SOURCE_TYPES), { description: `One of ${Object.keys(SOURCE_TYPES).join(', ')}; the type's own keys are described in docs/config.md.` }),
  required: Type.Optional(Type.Boolean({ description: 'GET /ready requires this source to be fresh; default true except for push.' })),
  max_staleness: duration({ default: durationText(READINESS_DEFAULT_MAX_STALENESS_MS), description: 'How fresh: a required source with no success for this long makes /ready answer 503.' }),
}, { additionalProperties: true });

const Simulator = orNull(section({
  port: Type.Integer({ minimum: 0, maximum: 65535, default: SIMULATOR_DEFAULTS.port, examples: [0], description: 'Port of the simulator; 0 = any free port.' }),
  switches: Type.Integer({ minimum: 1, maximum: 4096, default: SIMULATOR_DEFAULTS.switches, description: 'Switches in the CSV matrix, 8 metrics each.' }),
  interval: duration({ default: durationText(SIMULATOR_DEFAULTS.intervalMs), description: 'A new snapshot this often.' }),
  fault_500_pct: Type.Number({ minimum: 0, maximum: 100, default: SIMULATOR_DEFAULTS.fault500Pct, description: 'Percent of requests answered 500.' }),
  fault_slow_ms: Type.Integer({ minimum: 0, maximum: 600_000, default: SIMULATOR_DEFAULTS.faultSlowMs, description: 'Latency added to about 20% of requests, in ms.' }),
  seed: Type.Integer({ default: SIMULATOR_DEFAULTS.seed, description: 'The model is deterministic for a seed.' }),
}, {}), { default: null, examples: [{}], description: 'Runs the built-in fabric simulator in-process (as tapedeck simulate); "{simulator}" in a source\'s url becomes its base URL. null = no simulator.' });

const KafkaSink = orNull(section({
  brokers: Type.Array(Type.String({ pattern: '^[^\\s:]+:\\d{1,5}$' }), { minItems: 1, examples: [['127.0.0.1:9092']], description: 'Bootstrap host:port list.' }),
  topic: Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$', examples: ['tapedeck'], description: 'The topic recorded batches are published to.' }),
  format: choice(['msgpack', 'json'] as const, { default: 'msgpack', description: 'Encoding of the messages.' }),
  key: choice(['stream', 'path'] as const, { default: 'stream', description: '"stream": one message per batch, key = its stream; "path": one message per update, key = the path.' }),
  client_id: Type.String({ minLength: 1, default: 'tapedeck-sink', description: 'Kafka client id.' }),
  queue_max_batches: Type.Integer({ minimum: 1, default: KAFKA_SINK_DEFAULTS.queueMaxBatches, description: 'Batches waiting to be published before the oldest are dropped (counted).' }),
}, {}), { default: null, description: 'Publishes every recorded batch to a Kafka topic (docs/kafka.md); null = no sink.' });

const Ha = orNull(section({
  redis: Type.String({ pattern: '^rediss?://', examples: ['redis://127.0.0.1:6379'], description: 'redis:// or rediss:// URL of the Redis that holds the lease.' }),
  cluster: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'tapedeck', description: 'Recorders with the same cluster name share one lease.' }),
  id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.@-]{1,64}$', examples: ['recorder-a'], description: 'This recorder\'s id; default <host>-<pid>.' })),
  lease_ttl: duration({ default: durationText(HA_DEFAULTS.leaseTtlMs), description: 'The lease\'s TTL (at least 200ms; renewed every TTL/4): a dead active is replaced within about this.' }),
  buffer_window: duration({ default: durationText(KAFKA_SINK_DEFAULTS.bufferWindowMs), description: 'The standby keeps the batches of this last window ...' }),
  buffer_max_batches: Type.Integer({ minimum: 1, default: KAFKA_SINK_DEFAULTS.bufferMaxBatches, description: '... at most this many.' }),
  promotion_max_wait: duration({ default: durationText(KAFKA_SINK_DEFAULTS.promotionMaxWaitMs), description: 'How long a promotion waits to have read the sink topic to its end before it publishes anyway (possible duplicates, logged and counted).' }),
  on_redis_loss: choice(['publish', 'standby'] as const, { default: 'publish', description: 'Redis unreachable longer than the TTL: "publish" (every recorder publishes: duplicates rather than loss) or "standby" (nobody publishes).' }),
}, {}), { default: null, description: 'Active/standby recorders through Redis (docs/ha.md); needs kafka_sink: only the active publishes. null = this recorder always publishes.' });

const Cluster = orNull(section({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', examples: ['fabric'], description: 'The cluster: shards with the same name and Redis form one. Also the default Kafka consumer group of every kafka source (tapedeck-<name>-<source>).' }),
  shard: Type.String({ pattern: '^[A-Za-z0-9_.@-]{1,64}$', examples: ['shard-a'], description: 'This shard\'s id, stable across restarts; the two recorders of an active/standby pair share it.' }),
  advertise_url: orNull(Type.String({ pattern: '^https?://[^\\s/]+$' }), { default: null, examples: ['http://10.0.0.11:8080'], description: 'Base URL other nodes and clients reach this shard at (no path); null = the URL the server listens on (one machine only).' }),
  redis: Type.String({ pattern: '^rediss?://', examples: ['redis://127.0.0.1:6379'], description: 'redis:// or rediss:// URL of the Redis that holds membership, leases and the Kafka fences.' }),
  globs: Type.Array(Type.String(), { maxItems: 1024, default: [], examples: [['/site-a/**']], description: 'Globs of the paths this shard owns for push and poll sources; a push of a path another shard owns is refused (421 TPD_NOT_OWNER). Must not overlap another shard\'s (docs/cluster.md). [] = owns none.' }),
  lease_ttl: duration({ default: durationText(CLUSTER_DEFAULTS.leaseTtlMs), description: 'The shard\'s lease TTL (at least 200ms; renewed every TTL/4): a dead shard shows live: false within about this.' }),
  token: orNull(Type.String({ minLength: 1, maxLength: 4096 }), { default: null, examples: ['shard-read-token-1'], description: 'Bearer token this node presents to the other shards for merged reads and sessions; it needs the read scope on every shard (their auth.tokens). null = shards without auth.' }),
  in_doubt_max_wait: durationOrNull({ default: null, description: 'How long a shard that takes over a Kafka partition waits for the previous owner to resolve its in-doubt batch before recording it itself (a duplicate is then possible, counted); null = wait for it.' }),
}, {}), { default: null, description: 'This recorder as one shard of a cluster (docs/cluster.md); null = a recorder of its own.' });

export const ConfigSchema = section({
  archive_directory: Type.String({ minLength: 1, examples: ['./data'], description: 'Where the archive lives: "current" (being written), rotated files named by the RFC 3339 time of their last batch, and the catalog. Created if missing.' }),
  archive_cmds: orNull(ArchiveCmds, {}),
  archive_hooks: orNull(ArchiveHooks, {}),
  retention: orNull(Retention, {}),
  record: RecordSection,
  publish: orNull(Publish, {}),
  auth: Auth,
  simulator: Simulator,
  sources: Type.Array(SourceEntry, { maxItems: SERVER_LIMITS.sourcesMax, default: [], description: 'The sources, each { "name": unique, "type": ..., ...the keys of its type }.' }),
  kafka_sink: KafkaSink,
  ha: Ha,
  cluster: Cluster,
  log_level: choice(LOG_LEVELS, { default: 'info', description: 'pino log level.' }),
}, { description: 'The Tapedeck config file: JSON with // comments; unknown keys are errors.' });

/** The config document once validated, defaults filled. */
export type RawConfig = Static<typeof ConfigSchema>;
