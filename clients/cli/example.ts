/**
 * `tapedeck --example`: a complete config with every field explained, generated from the
 * config schema (server/config/schema.ts): each key's description as a comment, its example
 * value (else its default) as the value. A section whose value is null is shown commented
 * out above it, so removing one level of `// ` enables it. It is valid as it stands
 * (comments are allowed in Tapedeck config files):
 * `tapedeck --example > tapedeck.json && tapedeck serve --config tapedeck.json`.
 *
 * The source entries are written by hand below: their keys belong to each source type's
 * own schema (server/sources/), which carries no descriptions.
 */
import { ConfigSchema } from '../../server/config.js';
import { durationText } from '../../server/config/kinds.js';
import { SOURCE_DEFAULTS } from '../../server/limits.js';

/** The parts of a JSON Schema node the example reads. */
interface SchemaNode {
  description?: string;
  default?: unknown;
  examples?: unknown[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

const WIDTH = 96;

const HEADER = [
  '// Tapedeck config. JSON with // comments. Unknown keys are errors.',
  '// Durations: a string of number-unit pairs ("250ms", "5s", "1h30m", "1d"; units ns us ms s',
  '// m h d w) or { "secs": 5, "nanos": 0 }.',
];

/** The source entries, each with what its type does; the keys every source takes come from the schema. */
const SOURCES = `[
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
    //   "topics": ["telemetry"],          // or "topic_pattern": "^telemetry\\\\." (a regex)
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
  ]`;

/** Pollers' keys, which the source types share (server/sources/poller.ts). */
const POLLER_NOTE = 'Pollers (csv-matrix, http-json) also take: "interval" (default record.poll_interval), '
  + `"timeout" (whole request, default "${durationText(SOURCE_DEFAULTS.timeoutMs)}"), "backoff_initial" (first retry delay after a failure, default `
  + `"${durationText(SOURCE_DEFAULTS.backoffInitialMs)}", doubling per failure, with jitter), "backoff_max" (default "${durationText(SOURCE_DEFAULTS.backoffMaxMs)}"), `
  + '"headers" (extra request headers).';

/** A value on one line, JSON spaced the way people write it: `{ "max": 2000, "window": "1s" }`. */
export function inline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')} }`;
  }
  return JSON.stringify(v);
}

/** `text` as `//` comment lines at `indent`, wrapped at WIDTH. */
function comment(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + 3 + line.length + 1 + word.length > WIDTH) {
      lines.push(`${indent}// ${line}`);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(`${indent}// ${line}`);
  return lines;
}

const isSection = (node: SchemaNode): node is SchemaNode & { properties: Record<string, SchemaNode> } => node.properties !== undefined;

/** What a key's description says, with its default for a plain value. */
function explanation(node: SchemaNode): string {
  const text = node.description ?? '';
  return isSection(node) || node.default === undefined ? text : `${text} Default ${inline(node.default)}.`;
}

/** One member `"key": value` with its comment, as lines; `given` is the value its parent's example sets. */
function member(key: string, node: SchemaNode, given: unknown, indent: string): string[] {
  const value = given !== undefined ? given : node.examples?.[0] !== undefined ? node.examples[0] : node.default;
  const lines = comment(explanation(node), indent);
  if (key === 'sources' && indent === '  ') {
    const every = Object.entries(node.items?.properties ?? {}).map(([k, item]) => `"${k}": ${explanation(item)}`);
    lines.push(...comment(`Every source takes: ${every.join(' ')}`, indent), ...comment(POLLER_NOTE, indent), `${indent}"sources": ${SOURCES}`);
  } else if (isSection(node) && value === null) {
    lines.push(`${indent}// For example:`, ...expanded(key, node, {}, indent).map((l) => `${indent}// ${l.slice(indent.length)}`));
    lines.push(`${indent}"${key}": null`);
  } else if (isSection(node) && value !== null && typeof value === 'object') {
    lines.push(...expanded(key, node, value as Record<string, unknown>, indent));
  } else if (Array.isArray(value) && indent.length + key.length + inline(value).length > WIDTH) {
    lines.push(`${indent}"${key}": [`, ...value.map((v, i) => `${indent}  ${inline(v)}${i < value.length - 1 ? ',' : ''}`), `${indent}]`);
  } else {
    lines.push(`${indent}"${key}": ${inline(value)}`);
  }
  return lines;
}

/** A section written out key by key, each key explained. */
function expanded(key: string, node: SchemaNode & { properties: Record<string, SchemaNode> }, value: Record<string, unknown>, indent: string): string[] {
  const inner = `${indent}  `;
  return [`${indent}"${key}": {`, ...members(node.properties, value, inner, false), `${indent}}`];
}

/** Members separated by commas (on each member's value line), blank lines between top-level ones. */
function members(properties: Record<string, SchemaNode>, value: Record<string, unknown>, indent: string, spaced: boolean): string[] {
  const out: string[] = [];
  const keys = Object.keys(properties);
  keys.forEach((k, i) => {
    const lines = member(k, properties[k] as SchemaNode, value[k], indent);
    if (i < keys.length - 1) lines[lines.length - 1] += ',';
    if (spaced && i > 0) out.push('');
    out.push(...lines);
  });
  return out;
}

/** The example config, from the schema. */
export function renderExample(schema: SchemaNode & { properties: Record<string, SchemaNode> }): string {
  return [...HEADER, '{', ...members(schema.properties, {}, '  ', true), '}', ''].join('\n');
}

export const EXAMPLE_CONFIG = renderExample(ConfigSchema as unknown as SchemaNode & { properties: Record<string, SchemaNode> });

export function exampleCommand(): number {
  process.stdout.write(EXAMPLE_CONFIG);
  return 0;
}
