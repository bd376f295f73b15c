/**
 * The values Tapedeck records: anything msgpack can carry.
 * A path is a `/`-separated name; an update is one (path, value) pair; a batch is the
 * updates observed together under one timestamp (microseconds since the epoch).
 */
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
