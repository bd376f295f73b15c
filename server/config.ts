/**
 * The config file: one JSON document (with `//` comments allowed), validated once at start
 * against a JSON Schema (ajv) with no unknown keys; every error names the key path and why.
 * Each source's own keys are validated by the schema its module exports. The result is
 * resolved (durations in ms, defaults filled) and frozen.
 */
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { TapedeckError } from '../protocol/errors.js';
import { parseGlob } from '../protocol/glob.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { COLD_DEFAULTS, HOOK_DEFAULTS, HOOK_GET_DEFAULTS, HOOK_LIST_TIMEOUT_MS, STORAGE_DEFAULTS } from '../storage/index.js';
import { DURATION_SCHEMA, durationMs, type Duration } from './duration.js';
import { SERVER_LIMITS, SOURCE_DEFAULTS } from './limits.js';
import { SOURCE_TYPES } from './sources/registry.js';
import type { TokenConfig } from './ops/auth.js';
import { READINESS_DEFAULT_MAX_STALENESS_MS } from './ops/stats.js';
import { KAFKA_SINK_DEFAULTS } from './sinks/kafka.js';
import { HA_DEFAULTS } from './ha/coordinator.js';
import { hostname } from 'node:os';

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
  } | null;
  publish: {
    host: string;
    port: number;
    maxSessions: number;
    maxSessionsPerClient: number;
    /** A session with no stream attached and no REST call for this long is collected. */
    sessionGraceMs: number;
    /** Requests per window per client (token name, else address); null = unlimited. */
    rateLimit: { max: number; timeWindowMs: number } | null;
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
}

export const PUBLISH_DEFAULTS = {
  bind: '127.0.0.1:8080',
  maxSessions: 512,
  maxSessionsPerClient: 64,
  sessionGraceMs: 30_000,
  /** Per client (token name, else address): generous for dashboards, a stop for runaway loops. */
  rateLimit: { max: 2000, timeWindowMs: 1000 },
} as const;
export const SIMULATOR_DEFAULTS = { port: 9001, switches: 64, intervalMs: 1000, fault500Pct: 0, faultSlowMs: 0, seed: 42 } as const;

const NULLABLE_DURATION = { 'x-expect': `null or ${DURATION_SCHEMA['x-expect']}`, anyOf: [{ type: 'null' }, ...DURATION_SCHEMA.anyOf] };
const HOOK = {
  'x-expect': 'null or a command as [ "program", [ "arg", ... ] ]',
  anyOf: [
    { type: 'null' },
    { type: 'array', minItems: 2, items: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string' } }], additionalItems: false },
  ],
};

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['archive_directory'],
  properties: {
    archive_directory: { type: 'string', minLength: 1 },
    archive_cmds: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { list: HOOK, get: HOOK, put: HOOK },
    },
    record: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        // The globs themselves are judged by protocol/glob.ts (recordSpecProblems), as at every edge.
        spec: { type: 'array', minItems: 1, items: { type: 'string' } },
        poll_interval: DURATION_SCHEMA,
        image_frequency: { type: 'integer', minimum: 0 },
        flush_frequency: { type: 'integer', minimum: 0 },
        flush_interval: DURATION_SCHEMA,
        rotate_interval: NULLABLE_DURATION,
        rotate_size: { type: ['integer', 'null'], minimum: 65536 },
      },
    },
    publish: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        bind: { type: ['string', 'null'], pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$' },
        max_sessions: { type: 'integer', minimum: 1 },
        max_sessions_per_client: { type: 'integer', minimum: 1 },
        session_grace: DURATION_SCHEMA,
        rate_limit: {
          type: ['object', 'null'],
          additionalProperties: false,
          required: ['max'],
          properties: { max: { type: 'integer', minimum: 1 }, window: DURATION_SCHEMA },
        },
      },
    },
    auth: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        tokens: {
          type: 'array',
          maxItems: 1024,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'token', 'scopes'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,64}$' },
              token: { type: 'string', minLength: 16, maxLength: 4096 },
              scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['read', 'ingest', 'admin'] } },
            },
          },
        },
      },
    },
    sources: {
      type: 'array',
      maxItems: SERVER_LIMITS.sourcesMax,
      items: {
        type: 'object',
        required: ['name', 'type'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
          type: { enum: Object.keys(SOURCE_TYPES) },
          required: { type: 'boolean' },
          max_staleness: DURATION_SCHEMA,
        },
      },
    },
    simulator: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        switches: { type: 'integer', minimum: 1, maximum: 4096 },
        interval: DURATION_SCHEMA,
        fault_500_pct: { type: 'number', minimum: 0, maximum: 100 },
        fault_slow_ms: { type: 'integer', minimum: 0, maximum: 600_000 },
        seed: { type: 'integer' },
      },
    },
    log_level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    archive_hooks: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        timeout: DURATION_SCHEMA,
        list_timeout: DURATION_SCHEMA,
        get_timeout: DURATION_SCHEMA,
        get_attempts: { type: 'integer', minimum: 1, maximum: 100 },
        attempts: { type: 'integer', minimum: 1, maximum: 100 },
        backoff_initial: DURATION_SCHEMA,
        backoff_max: DURATION_SCHEMA,
        list_interval: NULLABLE_DURATION,
      },
    },
    kafka_sink: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['brokers', 'topic'],
      properties: {
        brokers: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$' } },
        topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
        format: { enum: ['msgpack', 'json'] },
        key: { enum: ['stream', 'path'] },
        client_id: { type: 'string', minLength: 1 },
        queue_max_batches: { type: 'integer', minimum: 1 },
      },
    },
    ha: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['redis'],
      properties: {
        redis: { type: 'string', pattern: '^rediss?://' },
        cluster: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
        id: { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,64}$' },
        lease_ttl: DURATION_SCHEMA,
        buffer_window: DURATION_SCHEMA,
        buffer_max_batches: { type: 'integer', minimum: 1 },
        promotion_max_wait: DURATION_SCHEMA,
        on_redis_loss: { enum: ['publish', 'standby'] },
      },
    },
    retention: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        max_age: NULLABLE_DURATION,
        max_bytes: { type: ['integer', 'null'], minimum: 0 },
        check_interval: DURATION_SCHEMA,
        keep_fetched: DURATION_SCHEMA,
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
ajv.addVocabulary(['x-expect']);
const validateTop = ajv.compile(CONFIG_SCHEMA);
const sourceValidators = new Map<string, ValidateFunction>();
function sourceValidator(type: string): ValidateFunction {
  let v = sourceValidators.get(type);
  if (!v) {
    v = ajv.compile((SOURCE_TYPES[type] as { schema: object }).schema);
    sourceValidators.set(type, v);
  }
  return v;
}

/** `/sources/0/url` -> `sources[0].url`. */
function keyPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(top level)' : out;
}

/** One line per problem, naming the key path; anyOf failures are said once, in words. */
export function describeErrors(errors: readonly ErrorObject[], prefix = ''): string[] {
  const summarized = errors.filter((e) => e.keyword === 'anyOf' && (e.parentSchema as Record<string, unknown> | undefined)?.['x-expect']);
  const out: string[] = [];
  for (const e of errors) {
    if (summarized.some((s) => s !== e && e.schemaPath.startsWith(`${s.schemaPath}/`))) continue;
    const at = keyPath(prefix + e.instancePath);
    switch (e.keyword) {
      case 'additionalProperties':
        out.push(`${keyPath(prefix + e.instancePath, String(e.params.additionalProperty))}: unknown key`);
        break;
      case 'required':
        out.push(`${keyPath(prefix + e.instancePath, String(e.params.missingProperty))}: required key is missing`);
        break;
      case 'anyOf': {
        const expect = (e.parentSchema as Record<string, unknown> | undefined)?.['x-expect'];
        out.push(`${at}: must be ${typeof expect === 'string' ? expect : 'one of the allowed forms'}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
        break;
      }
      case 'enum':
        out.push(`${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
        break;
      default:
        out.push(`${at}: ${e.message ?? 'is invalid'}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
    }
  }
  return [...new Set(out)];
}

/** JSON with `//` line comments (outside strings) allowed. */
export function stripComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else {
      out += c;
    }
  }
  return out;
}

function hook(v: unknown): HookCommand | null {
  if (!Array.isArray(v)) return null;
  return { cmd: v[0] as string, args: [...(v[1] as string[])] };
}

/** publish.rate_limit: absent = PUBLISH_DEFAULTS.rateLimit, null = off. */
function rateLimitOf(v: unknown): { max: number; timeWindowMs: number } | null {
  if (v === null) return null;
  if (v === undefined) return { ...PUBLISH_DEFAULTS.rateLimit };
  const o = v as { max: number; window?: Duration };
  return { max: o.max, timeWindowMs: o.window !== undefined ? durationMs(o.window) : 1000 };
}

/** archive_hooks and retention: durations in ms, defaults from storage/hooks.ts and storage/cold.ts. */
function hooksAndRetention(h: Record<string, unknown> | null | undefined, r: Record<string, unknown> | null | undefined, problems: string[]): Pick<ServeConfig, 'archiveHooks' | 'retention'> {
  const ms = (v: unknown, dflt: number): number => (v === undefined ? dflt : v === null ? 0 : durationMs(v as Duration));
  const archiveHooks = {
    timeoutMs: ms(h?.timeout, HOOK_DEFAULTS.timeoutMs),
    listTimeoutMs: ms(h?.list_timeout, HOOK_LIST_TIMEOUT_MS),
    getTimeoutMs: ms(h?.get_timeout, HOOK_GET_DEFAULTS.timeoutMs),
    getAttempts: (h?.get_attempts as number | undefined) ?? HOOK_GET_DEFAULTS.attempts,
    attempts: (h?.attempts as number | undefined) ?? HOOK_DEFAULTS.attempts,
    backoffInitialMs: ms(h?.backoff_initial, HOOK_DEFAULTS.backoffInitialMs),
    backoffMaxMs: ms(h?.backoff_max, HOOK_DEFAULTS.backoffMaxMs),
    listIntervalMs: ms(h?.list_interval, COLD_DEFAULTS.listIntervalMs),
  };
  const retention = {
    maxAgeMs: ms(r?.max_age, 0),
    maxBytes: (r?.max_bytes as number | null | undefined) ?? 0,
    checkIntervalMs: ms(r?.check_interval, COLD_DEFAULTS.checkIntervalMs),
    keepFetchedMs: ms(r?.keep_fetched, COLD_DEFAULTS.fetchedKeepMs),
  };
  for (const k of ['timeout', 'list_timeout', 'backoff_initial'] as const) {
    if (h?.[k] !== undefined && ms(h[k], 1) <= 0) problems.push(`archive_hooks.${k}: must be more than 0`);
  }
  if (archiveHooks.backoffMaxMs < archiveHooks.backoffInitialMs) problems.push('archive_hooks.backoff_max: must not be less than backoff_initial');
  if (r?.check_interval !== undefined && retention.checkIntervalMs <= 0) problems.push('retention.check_interval: must be more than 0');
  return { archiveHooks, retention };
}

/** kafka_sink and ha: defaults from server/sinks/kafka.ts and server/ha/. */
function kafkaAndHa(k: Record<string, unknown> | null | undefined, h: Record<string, unknown> | null | undefined, problems: string[]): Pick<ServeConfig, 'kafkaSink' | 'ha'> {
  const ms = (v: unknown, dflt: number): number => (v === undefined ? dflt : durationMs(v as Duration));
  const kafkaSink = k ? {
    brokers: [...(k.brokers as string[])],
    topic: k.topic as string,
    format: (k.format as 'msgpack' | 'json' | undefined) ?? 'msgpack',
    key: (k.key as 'stream' | 'path' | undefined) ?? 'stream',
    clientId: (k.client_id as string | undefined) ?? 'tapedeck-sink',
    queueMaxBatches: (k.queue_max_batches as number | undefined) ?? KAFKA_SINK_DEFAULTS.queueMaxBatches,
  } : null;
  const ha = h ? {
    redisUrl: h.redis as string,
    cluster: (h.cluster as string | undefined) ?? 'tapedeck',
    id: (h.id as string | undefined) ?? `${hostname().replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 40)}-${process.pid}`,
    leaseTtlMs: ms(h.lease_ttl, HA_DEFAULTS.leaseTtlMs),
    bufferWindowMs: ms(h.buffer_window, KAFKA_SINK_DEFAULTS.bufferWindowMs),
    bufferMaxBatches: (h.buffer_max_batches as number | undefined) ?? KAFKA_SINK_DEFAULTS.bufferMaxBatches,
    promotionMaxWaitMs: ms(h.promotion_max_wait, KAFKA_SINK_DEFAULTS.promotionMaxWaitMs),
    onRedisLoss: (h.on_redis_loss as 'publish' | 'standby' | undefined) ?? 'publish',
  } : null;
  if (ha && ha.leaseTtlMs < 200) problems.push('ha.lease_ttl: must be at least 200ms');
  if (ha && !kafkaSink) problems.push('ha: active/standby decides who publishes to kafka_sink, which is not configured');
  return { kafkaSink, ha };
}

/** record.spec checked glob by glob with the one glob parser: a problem per bad glob. */
function recordSpecProblems(spec: unknown): string[] {
  if (!Array.isArray(spec)) return [];
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

/** Validates a parsed config document and resolves it; throws TPD_BAD_CONFIG naming every bad key. */
export function resolveConfig(doc: unknown, origin = 'config'): ServeConfig {
  const fail = (problems: string[]): never => {
    throw new TapedeckError('TPD_BAD_CONFIG', `${origin}: ${problems.join('; ')}`, { problems });
  };
  if (!validateTop(doc)) fail(describeErrors(validateTop.errors ?? []));
  const d = doc as Record<string, unknown>;
  const problems: string[] = [];
  const names = new Set<string>();
  const sources: SourceEntry[] = [];
  ((d.sources ?? []) as Array<Record<string, unknown>>).forEach((s, i) => {
    const { name, type, required, max_staleness: maxStaleness, ...options } = s as { name: string; type: string; required?: boolean; max_staleness?: Duration } & Record<string, unknown>;
    if (names.has(name)) problems.push(`sources[${i}].name: ${JSON.stringify(name)} is used by another source`);
    names.add(name);
    const v = sourceValidator(type);
    if (!v(options)) problems.push(...describeErrors(v.errors ?? [], `/sources/${i}`));
    else for (const p of SOURCE_TYPES[type]?.check?.(options) ?? []) problems.push(`sources[${i}].${p}`);
    for (const k of ['interval', 'timeout', 'backoff_initial', 'backoff_max']) {
      if (options[k] !== undefined && v.errors === null && durationMs(options[k] as Duration) <= 0) problems.push(`sources[${i}].${k}: must be more than 0`);
    }
    if (typeof options.url === 'string' && options.url.includes('{simulator}') && !d.simulator) {
      problems.push(`sources[${i}].url: uses {simulator} but the config has no simulator section`);
    }
    sources.push({
      name, type, options,
      readiness: {
        required: required ?? type !== 'push',
        maxStalenessMs: maxStaleness !== undefined ? durationMs(maxStaleness) : READINESS_DEFAULT_MAX_STALENESS_MS,
      },
    });
  });
  const r = d.record as Record<string, unknown> | null | undefined;
  problems.push(...recordSpecProblems(r?.spec));
  if (problems.length > 0) fail(problems);

  const p = (d.publish ?? {}) as Record<string, unknown>;
  const bind = (p.bind as string | null | undefined) ?? PUBLISH_DEFAULTS.bind;
  const colon = bind.lastIndexOf(':');
  const port = Number(bind.slice(colon + 1));
  if (port > 65535) fail([`publish.bind: port ${port} is out of range`]);
  const sim = d.simulator as Record<string, unknown> | null | undefined;
  const cmds = (d.archive_cmds ?? {}) as Record<string, unknown>;
  const hookProblems: string[] = [];
  const config: ServeConfig = {
    archiveDirectory: d.archive_directory as string,
    archiveCmds: { list: hook(cmds.list), get: hook(cmds.get), put: hook(cmds.put) },
    record: r === null ? null : {
      spec: (r?.spec as string[] | undefined) ?? ['/**'],
      pollIntervalMs: r?.poll_interval !== undefined ? durationMs(r.poll_interval as Duration) : SOURCE_DEFAULTS.pollIntervalMs,
      imageFrequencyBytes: (r?.image_frequency as number | undefined) ?? STORAGE_DEFAULTS.imageFrequencyBytes,
      flushFrequencyPages: (r?.flush_frequency as number | undefined) ?? STORAGE_DEFAULTS.flushFrequencyPages,
      flushIntervalMs: r?.flush_interval !== undefined ? durationMs(r.flush_interval as Duration) : STORAGE_DEFAULTS.flushIntervalMs,
      rotateIntervalMs: r?.rotate_interval !== undefined && r.rotate_interval !== null ? durationMs(r.rotate_interval as Duration) : 0,
      rotateSizeBytes: (r?.rotate_size as number | null | undefined) ?? 0,
    },
    publish: {
      host: bind.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
      port,
      maxSessions: (p.max_sessions as number | undefined) ?? PUBLISH_DEFAULTS.maxSessions,
      maxSessionsPerClient: (p.max_sessions_per_client as number | undefined) ?? PUBLISH_DEFAULTS.maxSessionsPerClient,
      sessionGraceMs: p.session_grace !== undefined ? durationMs(p.session_grace as Duration) : PUBLISH_DEFAULTS.sessionGraceMs,
      rateLimit: rateLimitOf(p.rate_limit),
    },
    tokens: (((d.auth as Record<string, unknown> | null | undefined)?.tokens ?? []) as TokenConfig[]).map((t) => ({ ...t, scopes: [...t.scopes] })),
    sources,
    simulator: sim ? {
      port: (sim.port as number | undefined) ?? SIMULATOR_DEFAULTS.port,
      switches: (sim.switches as number | undefined) ?? SIMULATOR_DEFAULTS.switches,
      intervalMs: sim.interval !== undefined ? durationMs(sim.interval as Duration) : SIMULATOR_DEFAULTS.intervalMs,
      fault500Pct: (sim.fault_500_pct as number | undefined) ?? SIMULATOR_DEFAULTS.fault500Pct,
      faultSlowMs: (sim.fault_slow_ms as number | undefined) ?? SIMULATOR_DEFAULTS.faultSlowMs,
      seed: (sim.seed as number | undefined) ?? SIMULATOR_DEFAULTS.seed,
    } : null,
    logLevel: (d.log_level as string | undefined) ?? 'info',
    ...kafkaAndHa(d.kafka_sink as Record<string, unknown> | null | undefined, d.ha as Record<string, unknown> | null | undefined, hookProblems),
    ...hooksAndRetention(d.archive_hooks as Record<string, unknown> | null | undefined, d.retention as Record<string, unknown> | null | undefined, hookProblems),
  };
  if (config.ha) hookProblems.push(...haSourceProblems(sources));
  if (hookProblems.length > 0) fail(hookProblems);
  if (config.record && config.record.flushIntervalMs > 0 && config.record.flushIntervalMs < 1) fail(['record.flush_interval: must be 0 (off) or at least 1ms']);
  if (config.record && config.record.pollIntervalMs <= 0) fail(['record.poll_interval: must be more than 0']);
  return deepFreeze(config);
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

/** Sources whose batches carry no identity across recorders (matched by local time under ha). */
export function sourcesWithoutIdentity(config: ServeConfig): string[] {
  return config.sources
    .filter((s) => (s.type === 'http-json' && !s.options.snapshot_header) || s.type === 'push' || (s.type === 'csv-matrix' && s.options.snapshot_header === null))
    .map((s) => s.name);
}

/** Reads, parses and resolves a config file. */
export async function loadConfig(file: string): Promise<ServeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TapedeckError('TPD_BAD_CONFIG', `cannot read config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stripComments(text));
  } catch (err) {
    throw new TapedeckError('TPD_BAD_CONFIG', `config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return resolveConfig(doc, `config ${file}`);
}

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

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
