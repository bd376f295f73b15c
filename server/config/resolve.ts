/**
 * From a validated config document (defaults filled by the schema) to the ServeConfig the
 * server runs: durations in ms, null turned into "none" (0 or null), and the checks of
 * meaning a schema cannot say (unique source names, globs, relations between keys). Every
 * problem names its key path; the result is frozen.
 */
import { hostname } from 'node:os';
import { TapedeckError } from '../../protocol/errors.js';
import { compileSpec, parseGlob } from '../../protocol/glob.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { durationMs, type Duration } from '../duration.js';
import { SOURCE_TYPES } from '../sources/registry.js';
import { PUBLISH_DEFAULTS } from './defaults.js';
import { kafkaMarkerProbes } from '../cluster/kafka-marker.js';
import type { RawConfig } from './schema.js';
import type { HookCommand, ServeConfig, SourceEntry } from './serve-config.js';
import { describeErrors, sourceValidator, validateConfig } from './validate.js';

type Raw<K extends keyof RawConfig> = NonNullable<RawConfig[K]>;

/** Milliseconds of a duration where null means "none" (0). */
const msOrZero = (d: Duration | null): number => (d === null ? 0 : durationMs(d));

/** Poller durations that must be more than 0 (the schema allows "0" for durations in general). */
const SOURCE_POSITIVE_DURATIONS = ['interval', 'timeout', 'backoff_initial', 'backoff_max'] as const;

function hook(v: [string, string[]] | null): HookCommand | null {
  return v === null ? null : { cmd: v[0], args: [...v[1]] };
}

/** Each source entry: its own keys validated by its type's schema, its readiness resolved. */
function resolveSources(d: RawConfig, problems: string[]): SourceEntry[] {
  const names = new Set<string>();
  return d.sources.map((s, i) => {
    const { name, type, required, max_staleness: maxStaleness, ...rest } = s;
    const options = rest as Record<string, unknown>;
    if (names.has(name)) problems.push(`sources[${i}].name: ${JSON.stringify(name)} is used by another source`);
    names.add(name);
    const v = sourceValidator(type);
    if (!v(options)) problems.push(...describeErrors(v.errors ?? [], `/sources/${i}`));
    else for (const p of SOURCE_TYPES[type]?.check?.(options) ?? []) problems.push(`sources[${i}].${p}`);
    for (const k of SOURCE_POSITIVE_DURATIONS) {
      if (options[k] !== undefined && v.errors === null && durationMs(options[k] as Duration) <= 0) problems.push(`sources[${i}].${k}: must be more than 0`);
    }
    if (typeof options.url === 'string' && options.url.includes('{simulator}') && !d.simulator) {
      problems.push(`sources[${i}].url: uses {simulator} but the config has no simulator section`);
    }
    return { name, type, options, readiness: { required: required ?? (type !== 'push' && type !== 'remote_write'), maxStalenessMs: durationMs(maxStaleness) } };
  });
}

/** record.spec checked glob by glob with the one glob parser: a problem per bad glob. */
function recordSpecProblems(spec: readonly string[]): string[] {
  const problems: string[] = [];
  if (spec.length > PROTOCOL_LIMITS.globsPerSpecMax) problems.push(`record.spec: ${spec.length} globs, more than globsPerSpecMax (${PROTOCOL_LIMITS.globsPerSpecMax})`);
  spec.forEach((g, i) => {
    try {
      parseGlob(g);
    } catch (err) {
      problems.push(`record.spec[${i}]: ${(err as Error).message} (TPD_BAD_GLOB)`);
    }
  });
  return problems;
}

function resolveRecord(r: RawConfig['record'], problems: string[]): ServeConfig['record'] {
  if (r === null) return null;
  problems.push(...recordSpecProblems(r.spec));
  const record = {
    spec: [...r.spec],
    pollIntervalMs: durationMs(r.poll_interval),
    imageFrequencyBytes: r.image_frequency,
    flushFrequencyPages: r.flush_frequency,
    flushIntervalMs: durationMs(r.flush_interval),
    rotateIntervalMs: msOrZero(r.rotate_interval),
    rotateSizeBytes: r.rotate_size ?? 0,
    compact: r.compact,
  };
  if (record.flushIntervalMs > 0 && record.flushIntervalMs < 1) problems.push('record.flush_interval: must be 0 (off) or at least 1ms');
  if (record.pollIntervalMs <= 0) problems.push('record.poll_interval: must be more than 0');
  return record;
}

/** publish.bind split into host and port; a null section or bind means the defaults. */
function resolvePublish(p: Raw<'publish'>, problems: string[]): ServeConfig['publish'] {
  const bind = p.bind ?? PUBLISH_DEFAULTS.bind;
  const colon = bind.lastIndexOf(':');
  const port = Number(bind.slice(colon + 1));
  if (port > 65535) problems.push(`publish.bind: port ${port} is out of range`);
  return {
    host: bind.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    port,
    maxSessions: p.max_sessions,
    maxSessionsPerClient: p.max_sessions_per_client,
    ...(p.max_connections_per_address === undefined ? {} : { maxConnectionsPerAddress: p.max_connections_per_address }),
    sessionGraceMs: durationMs(p.session_grace),
    rateLimit: p.rate_limit === null ? null : { max: p.rate_limit.max, timeWindowMs: durationMs(p.rate_limit.window) },
    promqlWarmUp: p.promql_warm_up,
  };
}

function resolveHooks(h: Raw<'archive_hooks'>, problems: string[]): ServeConfig['archiveHooks'] {
  const hooks = {
    timeoutMs: durationMs(h.timeout),
    listTimeoutMs: durationMs(h.list_timeout),
    getTimeoutMs: durationMs(h.get_timeout),
    getAttempts: h.get_attempts,
    attempts: h.attempts,
    backoffInitialMs: durationMs(h.backoff_initial),
    backoffMaxMs: durationMs(h.backoff_max),
    listIntervalMs: msOrZero(h.list_interval),
  };
  for (const k of ['timeout', 'list_timeout', 'backoff_initial'] as const) {
    if (durationMs(h[k]) <= 0) problems.push(`archive_hooks.${k}: must be more than 0`);
  }
  if (hooks.backoffMaxMs < hooks.backoffInitialMs) problems.push('archive_hooks.backoff_max: must not be less than backoff_initial');
  return hooks;
}

function resolveRetention(r: Raw<'retention'>, problems: string[]): ServeConfig['retention'] {
  const retention = { maxAgeMs: msOrZero(r.max_age), maxBytes: r.max_bytes ?? 0, checkIntervalMs: durationMs(r.check_interval), keepFetchedMs: durationMs(r.keep_fetched) };
  if (retention.checkIntervalMs <= 0) problems.push('retention.check_interval: must be more than 0');
  return retention;
}

function resolveKafkaSink(k: RawConfig['kafka_sink']): ServeConfig['kafkaSink'] {
  if (k === null) return null;
  return { brokers: [...k.brokers], topic: k.topic, format: k.format, key: k.key, clientId: k.client_id, queueMaxBatches: k.queue_max_batches };
}

function resolveHa(h: RawConfig['ha'], problems: string[]): ServeConfig['ha'] {
  if (h === null) return null;
  const ha = {
    redisUrl: h.redis,
    cluster: h.cluster,
    // Unique per process on one host, valid by the schema's id pattern.
    id: h.id ?? `${hostname().replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 40)}-${process.pid}`,
    leaseTtlMs: durationMs(h.lease_ttl),
    bufferWindowMs: durationMs(h.buffer_window),
    bufferMaxBatches: h.buffer_max_batches,
    promotionMaxWaitMs: durationMs(h.promotion_max_wait),
    onRedisLoss: h.on_redis_loss,
  };
  if (ha.leaseTtlMs < 200) problems.push('ha.lease_ttl: must be at least 200ms');
  return ha;
}

/**
 * Sources that cannot be matched across recorders under active/standby. A Kafka source
 * must record one batch per message (each recorder fetches different message sets, so a
 * per-fetch batch would straddle the old active's last published offset and be sent again
 * whole) and read in a consumer group of its own (a shared group splits the partitions).
 */
function haSourceProblems(sources: readonly SourceEntry[]): string[] {
  const out: string[] = [];
  sources.forEach((s, i) => {
    if (s.type !== 'kafka') return;
    if (s.options.batch !== 'message') out.push(`sources[${i}] (${s.name}).batch: must be "message" with ha: batches are matched by the offset of their message on promotion`);
    if (s.options.group_id === undefined) out.push(`sources[${i}] (${s.name}).group_id: must be set, and differ between the recorders, with ha: a shared group would split the partitions`);
  });
  return out;
}

/** The cluster section: globs checked with the one glob parser, durations in ms. */
function resolveCluster(c: RawConfig['cluster'], problems: string[]): ServeConfig['cluster'] {
  if (c === null) return null;
  c.globs.forEach((g, i) => {
    try {
      parseGlob(g);
    } catch (err) {
      problems.push(`cluster.globs[${i}]: ${(err as Error).message} (TPD_BAD_GLOB)`);
    }
  });
  const cluster = {
    name: c.name,
    shard: c.shard,
    advertiseUrl: c.advertise_url,
    redisUrl: c.redis,
    globs: [...c.globs],
    leaseTtlMs: durationMs(c.lease_ttl),
    inDoubtMaxWaitMs: msOrZero(c.in_doubt_max_wait),
    token: c.token,
  };
  if (cluster.leaseTtlMs < 200) problems.push('cluster.lease_ttl: must be at least 200ms');
  return cluster;
}

/**
 * In a cluster, each Kafka batch records its partition and offsets at a marker path
 * (docs/cluster.md, "Exactly once"); the record spec must keep it, or a shard that
 * restarts after a crash could not tell which batches it had recorded.
 */
function clusterKafkaProblems(sources: readonly SourceEntry[], spec: readonly string[] | undefined): string[] {
  if (spec === undefined) return [];
  const keeps = compileSpec(spec);
  const out: string[] = [];
  sources.forEach((s, i) => {
    if (s.type !== 'kafka') return;
    const lost = kafkaMarkerProbes(s.name, s.options).find((p) => !keeps(p));
    if (lost !== undefined) out.push(`sources[${i}] (${s.name}): record.spec must keep ${lost} in a cluster (the batch markers, docs/cluster.md); add "/tapedeck/kafka/**"`);
  });
  return out;
}

/** Validates a parsed config document and resolves it; throws TPD_BAD_CONFIG naming every bad key. */
export function resolveConfig(doc: unknown, origin = 'config'): ServeConfig {
  const fail = (problems: string[]): never => {
    throw new TapedeckError('TPD_BAD_CONFIG', `${origin}: ${problems.join('; ')}`, { problems });
  };
  const validated = validateConfig(doc);
  if ('problems' in validated) return fail(validated.problems);
  const d = validated.config;
  const problems: string[] = [];
  const sources = resolveSources(d, problems);
  const record = resolveRecord(d.record, problems);
  if (problems.length > 0) fail(problems);
  // Null sections mean "the defaults", as an absent one does; the schema's defaults fill {}.
  const publish = resolvePublish(d.publish ?? validDefaults('publish'), problems);
  const cmds = d.archive_cmds ?? { list: null, get: null, put: null };
  const config: ServeConfig = {
    archiveDirectory: d.archive_directory,
    archiveCmds: { list: hook(cmds.list), get: hook(cmds.get), put: hook(cmds.put) },
    archiveHooks: resolveHooks(d.archive_hooks ?? validDefaults('archive_hooks'), problems),
    retention: resolveRetention(d.retention ?? validDefaults('retention'), problems),
    record,
    publish,
    tokens: (d.auth?.tokens ?? []).map((t) => ({ ...t, scopes: [...t.scopes] })),
    sources,
    simulator: d.simulator === null ? null : {
      port: d.simulator.port,
      switches: d.simulator.switches,
      intervalMs: durationMs(d.simulator.interval),
      fault500Pct: d.simulator.fault_500_pct,
      faultSlowMs: d.simulator.fault_slow_ms,
      seed: d.simulator.seed,
    },
    logLevel: d.log_level,
    kafkaSink: resolveKafkaSink(d.kafka_sink),
    ha: resolveHa(d.ha, problems),
    cluster: resolveCluster(d.cluster, problems),
  };
  if (config.ha && !config.kafkaSink) problems.push('ha: active/standby decides who publishes to kafka_sink, which is not configured');
  if (config.ha) problems.push(...haSourceProblems(sources));
  if (config.cluster) problems.push(...clusterKafkaProblems(sources, record?.spec));
  if (problems.length > 0) fail(problems);
  return deepFreeze(config);
}

/** A section given as null resolves as if omitted: the schema's defaults for it. */
function validDefaults<K extends 'publish' | 'archive_hooks' | 'retention'>(key: K): Raw<K> {
  const filled = validateConfig({ archive_directory: '.' });
  if ('problems' in filled) throw new Error(`config schema defaults are invalid: ${filled.problems.join('; ')}`);
  return filled.config[key] as Raw<K>;
}

/** Sources whose batches carry no identity across recorders (matched by local time under ha). */
export function sourcesWithoutIdentity(config: ServeConfig): string[] {
  return config.sources
    .filter((s) => (s.type === 'http-json' && !s.options.snapshot_header) || s.type === 'push' || (s.type === 'csv-matrix' && s.options.snapshot_header === null))
    .map((s) => s.name);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
