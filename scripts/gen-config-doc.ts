/**
 * Writes the key table of docs/config.md from the config schema (`npm run docs:config`):
 * every key with what it accepts, its default and its description, between the markers
 * below; the prose around them is left as written. test/config-schema.test.ts checks that the
 * page and the schema agree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigSchema } from '../server/config.js';
import { inline } from '../clients/cli/example.js';

export const BEGIN = '<!-- config-keys: generated from server/config/schema.ts by npm run docs:config; edit the schema, not this table -->';
export const END = '<!-- /config-keys -->';

/** The parts of a JSON Schema node the table (and test/config-schema.test.ts) reads. */
export interface SchemaNode {
  description?: string;
  default?: unknown;
  type?: string | string[];
  enum?: unknown[];
  anyOf?: unknown[];
  'x-expect'?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  pattern?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
}

export interface KeyRow {
  path: string;
  node: SchemaNode;
  required: boolean;
}

/** Every key of the schema, depth first, in schema order: `record.spec`, `sources[].name`. */
export function configKeys(schema: SchemaNode = ConfigSchema as unknown as SchemaNode, prefix = ''): KeyRow[] {
  const rows: KeyRow[] = [];
  for (const [key, node] of Object.entries(schema.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    rows.push({ path, node, required: schema.required?.includes(key) ?? false });
    if (node.properties) rows.push(...configKeys(node, path));
    if (node.items?.properties) rows.push(...configKeys(node.items, `${path}[]`));
  }
  return rows;
}

/** The bounds of a number, string or array, in words. */
function bounds(n: SchemaNode): string {
  const parts: string[] = [];
  if (n.minimum !== undefined) parts.push(`≥ ${n.minimum}`);
  if (n.maximum !== undefined) parts.push(`≤ ${n.maximum}`);
  if (n.minLength !== undefined) parts.push(`${n.minLength}+ chars`);
  if (n.maxLength !== undefined) parts.push(`≤ ${n.maxLength} chars`);
  if (n.minItems !== undefined) parts.push(`${n.minItems}+ items`);
  if (n.maxItems !== undefined) parts.push(`≤ ${n.maxItems} items`);
  if (n.pattern !== undefined) parts.push(`matching \`${n.pattern}\``);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

/** What a key accepts, in words: "integer (≥ 0)", "null or duration", `"msgpack" \| "json"`. */
export function accepts(n: SchemaNode): string {
  if (n.enum) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ');
  const expect = n['x-expect'];
  if (expect !== undefined) {
    const orNull = expect.startsWith('null or ') ? 'null or ' : '';
    return expect.includes('duration') ? `${orNull}duration` : `${orNull}\`["program", ["arg", ...]]\``;
  }
  const types = Array.isArray(n.type) ? n.type : [n.type ?? 'any'];
  const base = types.filter((t) => t !== 'null');
  const item = base[0] === 'array' && n.items ? ` of ${n.items.enum ? accepts(n.items) : n.items.properties ? 'objects' : n.items.type}` : '';
  return `${base.join(' or ')}${item}${types.includes('null') ? ' or null' : ''}${bounds(n)}`;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** A description as markdown: nothing read as emphasis or HTML, docs/x.md as a link. */
const prose = (s: string): string =>
  cell(s).replace(/\*/g, '\\*').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\bdocs\/([a-z0-9-]+\.md)\b/g, '[$1]($1)');

/** One table row per key. */
export function renderConfigTable(): string {
  const rows = configKeys().map(({ path, node, required }) => {
    const dflt = node.default !== undefined ? `\`${inline(node.default)}\`` : required ? 'required' : '—';
    return `| \`${path}\` | ${cell(accepts(node))} | ${cell(dflt)} | ${prose(node.description ?? '')} |`;
  });
  return ['| key | accepts | default | what |', '|---|---|---|---|', ...rows].join('\n');
}

/** `doc` with the text between the markers replaced by the generated table. */
export function renderConfigDoc(doc: string): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`docs/config.md has no ${BEGIN} ... ${END} block`);
  return `${doc.slice(0, begin + BEGIN.length)}\n\n${renderConfigTable()}\n\n${doc.slice(end)}`;
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) {
  const file = new URL('../docs/config.md', import.meta.url);
  writeFileSync(file, renderConfigDoc(readFileSync(file, 'utf8')));
}
