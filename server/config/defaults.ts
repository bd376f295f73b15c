/**
 * Defaults of the server's own config sections (the other layers' defaults live in their
 * limit tables), and the config `tapedeck serve` runs without --config.
 */

export const PUBLISH_DEFAULTS = {
  bind: '127.0.0.1:8080',
  maxSessions: 512,
  maxSessionsPerClient: 64,
  sessionGraceMs: 30_000,
  /** Per client (token name, else address): generous for dashboards, a stop for runaway loops. */
  rateLimit: { max: 2000, timeWindowMs: 1000 },
  /** Warm the PromQL query path at start, before /ready says ready (docs/prometheus.md, "The query path's warm-up at start"). */
  promqlWarmUp: true,
} as const;
export const SIMULATOR_DEFAULTS = { port: 9001, switches: 64, intervalMs: 1000, fault500Pct: 0, faultSlowMs: 0, seed: 42 } as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * What `tapedeck serve` runs without --config: the archive in ./data, the built-in
 * simulator in-process on a port of its own, its CSV matrix and twin APIs as sources, push
 * ingest, and the server on 127.0.0.1:8080. flush_interval is 1 s (not seed 003's 30 s) so
 * that live tailing and history queries see new data within a second.
 */
export const EMBEDDED_DEFAULT = {
  archive_directory: './data',
  record: { spec: ['/**'], poll_interval: '1s', flush_interval: '1s' },
  publish: { bind: '127.0.0.1:8080' },
  simulator: { port: 0, switches: 64, interval: '1s' },
  sources: [
    { name: 'fabric', type: 'csv-matrix', url: '{simulator}/counters', prefix: '/fabric' },
    { name: 'flows', type: 'http-json', url: '{simulator}/ndt/get_detected_flows', path: '/twin/flows', mode: 'whole' },
    { name: 'graph', type: 'http-json', url: '{simulator}/ndt/get_graph_data', path: '/twin/graph', mode: 'leaves', interval: '5s' },
    { name: 'push', type: 'push' },
  ],
} as const;

/** The `cluster` section's defaults (docs/cluster.md). */
export const CLUSTER_DEFAULTS = {
  /** A dead shard shows live: false within about this (renewed every TTL/4). */
  leaseTtlMs: 5_000,
  /** 0: a shard waits for the shard holding an in-doubt Kafka batch to resolve it, however long. */
  inDoubtMaxWaitMs: 0,
} as const;
