/**
 * The JSON form of a value (docs/values.md), the one used by every JSON door: WebSocket
 * frames, NDJSON ingest, /state, /history, export, the Kafka sink and the web player. Pure,
 * and free of Node APIs so the browser bundle can use it too.
 *
 * JSON lacks bytes, big integers, NaN, ±Infinity and -0; they travel as one-key objects
 * whose key starts with `$` (a tag):
 *   {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}   {"$bigint": "123..."}   {"$bytes": base64}
 * The one escaping rule: a one-key object whose key starts with `$` is always a tag. A
 * user object of that shape travels wrapped as {"$obj": {...}}, its members taken
 * literally. Unknown tags are refused, so a typo is an error rather than a silent object.
 *
 * Strings travel as JSON strings: JSON.stringify escapes lone surrogates (\ud800) and
 * JSON.parse restores them, so no step may re-encode the text through UTF-8 in between.
 */
import { TapedeckError } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';
import { VALUE_DEPTH_MAX, canonicalInteger, isWellFormed, setOwn, type Value } from './value.js';
import { parseJsonText } from './value-json-text.js';

// JSON text to a tree, refusing what JSON.parse would change silently (value-json-text.ts).
export { parseJsonText } from './value-json-text.js';

export const VALUE_TAGS = ['$num', '$bigint', '$bytes', '$obj'] as const;

/** A Map, not an object: a lookup must not find Object.prototype's members (`{"$num": "constructor"}` was the function Object). */
const NUM_SPELLINGS: ReadonlyMap<string, number> = new Map([['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['-0', -0]]);
const BIGINT_TEXT = /^-?[0-9]+$/;
/**
 * Padded base64: with a length that is a multiple of 4, the groups of 4 then `XX==` or `XXX=`.
 * No group in the pattern: a repeated group keeps a backtrack entry per repetition, and
 * V8 ran out of stack on a few MiB of text (bytes that every door takes, 16 MiB in an NDJSON line).
 */
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

function isBase64Text(x: unknown): x is string {
  return typeof x === 'string' && x.length % 4 === 0 && BASE64_TEXT.test(x);
}

/** A number JSON carries as itself: finite and not -0. */
function plainNumber(v: number): boolean {
  return Number.isFinite(v) && !(v === 0 && 1 / v < 0);
}

function numTag(v: number): { $num: string } {
  return { $num: v !== v ? 'NaN' : v === 0 ? '-0' : v > 0 ? 'Infinity' : '-Infinity' };
}

/** True for `{"$...": x}`: the shape reserved for tags. */
function tagShaped(keys: readonly string[]): boolean {
  return keys.length === 1 && (keys[0] as string).charCodeAt(0) === 36; /* $ */
}

/** The JSON form of a value: a tree JSON.stringify writes exactly. */
export function valueToJson(v: Value, depth = 0): unknown {
  switch (typeof v) {
    case 'number':
      return plainNumber(v) ? v : numTag(v);
    case 'string':
    case 'boolean':
      return v;
    case 'bigint': {
      const n = canonicalInteger(v);
      return typeof n === 'number' ? n : { $bigint: n.toString() };
    }
    default:
      break;
  }
  if (v === null) return null;
  // Bytes are a scalar, no level: only arrays and objects nest (docs/values.md), at every edge.
  if (v instanceof Uint8Array) return { $bytes: toBase64(v) };
  if (depth >= VALUE_DEPTH_MAX) throw new TapedeckError('TPD_BAD_ARGUMENT', `value: nested deeper than ${VALUE_DEPTH_MAX} levels`);
  if (Array.isArray(v)) return v.map((x) => valueToJson(x, depth + 1));
  if (typeof v !== 'object') throw new TapedeckError('TPD_BAD_ARGUMENT', `a ${typeof v} is not a value`);
  const keys = Object.keys(v);
  const out: Record<string, unknown> = {};
  for (const k of keys) setOwn(out, k, valueToJson(v[k] as Value, depth + 1));
  return tagShaped(keys) ? { $obj: out } : out;
}

/** JSON text of a value; plain scalars skip building a tree. */
export function valueToJsonText(v: Value): string {
  switch (typeof v) {
    case 'number':
      return plainNumber(v) ? String(v) : JSON.stringify(numTag(v));
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return v === null ? 'null' : JSON.stringify(valueToJson(v));
  }
}

/** True when a value's JSON form is the value itself (no tag anywhere inside). */
export function isJsonPlain(v: Value, depth = 0): boolean {
  switch (typeof v) {
    case 'number':
      return plainNumber(v);
    case 'string':
    case 'boolean':
      return true;
    case 'bigint':
      return false;
    default:
      break;
  }
  if (v === null) return true;
  if (v instanceof Uint8Array || depth >= VALUE_DEPTH_MAX) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (!isJsonPlain(x, depth + 1)) return false;
    return true;
  }
  const keys = Object.keys(v);
  if (tagShaped(keys)) return false;
  for (const k of keys) if (!isJsonPlain(v[k] as Value, depth + 1)) return false;
  return true;
}

function where(path: string, at: string): string {
  return at === '' ? path : `${path} at ${at}`;
}

function bad(path: string, at: string, why: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `${where(path, at)}: ${why}`, { path, at });
}

/**
 * The value a JSON form stands for (the inverse of valueToJson). `path` names the value in
 * errors: a malformed or unknown tag is refused with TPD_BAD_ARGUMENT naming the path and
 * the place inside the value (`/a at .x[2]`).
 */
export function valueFromJson(j: unknown, path: string, at = '', depth = 0): Value {
  switch (typeof j) {
    case 'number':
    case 'string':
    case 'boolean':
      return j;
    case 'object':
      break;
    default:
      throw bad(path, at, `a ${typeof j} is not a JSON value`);
  }
  if (j === null) return null;
  if (Array.isArray(j)) {
    if (depth >= VALUE_DEPTH_MAX) throw tooDeep(path, at);
    const out = new Array<Value>(j.length);
    for (let i = 0; i < j.length; i++) out[i] = valueFromJson(j[i], path, `${at}[${i}]`, depth + 1);
    return out;
  }
  const o = j as Record<string, unknown>;
  const keys = Object.keys(o);
  // A tag of a scalar ($num, $bigint, $bytes) is no level, as valueToJson writes it; $obj is its object's.
  if (tagShaped(keys)) return fromTag(keys[0] as string, o[keys[0] as string], path, at, depth);
  if (depth >= VALUE_DEPTH_MAX) throw tooDeep(path, at);
  return membersFromJson(o, keys, path, at, depth);
}

function tooDeep(path: string, at: string): TapedeckError {
  return bad(path, at, `nested deeper than ${VALUE_DEPTH_MAX} levels`);
}

function membersFromJson(o: Record<string, unknown>, keys: readonly string[], path: string, at: string, depth: number): Value {
  const out: Record<string, Value> = {};
  for (const k of keys) setOwn(out, k, valueFromJson(o[k], path, `${at}.${k}`, depth + 1));
  return out;
}

function fromTag(tag: string, x: unknown, path: string, at: string, depth: number): Value {
  const here = `${at}.${tag}`;
  switch (tag) {
    case '$num': {
      const n = typeof x === 'string' ? NUM_SPELLINGS.get(x) : undefined;
      if (n === undefined) throw bad(path, here, 'must be "NaN", "Infinity", "-Infinity" or "-0" (finite numbers travel as JSON numbers)');
      return n;
    }
    case '$bigint':
      if (typeof x !== 'string' || !BIGINT_TEXT.test(x)) throw bad(path, here, 'must be a string of decimal digits, optionally signed');
      if (x.length - (x.charCodeAt(0) === 45 ? 1 : 0) > PROTOCOL_LIMITS.bigintDigitsMax) throw bad(path, here, `has ${x.length} characters; a bigint has at most ${PROTOCOL_LIMITS.bigintDigitsMax} digits (bigintDigitsMax)`);
      return canonicalInteger(BigInt(x));
    case '$bytes':
      if (!isBase64Text(x)) throw bad(path, here, 'must be a string of padded base64');
      return fromBase64(x);
    case '$obj':
      if (x === null || typeof x !== 'object' || Array.isArray(x)) throw bad(path, here, 'must be an object (a user object whose one key starts with "$")');
      // The wrapper is no level of the value: it is the object's, its members one deeper, as valueToJson wrote them.
      if (depth >= VALUE_DEPTH_MAX) throw tooDeep(path, at);
      return membersFromJson(x as Record<string, unknown>, Object.keys(x), path, here, depth);
    default:
      throw bad(path, at, `unknown tag "${tag}": a one-key object whose key starts with "$" is a tag (${VALUE_TAGS.join(', ')}); wrap a user object of that shape as {"$obj": {...}}`);
  }
}

/** parseJsonText then valueFromJson: the text of one value, named `path` in errors. */
export function parseJsonValueText(text: string, path: string): Value {
  try {
    return valueFromJson(parseJsonText(text), path);
  } catch (err) {
    if (err instanceof TapedeckError && !err.message.startsWith(path)) throw new TapedeckError(err.code, `${path}: ${err.message}`, err.details, { cause: err });
    throw err;
  }
}

/**
 * A CSV cell (before the CSV writer quotes it): numbers in JS shortest round-trip text
 * (NaN, Infinity, -Infinity and -0 spelled so); a string as itself when it cannot be read
 * as anything else; everything else, and strings that could be (`1`, `true`, `null`, `""`,
 * text starting with `"`, `{` or `[`, lone surrogates that UTF-8 cannot carry), as JSON
 * text of the JSON form. valueFromCsvCell reads every cell back to the identical value.
 */
export function valueToCsvCell(v: Value): string {
  if (typeof v === 'number') return v === 0 && 1 / v < 0 ? '-0' : String(v);
  if (typeof v === 'string' && csvPlainString(v)) return v;
  return valueToJsonText(v);
}

const CSV_NUMBER = /^(?:NaN|-?Infinity|-?[0-9][0-9.eE+-]*)$/;
const CSV_JSON_WORD = /^(?:true|false|null)$/;

function csvPlainString(s: string): boolean {
  if (s === '' || CSV_NUMBER.test(s) || CSV_JSON_WORD.test(s)) return false;
  const c = s.charCodeAt(0);
  return c !== 0x22 && c !== 0x7b && c !== 0x5b && isWellFormed(s); /* " { [ */
}

/** Characters a screen does not show as themselves: C0 controls, DEL, C1 controls, bidi embeddings, overrides and isolates, lone surrogates. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSHOWN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSHOWN_ANY = new RegExp(UNSHOWN.source);

/**
 * The text a screen shows for a value (the web player's table, read-outs, bands): a number
 * as valueToCsvCell writes it, a string as itself only when no other value reads the same
 * (csvPlainString) and it shows as itself (no UNSHOWN character, no space at either end);
 * anything else as the JSON text of its JSON form, every UNSHOWN character as its `\uXXXX`
 * escape (still JSON text of the same value). So "1" and 1, "" and " ", a string holding a
 * newline or U+202E and one without, show differently, and none drives the display.
 */
export function valueToDisplayText(v: Value): string {
  if (typeof v === 'number') return valueToCsvCell(v);
  if (typeof v === 'string' && csvPlainString(v) && !UNSHOWN_ANY.test(v) && v.trim() === v) return v;
  return visibleText(valueToJsonText(v));
}

/** Text (a path name, JSON text) with each UNSHOWN character as its `\\uXXXX` escape, as the terminal clients write it. */
export function visibleText(s: string): string {
  return s.replace(UNSHOWN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The value of a CSV cell written by valueToCsvCell. */
export function valueFromCsvCell(cell: string, path: string): Value {
  if (CSV_NUMBER.test(cell)) {
    const n = Number(cell);
    if (n === n || cell === 'NaN') return n;
  }
  return csvPlainString(cell) ? cell : parseJsonValueText(cell, path);
}

// Node's Buffer where it exists (fast for large bytes), atob/btoa in the browser.
const NodeBuf = typeof Buffer === 'undefined' ? undefined : Buffer;

function toBase64(b: Uint8Array): string {
  if (NodeBuf) return NodeBuf.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i] as number);
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  if (NodeBuf) return new Uint8Array(NodeBuf.from(s, 'base64'));
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}
