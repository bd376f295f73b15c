/** The config as the server uses it: resolved (durations in ms, defaults filled, names in camelCase) and frozen. */
import type { TokenConfig } from '../ops/auth.js';
import type { ClusterConfig } from '../cluster/config.js';

export interface SimulatorConfig {
  port: number;
  switches: number;
  intervalMs: number;
  fault500Pct: number;
  faultSlowMs: number;
  seed: number;
}

export interface HookCommand {
  cmd: string;
  args: string[];
}

export interface SourceEntry {
  name: string;
  type: string;
  /** The entry's own keys (besides name and type), already validated by its schema. */
  options: Record<string, unknown>;
  /** /ready requires this source (default: all but push) to have succeeded within maxStalenessMs. */
  readiness: { required: boolean; maxStalenessMs: number };
}

export interface ServeConfig {
  archiveDirectory: string;
  archiveCmds: { list: HookCommand | null; get: HookCommand | null; put: HookCommand | null };
  /** How hooks run (docs/archive-hooks.md): per-run timeouts, attempts with backoff, the list period. */
  archiveHooks: { timeoutMs: number; listTimeoutMs: number; getTimeoutMs: number; getAttempts: number; attempts: number; backoffInitialMs: number; backoffMaxMs: number; listIntervalMs: number };
  /** Local retention of rotated files that put has shipped; 0 = no limit of that kind. */
  retention: { maxAgeMs: number; maxBytes: number; checkIntervalMs: number; keepFetchedMs: number };
  /** null: playback only, nothing is recorded. */
  record: {
    spec: string[];
    pollIntervalMs: number;
    imageFrequencyBytes: number;
    flushFrequencyPages: number;
    flushIntervalMs: number;
    rotateIntervalMs: number;
    /** Rotate when `current` reaches this many bytes; 0 = never. */
    rotateSizeBytes: number;
    /** Compact each rotated file in the background (storage/live-compact.ts). */
    compact: boolean;
  } | null;
  publish: {
    host: string;
    port: number;
    maxSessions: number;
    maxSessionsPerClient: number;
    /** Connections one client address holds at once; absent: server/connections-cap.ts's default. */
    maxConnectionsPerAddress?: number;
    /** A session with no stream attached and no REST call for this long is collected. */
    sessionGraceMs: number;
    /** Requests per window per client (token name, else address); null = unlimited. */
    rateLimit: { max: number; timeWindowMs: number } | null;
    /** At start, the query path's warm-up (server/promql/prepare.ts) before /ready says ready. */
    promqlWarmUp: boolean;
  };
  /** Bearer tokens; empty = open server, allowed on loopback addresses only. */
  tokens: TokenConfig[];
  sources: SourceEntry[];
  /** When set, the built-in simulator runs in-process; `{simulator}` in source URLs is its base URL. */
  simulator: SimulatorConfig | null;
  logLevel: string;
  /** Publishes recorded batches to a Kafka topic (docs/kafka.md); null = no sink. */
  kafkaSink: {
    brokers: string[];
    topic: string;
    format: 'msgpack' | 'json';
    key: 'stream' | 'path';
    clientId: string;
    queueMaxBatches: number;
  } | null;
  /** Active/standby through Redis (docs/ha.md); null = this recorder always publishes. */
  ha: {
    redisUrl: string;
    cluster: string;
    id: string;
    leaseTtlMs: number;
    bufferWindowMs: number;
    bufferMaxBatches: number;
    promotionMaxWaitMs: number;
    onRedisLoss: 'publish' | 'standby';
  } | null;
  /** Scale-out shard membership (docs/cluster.md); null = a recorder of its own. */
  cluster: ClusterConfig | null;
}
