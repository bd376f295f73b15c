/**
 * `tapedeck --example`: a complete config with every field explained. It is valid as it
 * stands (comments are allowed in Tapedeck config files):
 * `tapedeck --example > tapedeck.json && tapedeck serve --config tapedeck.json`.
 */
export const EXAMPLE_CONFIG = `// Tapedeck config. JSON with // comments. Unknown keys are errors.
// Durations: a string of number-unit pairs ("250ms", "5s", "1h30m", "1d"; units ns us ms s
// m h d w) or { "secs": 5, "nanos": 0 }.
{
  // Where the archive lives: "current" (being written), rotated files named by the RFC 3339
  // time of their last batch, and the catalog. Created if missing.
  "archive_directory": "./data",

  // Archive hooks as [ "program", [ "arg", ... ] ], run without a shell, or null. Tapedeck
  // appends its own arguments (docs/archive-hooks.md has the whole contract):
  //   put:  program args... PATH NAME  after NAME was rotated: ship it to cold storage;
  //         exit 0 only once it is stored. Until then the file is never removed locally.
  //   list: program args...            print the names of files in cold storage, one a line
  //         (e.g. 2026-11-23T07:45:12.123456Z); they join the archive as remote files.
  //   get:  program args... DEST NAME  before a remote file is read: write NAME to DEST.
  // e.g. "put": ["/usr/local/bin/tapedeck-s3", ["put", "s3://bucket/fabric"]]
  "archive_cmds": {
    "list": null,
    "get": null,
    "put": null
  },

  // How the hooks run. Each run is killed (with its children) after "timeout" ("list_timeout"
  // for list, "get_timeout" for get); a failed run is retried up to "attempts" runs in all
  // ("get_attempts" for get: sessions wait on it), waiting
  // "backoff_initial", doubling per failure, random in [d/2, d], at most "backoff_max".
  // list runs at start and every "list_interval" (null = at start only).
  "archive_hooks": {
    "timeout": "10m",
    "list_timeout": "1m",
    "get_timeout": "2m",
    "attempts": 5,
    "get_attempts": 3,
    "backoff_initial": "1s",
    "backoff_max": "1m",
    "list_interval": "5m"
  },

  // Local disk retention of rotated files that put has shipped (never of others): every
  // "check_interval", the oldest are removed locally while they are older than "max_age" or
  // local files hold more than "max_bytes" (null = no such limit); they stay in the archive
  // as remote files, fetched back with get when read, then kept "keep_fetched" at least.
  // Failed puts are retried at each check.
  "retention": {
    "max_age": null,
    "max_bytes": null,
    "check_interval": "1m",
    "keep_fetched": "1h"
  },

  // What to record and how to write it. null: play back only (the archive is opened
  // read-only and no source runs).
  "record": {
    // Globs of the paths to record: * is one level, ** any depth. A path matching several
    // globs is recorded once. Default ["/**"].
    "spec": ["/fabric/**", "/twin/**", "/push/**"],
    // Poll interval of sources that do not set their own "interval". Default "5s".
    "poll_interval": "1s",
    // Bytes of data between two full images (faster seeks, bigger files); 0 = only at the
    // start of each file. Default 67108864 (64 MiB).
    "image_frequency": 67108864,
    // Commit to disk after this many filesystem pages (4 KiB) of new data: at most this much
    // is lost in a crash. Default 65534.
    "flush_frequency": 65534,
    // Commit at least this often while data is pending; "0" disables the timer. Seed
    // default 30s; the embedded default (tapedeck serve without --config) uses 1s so that
    // live tailing and history see new data promptly.
    "flush_interval": { "secs": 1, "nanos": 0 },
    // Close "current" under its end time and start a new file this often; null = never
    // (the default).
    "rotate_interval": "1d",
    // Also rotate when "current" reaches this many bytes (at least 65536); null = no size
    // limit (the default).
    "rotate_size": 1073741824
  },

  // The HTTP/WebSocket server.
  "publish": {
    // host:port to listen on ([::1]:8080 for IPv6). Default "127.0.0.1:8080".
    "bind": "127.0.0.1:8080",
    // Playback sessions at once, in total and per client (token name, else address).
    // Defaults 512 and 64.
    "max_sessions": 512,
    "max_sessions_per_client": 64,
    // A session with no stream attached and no REST call on it for this long is deleted
    // (a client that went away). Default "30s".
    "session_grace": "30s",
    // Requests per window per client; past it: 429 TPD_RATE_LIMITED. null = no limit.
    // Default { "max": 2000, "window": "1s" }.
    "rate_limit": { "max": 2000, "window": "1s" }
  },

  // Bearer tokens (Authorization: Bearer <token>; browsers' WebSockets may use
  // ?access_token=). Scopes: "read" (queries, playback, /metrics, /stats), "ingest" (push),
  // "admin" (everything, e.g. listing all sessions). With no tokens the server is open and
  // may only bind a loopback address; binding elsewhere without tokens refuses to start.
  "auth": {
    "tokens": [
      { "name": "grafana", "token": "change-me-read-0123456789", "scopes": ["read"] },
      { "name": "collector", "token": "change-me-ingest-0123456789", "scopes": ["ingest"] },
      { "name": "ops", "token": "change-me-admin-0123456789", "scopes": ["admin"] }
    ]
  },

  // Optional: run the built-in fabric simulator in-process; "{simulator}" in a source's url
  // is replaced by its base URL. null or omitted: no simulator.
  "simulator": {
    "port": 0,              // 0 = any free port
    "switches": 64,         // switches in the CSV matrix, 8 metrics each
    "interval": "1s",       // a new snapshot this often
    "fault_500_pct": 0,     // percent of requests answered 500
    "fault_slow_ms": 0,     // latency added to about 20% of requests
    "seed": 42              // the model is deterministic for a seed
  },

  // The sources, each { "name": unique, "type": one of csv-matrix, http-json, push, ... }.
  // Pollers (csv-matrix, http-json) also take: "interval" (default record.poll_interval),
  // "timeout" (whole request, default "5s"), "backoff_initial" (first retry delay after a
  // failure, default "250ms", doubling per failure, with jitter), "backoff_max" (default
  // "30s"), "headers" (extra request headers). Every source also takes "required" (must be
  // fresh for GET /ready; default true except for push) and "max_staleness" (how fresh,
  // default "60s").
  "sources": [
    {
      // A CSV matrix: header row, then one row per entity; the cell (row, column) is
      // recorded at <prefix>/<entity>/<column>. Sends If-None-Match (304 = unchanged);
      // stamps batches with the snapshot_header time when present; records only changed
      // cells (null for a cell that disappeared).
      "name": "fabric",
      "type": "csv-matrix",
      "url": "{simulator}/counters",
      "prefix": "/fabric",              // default "/<name>"
      "id_column": "switch_id",         // default: the first column
      "snapshot_header": "X-Snapshot-Ts", // null to stamp on arrival
      "interval": "1s",
      "timeout": "2s",
      "max_staleness": "10s"            // /ready fails when no poll succeeded for 10 s
    },
    {
      // A JSON API: one batch per response. mode "whole" records the document at "path";
      // "leaves" records each leaf at path/<key>/<key>... (array items by index).
      "name": "flows",
      "type": "http-json",
      "url": "{simulator}/ndt/get_detected_flows",
      "path": "/twin/flows",            // default "/<name>"
      "mode": "whole",
      "headers": { "accept": "application/json" },
      // Stamp each batch with the snapshot time this response header carries (the
      // simulator sends one) and record each snapshot once; default null: stamped on arrival.
      "snapshot_header": "X-Snapshot-Ts"
    },
    {
      "name": "graph",
      "type": "http-json",
      "url": "{simulator}/ndt/get_graph_data",
      "path": "/twin/graph",
      "mode": "leaves",
      "interval": "5s",
      "backoff_initial": "500ms",
      "backoff_max": { "secs": 60, "nanos": 0 }
    },
    // A Kafka source (docs/kafka.md), shown commented out since it needs a broker:
    // {
    //   "name": "telemetry",
    //   "type": "kafka",
    //   "brokers": ["127.0.0.1:9092"],
    //   "topics": ["telemetry"],          // or "topic_pattern": "^telemetry\\." (a regex)
    //   "group_id": "tapedeck-telemetry", // default "tapedeck-<name>"
    //   "start": "earliest",              // earliest, latest or a time; only for a group without committed offsets
    //   "format": "json",                 // json, msgpack, string or binary payloads
    //   "path": "/kafka/{topic}/{key}",   // also {partition}, {offset}, {header.NAME}
    //   "explode": false,                 // true: one update per leaf of the payload under path
    //   "batch": "fetch",                 // one batch per fetched message set, or "message"
    //   "session_timeout": "30s"          // a dead consumer holds its partitions this long
    // },
    {
      // POST /api/v1/ingest (NDJSON) and the WebSocket /api/v1/ingest/ws feed this source;
      // each line is { "ts"?: time, "updates": { "/path": value } }.
      "name": "push",
      "type": "push"
    }
  ],

  // Optional: publish every recorded batch to a Kafka topic (docs/kafka.md). null: no sink.
  // { "brokers": ["127.0.0.1:9092"], "topic": "tapedeck", "format": "msgpack" (or "json"),
  //   "key": "stream" (one message per batch, key = its stream) or "path" (one per update),
  //   "client_id": "tapedeck-sink", "queue_max_batches": 100000 }
  "kafka_sink": null,

  // Optional: active/standby recorders through Redis (docs/ha.md); needs kafka_sink: only
  // the active publishes. null: this recorder always publishes.
  // { "redis": "redis://127.0.0.1:6379", "cluster": "tapedeck", "id": "<host>-<pid>",
  //   "lease_ttl": "1s", "buffer_window": "2s", "buffer_max_batches": 20000, "promotion_max_wait": "60s",
  //   "on_redis_loss": "publish" (every recorder publishes: duplicates, not loss) or "standby" }
  "ha": null,

  // pino log level: fatal, error, warn, info (default), debug, trace, silent.
  "log_level": "info"
}
`;

export function exampleCommand(): number {
  process.stdout.write(EXAMPLE_CONFIG);
  return 0;
}
