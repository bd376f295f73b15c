/**
 * The values Tapedeck records: anything msgpack can carry.
 * A path is a `/`-separated name; an update is one (path, value) pair; a batch is the
 * updates observed together under one timestamp (microseconds since the epoch).
 */
import { TapedeckError } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

export type Update = [path: string, value: Value];

/**
 * An array for values, n long, every slot null: V8 keeps it in generic (tagged) elements for
 * its life, so a number stored there keeps all its bits. An array that holds only numbers
 * (`[]` then push, `[id, v]`, `.map`, `new Array(n)` then stores) is kept as raw doubles,
 * and V8 changes a NaN stored there: optimised code and store handlers quiet a signalling
 * one (Prometheus' stale marker 0x7ff0000000000002 becomes 0x7ff8000000000002), the runtime
 * replaces any NaN by 0x7ff8000000000000. Which one runs depends on the tier and on what an
 * allocation site saw before, so the loss comes and goes. Values cross every layer in these
 * arrays, typed arrays, Maps or object properties, never in arrays that may hold only
 * doubles (docs/format.md, "NaN payloads").
 */
export function valueArray(n: number): Value[] {
  return new Array<Value>(n).fill(null);
}

/** An empty array for values that stays in generic elements as it grows by push (valueArray(0) would not: fill stores nothing in it). */
export function valueList(): Value[] {
  const list: Value[] = [null];
  list.length = 0;
  return list;
}

/** A [key, value] pair in generic elements (see valueArray): a `[k, v]` literal of two numbers is an array of doubles. */
export function valuePair<K>(key: K, v: Value): [K, Value] {
  const pair = [key, null] as [K, Value];
  pair[1] = v;
  return pair;
}

export interface Batch {
  /** Microseconds since the Unix epoch; strictly increasing within an archive. */
  ts: number;
  updates: Update[];
}

/** Largest timestamp the format carries exactly (JS numbers are exact up to 2^53). */
export const TS_MAX_US = Number.MAX_SAFE_INTEGER;

/** Paths are names: well-formed text (the archive stores them as UTF-8, which has no lone surrogates). */
export function isValidPath(path: string): boolean {
  return path.length > 0 && path.length <= PROTOCOL_LIMITS.pathCharsMax && path.charCodeAt(0) === 47 /* / */ && !path.includes('\0') && isWellFormed(path);
}

/** Deepest nesting of a value (PROTOCOL_LIMITS.valueDepthMax). */
export const VALUE_DEPTH_MAX = PROTOCOL_LIMITS.valueDepthMax;

/** An object with its keys as own properties: `__proto__` and `constructor` are keys like any other. */
export function setOwn(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}

/** Integers within ±(2^53 - 1) are numbers; a bigint is only for integers beyond. */
export function canonicalInteger(n: bigint): number | bigint {
  return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
}

/** True for strings that are valid UTF-16 (no lone surrogates), so UTF-8 can carry them. */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * UTF-8 bytes to text, refusing bytes that are not UTF-8 (TPD_BAD_ARGUMENT, `what` names
 * them): a decoder that put U+FFFD in their place would change the text without a word. A
 * byte order mark is kept as the character it is.
 */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: not UTF-8 (byte ${firstBadUtf8(bytes)} starts no UTF-8 character)`);
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence. */
function firstBadUtf8(b: Uint8Array): number {
  let i = 0;
  for (let n = utf8SequenceLength(b, i); n > 0; n = utf8SequenceLength(b, i)) i += n;
  return i;
}

/** Bytes of the well-formed UTF-8 sequence starting at b[i] (1 to 4); 0 when none starts there or i is past the end. */
export function utf8SequenceLength(b: Uint8Array, i: number): number {
  if (i >= b.length) return 0;
  const c = b[i] as number;
  const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  let cp = n === 1 ? c : c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const d = b[i + k] as number;
    if ((d & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if ((n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n === 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  return n;
}
