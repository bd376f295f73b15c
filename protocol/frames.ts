/**
 * Frames that cross the session WebSocket, shared by server and clients. Pure.
 *
 * Server -> client frames carry `type`:
 *   state    full state at the position: every covered path, null where it had no value
 *   batch    one recorded batch, exactly as recorded (ts in µs, updates as [path, value] pairs)
 *   batches  several consecutive batches in one frame (sent when playing faster than real
 *            time or catching up, to save per-frame overhead; grouping and order are kept)
 *   controls the session's controls after any change
 *   end      playback reached `end` (or the session is closing)
 *   error    a stable code and message (a bad control names the control; the session lives on)
 *   info     informational (e.g. buffering)
 *   paths    msgpack only: path ids used by later frames ([id, path] pairs, each id once)
 *
 * In msgpack frames paths are replaced by their ids (`paths` frames announce them), so the
 * updates of state/batch frames are [id, value] pairs.
 *
 * JSON has no form for bytes, bigints or non-finite numbers: they travel as
 * {"$bytes": base64}, {"$bigint": "123"}, {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}.
 */
import type { ControlsInput, ControlsView } from './controls.js';
import type { Value } from './value.js';

export type PathKey = string | number;

export interface BatchBody<K extends PathKey = string> {
  ts: number;
  updates: Array<[K, Value]>;
}

export type ServerFrame<K extends PathKey = string> =
  | { type: 'state'; ts: number | null; values: K extends string ? Record<string, Value> : Array<[number, Value]> }
  | ({ type: 'batch' } & BatchBody<K>)
  | { type: 'batches'; batches: Array<BatchBody<K>> }
  | { type: 'controls'; controls: ControlsView }
  | { type: 'end'; reason: 'end' | 'closed' | 'deleted' }
  | { type: 'error'; code: string; message: string; control?: string }
  | { type: 'info'; code: string; message: string }
  | { type: 'paths'; paths: Array<[number, string]> };

export type ClientFrame = { type: 'control'; set: ControlsInput } | { type: 'ping' };

export const CLIENT_FRAME_SCHEMA_TYPES = ['control', 'ping'] as const;

/** True when a value needs the JSON replacer (bytes, bigints, non-finite numbers, nested). */
function needsReplacer(v: Value): boolean {
  switch (typeof v) {
    case 'number':
      return !Number.isFinite(v) || (v === 0 && 1 / v < 0);
    case 'string':
    case 'boolean':
      return false;
    case 'bigint':
      return true;
    default:
      return v !== null; // objects, arrays, bytes: let the replacer look inside
  }
}

export function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number') {
    if (v === 0 && 1 / v < 0) return { $num: '-0' };
    return Number.isFinite(v) ? v : { $num: String(v) };
  }
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    // Buffer.prototype.toJSON ran before the replacer saw the Buffer.
    return { $bytes: Buffer.from((v as { data: number[] }).data).toString('base64') };
  }
  return v;
}

/** JSON text of a frame; the replacer runs only when some value needs it. */
export function encodeJsonFrame(frame: ServerFrame): string {
  let slow = false;
  if (frame.type === 'batch') {
    for (const u of frame.updates) if (needsReplacer(u[1])) { slow = true; break; }
  } else if (frame.type === 'batches') {
    outer: for (const b of frame.batches) for (const u of b.updates) if (needsReplacer(u[1])) { slow = true; break outer; }
  } else if (frame.type === 'state') {
    for (const k in frame.values) if (needsReplacer((frame.values as Record<string, Value>)[k] as Value)) { slow = true; break; }
  }
  return slow ? JSON.stringify(frame, jsonReplacer) : JSON.stringify(frame);
}

interface RawJsonBatch {
  ts: number;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  from: number;
  to: number;
}

/** JSON-quoted paths by id, per path table (an archive's table only grows). */
const quotedPaths = new WeakMap<readonly string[], string[]>();

/** A value's JSON text, with the escapes of jsonReplacer where a value needs them. */
function valueJson(v: Value): string {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) && !(v === 0 && 1 / v < 0) ? String(v) : JSON.stringify(v, jsonReplacer);
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return v === null ? 'null' : JSON.stringify(v, jsonReplacer);
  }
}

/**
 * JSON text of a `batch` frame (one view) or a `batches` frame (several), built from
 * decoded ids and values as text: each path is quoted once per path table, numbers and
 * strings are written directly, and only other values go through JSON.stringify (with the
 * replacer). The text is the same as JSON.stringify of the frame object would give, at
 * about twice the speed (no `[path, value]` arrays to build).
 */
export function encodeJsonRawFrame(batches: readonly RawJsonBatch[], paths: readonly string[], match: ((id: number) => boolean) | undefined): string {
  let quoted = quotedPaths.get(paths);
  if (!quoted) {
    quoted = [];
    quotedPaths.set(paths, quoted);
  }
  const one = batches.length === 1;
  let out = one ? '{"type":"batch",' : '{"type":"batches","batches":[';
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k] as RawJsonBatch;
    out += `${k === 0 ? '' : ','}${one ? '' : '{'}"ts":${b.ts},"updates":[`;
    let first = true;
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      if (match && !match(id)) continue;
      const q = quoted[id] ?? (quoted[id] = JSON.stringify(paths[id]));
      out += `${first ? '[' : ',['}${q},${valueJson(b.values[i] as Value)}]`;
      first = false;
    }
    out += one ? ']' : ']}';
  }
  return out + (one ? '}' : ']}');
}

/** Turns the JSON escapes back into bytes, bigints and non-finite numbers. */
export function reviveValue(v: unknown): Value {
  if (Array.isArray(v)) return v.map(reviveValue);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'base64'));
      if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
      if (typeof o.$num === 'string') return Number(o.$num);
    }
    const out: Record<string, Value> = {};
    for (const k of keys) out[k] = reviveValue(o[k]);
    return out;
  }
  return v as Value;
}
