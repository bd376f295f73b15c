/**
 * The values Tapedeck records: anything msgpack can carry.
 * A path is a `/`-separated name; an update is one (path, value) pair; a batch is the
 * updates observed together under one timestamp (microseconds since the epoch).
 */
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

export function isValidPath(path: string): boolean {
  return path.length > 0 && path.length <= 4096 && path.charCodeAt(0) === 47 /* / */ && !path.includes('\0');
}
