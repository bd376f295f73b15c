/**
 * Writes docs/limits.md from each layer's limit tables (`npm run docs:limits`). Values come
 * from the tables themselves (imported); each one's meaning from the doc comment on its key
 * in the source (or on the same key of the table's interface), else from DESCRIPTIONS below.
 * test/docs.test.ts checks the page equals renderLimitsDoc().
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { SPEED_MAX, SPEED_MIN } from '../protocol/controls.js';
import { STORAGE_DEFAULTS, STORAGE_LIMITS } from '../storage/limits.js';
import { BLOCK_PAYLOAD_BYTES_MAX } from '../storage/codec/frame.js';
import { COLD_DEFAULTS, COLD_LIMITS } from '../storage/cold.js';
import { HOOK_DEFAULTS, HOOK_GET_DEFAULTS, HOOK_LIMITS, HOOK_LIST_TIMEOUT_MS } from '../storage/hooks.js';
import { SERVER_LIMITS, SOURCE_DEFAULTS } from '../server/limits.js';
import { SERVER_DEFAULTS } from '../server/app.js';
import { PUBLISH_DEFAULTS, SIMULATOR_DEFAULTS } from '../server/config.js';
import { PLAYBACK_DEFAULTS } from '../server/sessions/manager.js';
import { CONTROLS_PER_SECOND_MAX } from '../server/routes/sessions.js';
import { READINESS_DEFAULT_MAX_STALENESS_MS } from '../server/ops/stats.js';
import { KAFKA_SOURCE_LIMITS } from '../server/sources/kafka.js';
import { KAFKA_SINK_DEFAULTS } from '../server/sinks/kafka.js';
import { HA_DEFAULTS } from '../server/ha/coordinator.js';
import { declarationComments, exportComment, fileHeaderComment } from './doc-comments.js';

/** One exported table (an object of limits) or one exported constant. */
interface Entry {
  name: string;
  /** Source file, relative to the repository root. */
  file: string;
  value: unknown;
  /** Interfaces (file, name) whose member comments explain keys the table leaves bare. */
  interfaces?: ReadonlyArray<readonly [string, string]>;
}

interface Layer {
  title: string;
  /** The file whose header comment explains how this layer's limits relate. */
  relations: string;
  entries: Entry[];
}

const LAYERS: Layer[] = [
  {
    title: 'Protocol',
    relations: 'protocol/limits.ts',
    entries: [
      { name: 'PROTOCOL_LIMITS', file: 'protocol/limits.ts', value: PROTOCOL_LIMITS },
      { name: 'SPEED_MIN', file: 'protocol/controls.ts', value: SPEED_MIN },
      { name: 'SPEED_MAX', file: 'protocol/controls.ts', value: SPEED_MAX },
    ],
  },
  {
    title: 'Storage',
    relations: 'storage/limits.ts',
    entries: [
      { name: 'STORAGE_LIMITS', file: 'storage/limits.ts', value: STORAGE_LIMITS },
      { name: 'STORAGE_DEFAULTS', file: 'storage/limits.ts', value: STORAGE_DEFAULTS },
      { name: 'BLOCK_PAYLOAD_BYTES_MAX', file: 'storage/codec/frame.ts', value: BLOCK_PAYLOAD_BYTES_MAX },
      { name: 'COLD_LIMITS', file: 'storage/cold.ts', value: COLD_LIMITS },
      { name: 'COLD_DEFAULTS', file: 'storage/cold.ts', value: COLD_DEFAULTS },
      { name: 'HOOK_LIMITS', file: 'storage/hooks.ts', value: HOOK_LIMITS },
      { name: 'HOOK_DEFAULTS', file: 'storage/hooks.ts', value: HOOK_DEFAULTS, interfaces: [['storage/hooks.ts', 'HookPolicy']] },
      { name: 'HOOK_GET_DEFAULTS', file: 'storage/hooks.ts', value: HOOK_GET_DEFAULTS, interfaces: [['storage/hooks.ts', 'HookPolicy']] },
      { name: 'HOOK_LIST_TIMEOUT_MS', file: 'storage/hooks.ts', value: HOOK_LIST_TIMEOUT_MS },
    ],
  },
  {
    title: 'Server',
    relations: 'server/limits.ts',
    entries: [
      { name: 'SERVER_LIMITS', file: 'server/limits.ts', value: SERVER_LIMITS },
      { name: 'SOURCE_DEFAULTS', file: 'server/limits.ts', value: SOURCE_DEFAULTS },
      { name: 'SERVER_DEFAULTS', file: 'server/app.ts', value: SERVER_DEFAULTS },
      { name: 'PUBLISH_DEFAULTS', file: 'server/config/defaults.ts', value: PUBLISH_DEFAULTS },
      { name: 'SIMULATOR_DEFAULTS', file: 'server/config/defaults.ts', value: SIMULATOR_DEFAULTS },
      {
        name: 'PLAYBACK_DEFAULTS',
        file: 'server/sessions/manager.ts',
        value: PLAYBACK_DEFAULTS,
        interfaces: [['server/sessions/manager.ts', 'PlaybackOptions'], ['server/sessions/session.ts', 'SessionLimits']],
      },
      { name: 'CONTROLS_PER_SECOND_MAX', file: 'server/routes/sessions.ts', value: CONTROLS_PER_SECOND_MAX },
      { name: 'READINESS_DEFAULT_MAX_STALENESS_MS', file: 'server/ops/stats.ts', value: READINESS_DEFAULT_MAX_STALENESS_MS },
      { name: 'KAFKA_SOURCE_LIMITS', file: 'server/sources/kafka-source-config.ts', value: KAFKA_SOURCE_LIMITS },
      { name: 'KAFKA_SINK_DEFAULTS', file: 'server/sinks/kafka-sink-options.ts', value: KAFKA_SINK_DEFAULTS },
      { name: 'HA_DEFAULTS', file: 'server/ha/coordinator.ts', value: HA_DEFAULTS },
    ],
  },
];

/** Meanings of the limits whose source carries no doc comment (keep these few; prefer a comment in the source). */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  'SPEED_MIN': 'Slowest playback speed a session accepts (the `speed` control).',
  'SPEED_MAX': 'Fastest numeric playback speed a session accepts (besides `unlimited`).',
  'STORAGE_LIMITS.blockUpdatesTarget': 'A delta block is sealed at this many updates ...',
  'STORAGE_LIMITS.blockRawBytesTarget': '... or at this many estimated raw bytes, whichever comes first.',
  'STORAGE_LIMITS.batchUpdatesMax': 'Most updates in one batch (`append` refuses more with TPD_BATCH_TOO_LARGE).',
  'STORAGE_LIMITS.batchBytesMax': 'Largest size of one batch\'s values: strings in their UTF-8 bytes (two bytes a UTF-16 unit when one holds a lone surrogate: msgpack ext 1), bytes and structures as encoded, numbers as 3 bytes; kept well under BLOCK_PAYLOAD_BYTES_MAX.',
  'STORAGE_LIMITS.writeQueueBytesHigh': 'Bytes of sealed blocks waiting to be written past which `append` asks the producer to `await drain()`.',
  'STORAGE_LIMITS.writeQueueBytesMax': 'Bytes waiting past which `append` throws TPD_BACKPRESSURE.',
  'STORAGE_LIMITS.decodedCacheUpdatesMax': 'Decoded updates kept in the block cache shared by all readers.',
  'STORAGE_LIMITS.openFilesMax': 'Archive file handles readers keep open at once.',
  'STORAGE_LIMITS.diskFullRetryMaxMs': 'Longest wait between two retries of a write the full disk refused.',
  'HOOK_DEFAULTS.timeoutMs': 'A put or get hook run is killed with its children after this long.',
  'HOOK_DEFAULTS.backoffMaxMs': 'Longest delay between two runs of a failing hook.',
  'HOOK_GET_DEFAULTS.timeoutMs': 'A get hook run is killed after this long (a reader waits on it).',
  'SERVER_DEFAULTS.bodyLimitBytes': 'Largest HTTP request body outside ingest (fastify bodyLimit).',
  'SERVER_DEFAULTS.wsMaxPayloadBytes': 'Largest WebSocket message a client may send (session controls, WebSocket ingest).',
  'PUBLISH_DEFAULTS.bind': 'Address and port the server listens on (`publish.bind`).',
  'PUBLISH_DEFAULTS.maxSessions': 'Playback sessions at once, all clients (`publish.max_sessions`).',
  'PUBLISH_DEFAULTS.maxSessionsPerClient': 'Playback sessions at once per client (`publish.max_sessions_per_client`).',
  'PUBLISH_DEFAULTS.sessionGraceMs': 'A session with no client attached is collected after this long (`publish.session_grace`).',
  'PLAYBACK_DEFAULTS.wsBufferHighBytes': 'Above this many unsent bytes on a socket the session waits for the client to read.',
  'SIMULATOR_DEFAULTS.port': 'Port of `tapedeck simulate`.',
  'SIMULATOR_DEFAULTS.switches': 'Simulated switches (8 metrics each).',
  'SIMULATOR_DEFAULTS.intervalMs': 'The simulated fabric changes this often.',
  'SIMULATOR_DEFAULTS.fault500Pct': 'Percentage of requests answered with HTTP 500 (fault injection).',
  'SIMULATOR_DEFAULTS.faultSlowMs': 'Delay added to answers (fault injection).',
  'SIMULATOR_DEFAULTS.seed': 'Seed of the simulated values (the same seed gives the same fabric).',
  'PUBLISH_DEFAULTS.rateLimit.max': 'Requests per client (token name, else address) per window (`publish.rate_limit`): generous for dashboards, a stop for runaway loops.',
  'PUBLISH_DEFAULTS.rateLimit.timeWindowMs': 'The window of the per-client rate limit.',
  'SERVER_LIMITS.stateBodyCachedMaxBytes': 'Largest single latest-state answer kept rendered (see stateBodiesCachedMaxBytes).',
  'READINESS_DEFAULT_MAX_STALENESS_MS': 'A required source whose last success is older than this makes /ready answer 503.',
};

const REPO = new URL('../', import.meta.url);

function source(file: string): string {
  return readFileSync(new URL(file, REPO), 'utf8');
}

const KIB = 1024;
const UNITS_BYTES: ReadonlyArray<readonly [number, string]> = [[KIB ** 3, 'GiB'], [KIB ** 2, 'MiB'], [KIB, 'KiB']];
const UNITS_MS: ReadonlyArray<readonly [number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];

/** 1 000 000 the way the docs write numbers (a space between thousands). */
function grouped(n: number): string {
  const [int = '', frac] = String(n).split('.');
  const withSpaces = int.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return frac === undefined ? withSpaces : `${withSpaces}.${frac}`;
}

/** The largest unit that divides n exactly, for a readable second form: "(64 MiB)". */
function inUnits(n: number, units: ReadonlyArray<readonly [number, string]>): string {
  for (const [size, unit] of units) if (n >= size && n % size === 0) return ` (${grouped(n / size)} ${unit})`;
  return '';
}

/** A value with the unit its name ends in (units last in names: `...Bytes`, `...Ms`, `...S`). */
export function formatValue(key: string, v: unknown): string {
  if (typeof v !== 'number') return `\`${JSON.stringify(v)}\``;
  if (/Bytes|_BYTES/.test(key)) return `${grouped(v)} bytes${inUnits(v, UNITS_BYTES)}`;
  if (/Ms($|[A-Z])|_MS$/.test(key)) return `${grouped(v)} ms${inUnits(v, UNITS_MS)}`;
  if (/Pct$/.test(key)) return `${grouped(v)} %`;
  if (/[a-z]S$/.test(key)) return `${grouped(v)} s`;
  return grouped(v);
}

interface Row {
  name: string;
  value: string;
  meaning: string;
}

/** Flattens a table to `TABLE.key` rows (`TABLE.key.sub` for a nested object). */
function rowsOf(entry: Entry): Row[] {
  const text = source(entry.file);
  if (typeof entry.value !== 'object' || entry.value === null) {
    const meaning = exportComment(text, entry.name) ?? DESCRIPTIONS[entry.name] ?? '';
    return [{ name: entry.name, value: formatValue(entry.name, entry.value), meaning }];
  }
  const comments = declarationComments(text, entry.name, 'const');
  const fallbacks = (entry.interfaces ?? []).map(([file, name]) => declarationComments(source(file), name, 'interface'));
  const meaningOf = (key: string, qualified: string): string =>
    comments.get(key) ?? DESCRIPTIONS[qualified] ?? fallbacks.map((c) => c.get(key)).find((m) => m !== undefined) ?? '';
  const rows: Row[] = [];
  for (const [key, v] of Object.entries(entry.value)) {
    const qualified = `${entry.name}.${key}`;
    if (typeof v === 'object' && v !== null) {
      for (const [sub, sv] of Object.entries(v)) {
        rows.push({ name: `${qualified}.${sub}`, value: formatValue(sub, sv), meaning: DESCRIPTIONS[`${qualified}.${sub}`] ?? meaningOf(key, qualified) });
      }
    } else {
      rows.push({ name: qualified, value: formatValue(key, v), meaning: meaningOf(key, qualified) });
    }
  }
  return rows;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

function renderLayer(layer: Layer): string {
  const files = [...new Set(layer.entries.map((e) => e.file))];
  const rows = layer.entries.flatMap(rowsOf);
  return [
    `## ${layer.title}`,
    '',
    `From ${files.map((f) => `[\`${f}\`](../${f})`).join(', ')}.`,
    '',
    ...fileHeaderComment(source(layer.relations)).flatMap((p) => [p, '']),
    '| name | value | meaning |',
    '|---|---|---|',
    ...rows.map((r) => `| \`${r.name}\` | ${r.value} | ${cell(r.meaning)} |`),
    '',
  ].join('\n');
}

/** The text of docs/limits.md. */
export function renderLimitsDoc(): string {
  return `# Limits and defaults

Everything that can grow in Tapedeck has a named limit, kept in one table per layer; the
defaults that bound work (intervals, timeouts, retries) sit beside them. This page lists
them all, generated from the tables by \`npm run docs:limits\` (\`scripts/gen-limits-doc.ts\`;
a test checks that this page and the tables agree). Config keys that override a default are
described in [config.md](config.md); errors that name a limit are in [errors.md](errors.md).

${LAYERS.map(renderLayer).join('\n')}`;
}

/** Every row of every layer, for tests (each limit must say what it bounds). */
export function limitRows(): Row[] {
  return LAYERS.flatMap((l) => l.entries.flatMap(rowsOf));
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) {
  writeFileSync(new URL('docs/limits.md', REPO), renderLimitsDoc());
}
