/**
 * What a batch weighs in a frame, in bytes, estimated before it is encoded: a frame of
 * batches stops before the batch that would take it past frameBytesMax (PLAYBACK_DEFAULTS,
 * ./manager.ts), in both formats and on both replay paths (./gather.ts, ./columns.ts).
 *
 * The estimate is at least the encoded size for what telemetry holds: numbers count their
 * longest text (24 characters in JSON, 9 bytes in msgpack), strings their UTF-8 bytes plus
 * the JSON escapes they need, bytes their base64 in JSON, JSON paths their quoted UTF-8
 * (cached per path table, shared by sessions), a lone surrogate as JSON's 6-byte escape
 * and a string holding one as msgpack's UTF-16 (docs/values.md).
 * Strings under LONG_STRING_CHARS count 6 bytes a character in JSON and 3 in msgpack (their
 * most) rather than being measured. The walk is one pass over the batch's values, numbers
 * read by type only, which the encoder walks anyway. test/s12-frame-bytes-estimate.test.ts
 * holds it against the encoders on hostile values.
 */
import { otherIndexFrom, type ColumnBatchesView } from '../../protocol/msgpack-batch-frame.js';
import { isWellFormed, type Value } from '../../protocol/value.js';
import { msgpackStringBytes } from '../../protocol/value-msgpack.js';
import type { RawBatch } from '../../storage/cursor.js';
import type { FrameFormat } from './wire.js';

/**
 * A frame's own envelope, counted once a frame: `{"type":"batches","batches":[` and `]}` (31
 * bytes; msgpack: a map, two keys, an array header). Batches recorded empty weigh only their
 * framing, so with several of them the per-batch slack does not cover it.
 */
export const FRAME_ENVELOPE_BYTES = 32;
/** A batch's own framing: `{"ts":…,"updates":[…]}`, or `{"ts":…,"paths":[…],"values":[…]}` in the columns layout (msgpack: a map of two or three, array headers). */
const BATCH_BYTES = 56;
/** An update's framing: `[`, `,`, `]`, `,` (msgpack: an array header and an id up to uint32). */
const UPDATE_BYTES = 6;
/** A number's longest form: `-2.2250738585072014e-308` (24), msgpack float64 (9). */
const NUMBER_BYTES: Readonly<Record<FrameFormat, number>> = { json: 24, msgpack: 9 };
/** Strings shorter than this are counted at their most instead of being measured. */
const LONG_STRING_CHARS = 64;
/** Characters JSON escapes: control characters (6 bytes, `\u0001`), `"` and `\` (2). */
// eslint-disable-next-line no-control-regex -- control characters are what JSON escapes
const JSON_ESCAPED = /[\u0000-\u001f"\\]/;

/** Quoted UTF-8 length of each path by id (0: not measured yet), by path table (the archive's, shared by its sessions). */
const quotedPathBytes = new WeakMap<readonly string[], { lens: Int32Array }>();

/** The lengths of `paths`, room made for every id it has. */
function quotedBytesOf(paths: readonly string[]): Int32Array {
  let t = quotedPathBytes.get(paths);
  if (!t) quotedPathBytes.set(paths, (t = { lens: new Int32Array(0) }));
  if (t.lens.length < paths.length) {
    const lens = new Int32Array(Math.max(paths.length, t.lens.length * 2));
    lens.set(t.lens);
    t.lens = lens;
  }
  return t.lens;
}

/** Bytes of `"path"` in a JSON frame (`lens`: quotedBytesOf the path table). */
function jsonPathBytes(lens: Int32Array, paths: readonly string[], id: number): number {
  const n = lens[id] as number;
  return n > 0 ? n : (lens[id] = Buffer.byteLength(JSON.stringify(paths[id] as string)));
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Bytes of a string in a frame, at least. */
function stringBytes(s: string, format: FrameFormat): number {
  if (s.length < LONG_STRING_CHARS) return format === 'json' ? 2 + 6 * s.length : 5 + 3 * s.length;
  if (format === 'msgpack') return msgpackStringBytes(s, utf8Length);
  const lone = !isWellFormed(s);
  const utf8 = utf8Length(s);
  if (!lone && !JSON_ESCAPED.test(s)) return 2 + utf8;
  let extra = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) extra += 5;
    else if (c === 0x22 || c === 0x5c) extra += 1;
    // A surrogate (paired or not) counted 3 of UTF-8 at most; JSON may write it as `\udxxx`.
    else if (lone && c >= 0xd800 && c <= 0xdfff) extra += 3;
  }
  return 2 + utf8 + extra;
}

/** Bytes of a value in a frame, at least (see the top of this file). Values nest at most valueDepthMax. */
export function valueBytes(v: Value, format: FrameFormat): number {
  switch (typeof v) {
    case 'number':
      return NUMBER_BYTES[format];
    case 'string':
      return stringBytes(v, format);
    case 'boolean':
      return 5;
    case 'bigint':
      // {"$bigint":"…"}; msgpack int64, or ext 2 of the decimal text.
      return 16 + v.toString().length;
    default:
      break;
  }
  if (v === null || v === undefined) return 4;
  if (v instanceof Uint8Array) return format === 'json' ? 14 + Math.ceil(v.length / 3) * 4 : 5 + v.length;
  let bytes = 16; // brackets, a msgpack header, a JSON {"$obj":…} wrapper
  if (Array.isArray(v)) {
    for (const x of v as Value[]) bytes += 1 + valueBytes(x, format);
    return bytes;
  }
  for (const [k, x] of Object.entries(v as Record<string, Value>)) bytes += 2 + stringBytes(k, format) + valueBytes(x, format);
  return bytes;
}

/** A batch read one by one (updates `match` rejects left out, as the encoder leaves them). */
export function rawBatchBytes(b: RawBatch, format: FrameFormat, paths: readonly string[], match: ((id: number) => boolean) | undefined): number {
  const table = format === 'json' ? quotedBytesOf(paths) : undefined;
  const number = NUMBER_BYTES[format];
  let bytes = BATCH_BYTES;
  for (let i = b.from; i < b.to; i++) {
    const id = b.ids[i] as number;
    if (match && !match(id)) continue;
    const v = b.values[i] as Value;
    bytes += UPDATE_BYTES + (typeof v === 'number' ? number : valueBytes(v, format));
    if (table) bytes += jsonPathBytes(table, paths, id);
  }
  return bytes;
}

/** Batch `k` of a block held as columns (filtered by the cursor already). */
export function columnBatchBytes(v: ColumnBatchesView, k: number, format: FrameFormat, paths: readonly string[]): number {
  const u0 = v.starts[k] as number;
  const u1 = v.starts[k + 1] as number;
  const number = NUMBER_BYTES[format];
  let bytes = BATCH_BYTES + (u1 - u0) * (UPDATE_BYTES + number);
  if (format === 'json') {
    const table = quotedBytesOf(paths);
    for (let u = u0; u < u1; u++) bytes += jsonPathBytes(table, paths, v.ids[u] as number);
  }
  for (let j = otherIndexFrom(v, u0); j < v.otherCount && (v.otherAt[j] as number) < u1; j++) bytes += valueBytes(v.others[j] as Value, format) - number;
  return bytes;
}

/** Bytes of `[id, "path"]` in a msgpack `paths` frame, at least. */
export function pathEntryBytes(path: string): number {
  return 11 + Buffer.byteLength(path, 'utf8');
}
