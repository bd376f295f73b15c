/**
 * The chunks of a per-series sidecar (format.ts): one path's samples over one slice of the
 * file's blocks, as a time column (none when the times are regular) and a value column
 * (storage/codec/columns.ts: the archive's own column kinds, exact for every bit pattern),
 * LZ4-compressed when that saves. Pure: build.ts encodes them, store.ts decodes them after
 * reading the bytes its index names.
 *
 * Layout (docs/format.md, "Per-series sidecar", Chunk): CRC32C of the rest, flags, then the
 * body: the sample count, the times, the values. Nothing is trusted before the CRC32C, the
 * flags, the count and the times are checked against the chunk's index entry; a declared raw
 * length is bounded before anything is allocated for it.
 *
 * The CRC32C also covers the chunk's place: its path id and slice, as if they preceded its
 * bytes (chunkSeed). Series scraped together share their times, so two paths' chunks of a
 * slice often have the same count, times and length: without its place, a chunk found where
 * another's should be (a misdirected write or read, in the sidecar or the build's scratch
 * file) passed every check and was read as the other path's values.
 */
import { compressSync } from 'lz4-napi';
import { valueArray, type Value } from '../../protocol/value.js';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { ColumnKind, decodeColumn, decodeColumnF64, encodeColumn } from '../codec/columns.js';
import { crc32c } from '../codec/crc.js';
import { LZ4_EXPANSION_MAX, lz4DecodeInto } from '../codec/lz4-block.js';
import { COMPRESS_SAVING_SHIFT, corrupt, RAW_BYTES_SLACK } from './format.js';

/** Chunk flags. LZ4: the body is an LZ4 block after its u32 raw length. */
export const CHUNK_LZ4 = 1;
/** The times are first + i x (last - first) / (n - 1): no time column. */
export const CHUNK_REGULAR_TIMES = 2;
/** The time column holds the times themselves, not their offsets from the chunk's first. */
export const CHUNK_ABSOLUTE_TIMES = 4;
const CHUNK_FLAGS_KNOWN = CHUNK_LZ4 | CHUNK_REGULAR_TIMES | CHUNK_ABSOLUTE_TIMES;
/** Bodies smaller than this are stored as they are: LZ4 would not save its length prefix. */
const COMPRESS_MIN_BYTES = 32;
/**
 * Bound on a declared raw length, checked before anything is allocated for it: LZ4 never
 * expands a stream more than 255 times (LZ4_EXPANSION_MAX), and a chunk's body never holds
 * more than 32 bytes a sample (two columns of at most ~10 bytes a value, XOR's worst case, and a count).
 */
const RAW_BYTES_PER_SAMPLE_MAX = 32;

/** Which chunk a chunk is: its path's id and its slice of the file's blocks. */
export interface ChunkPlace {
  id: number;
  slice: number;
}

const placeBytes = new Uint8Array(8);
const placeView = new DataView(placeBytes.buffer);

/** The CRC32C of a chunk's place (u32 id, u32 slice, little-endian): the seed of its own CRC32C. */
export function chunkSeed(place: ChunkPlace): number {
  placeView.setUint32(0, place.id, true);
  placeView.setUint32(4, place.slice, true);
  return crc32c(placeBytes);
}

// Scratch of chunk encoding: a chunk's times (or their offsets), the identity order, its body.
let timesScratch = new Float64Array(1024);
let identity = new Uint32Array(0);
const bodyWriter = new ByteWriter(1 << 12);

/** Whether times[0, n) are first + i x step exactly, the way decodeChunk rebuilds them. */
function regular(times: Float64Array, n: number): boolean {
  if (n === 1) return true;
  const first = times[0] as number;
  const step = ((times[n - 1] as number) - first) / (n - 1);
  for (let i = 1; i < n; i++) if (first + i * step !== times[i]) return false;
  return true;
}

/** Appends the chunk at `place`: timestamps ts[order[from..to)], values vals[order[from..to)]. */
export function encodeChunk(w: ByteWriter, ts: Float64Array, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number, place: ChunkPlace): void {
  const body = bodyWriter;
  body.reset();
  const flags = encodeTimes(body, ts, order, from, to);
  encodeColumn(body, vals, order, from, to);
  sealChunk(w, body, flags, to - from, RAW_BYTES_PER_SAMPLE_MAX, place);
}

/**
 * Starts a chunk's body in `body`: the sample count and the times ts[order[from..to)] (no
 * column when they are regular); returns the chunk's time flags. Shared with version 5's
 * chunks (chunk-refs.ts).
 */
export function encodeTimes(body: ByteWriter, ts: Float64Array, order: Uint32Array, from: number, to: number): number {
  const n = to - from;
  if (timesScratch.length < n) timesScratch = new Float64Array(Math.max(n, timesScratch.length * 2));
  if (identity.length < n) identity = Uint32Array.from({ length: Math.max(n, identity.length * 2) }, (_, i) => i);
  const times = timesScratch;
  for (let i = 0; i < n; i++) times[i] = ts[order[from + i] as number] as number;
  body.uvar(n);
  if (regular(times, n)) return CHUNK_REGULAR_TIMES;
  // Offsets from the first time: a steady scrape's column starts at 0, not at 2^50 µs.
  const first = times[0] as number;
  let exact = true;
  for (let i = 0; i < n && exact; i++) exact = (times[i] as number) - first + first === times[i];
  if (exact) for (let i = n - 1; i >= 0; i--) times[i] = (times[i] as number) - first;
  encodeColumn(body, times, identity, 0, n);
  return exact ? 0 : CHUNK_ABSOLUTE_TIMES;
}

/**
 * Appends to `w` the chunk whose raw body is body[0, pos): its CRC32C (seeded with its
 * place), its flags, and the body, LZ4-compressed when that saves and its raw length is
 * within what a reader accepts of n samples (rawPerSampleMax).
 */
export function sealChunk(w: ByteWriter, body: ByteWriter, flags: number, n: number, rawPerSampleMax: number, place: ChunkPlace): void {
  const raw = body.buf.subarray(0, body.pos);
  let stored: Uint8Array = raw;
  // A body past the reader's bound on raw lengths (never seen: see RAW_BYTES_PER_SAMPLE_MAX) stays uncompressed.
  if (raw.length >= COMPRESS_MIN_BYTES && raw.length <= n * rawPerSampleMax + RAW_BYTES_SLACK) {
    const c = compressSync(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
    if (c.length <= raw.length - (raw.length >> COMPRESS_SAVING_SHIFT)) {
      flags |= CHUNK_LZ4;
      stored = c; // lz4-napi's u32 raw length, then the block
    }
  }
  const start = w.pos;
  w.ensure(5 + stored.length);
  w.pos += 4;
  w.u8(flags);
  w.bytes(stored);
  w.view.setUint32(start, crc32c(w.buf.subarray(start + 4, w.pos), chunkSeed(place)), true);
}

/** A decoded chunk: numbers in `num` when the values are all numbers, else every value in `values`. */
export interface DecodedChunk {
  n: number;
  ts: Float64Array;
  num: Float64Array | undefined;
  values: Value[] | undefined;
}

let inflated = new Uint8Array(1 << 12);

/** The body of a chunk: its stored bytes, or the LZ4 block inflated into scratch after its length is bounded. */
function chunkBody(buf: Uint8Array, flags: number, n: number, rawPerSampleMax: number): ByteReader {
  if ((flags & CHUNK_LZ4) === 0) return new ByteReader(buf, 5);
  if (buf.length < 9) throw corrupt('compressed chunk shorter than its length');
  const raw = new DataView(buf.buffer, buf.byteOffset + 5, 4).getUint32(0, true);
  const stored = buf.length - 9;
  if (raw > stored * LZ4_EXPANSION_MAX || raw > n * rawPerSampleMax + RAW_BYTES_SLACK) throw corrupt(`compressed chunk declares ${raw} bytes, more than ${stored} stored bytes of ${n} samples can hold`);
  if (inflated.length < raw) inflated = new Uint8Array(Math.max(raw, inflated.length * 2));
  lz4DecodeInto(buf, 9, buf.length, inflated, raw, 'series sidecar');
  return new ByteReader(inflated, 0, raw);
}

/** A chunk opened by openChunk: its times, checked, and its body's reader just past them. */
export interface OpenedChunk {
  r: ByteReader;
  ts: Float64Array;
}

/**
 * Checks the chunk at `place` (CRC32C with its place, flags, count, times against its index
 * entry) and reads its times; `r` is left at what follows them (the values, or version 5's
 * references). Scratch-backed: read `r` before the next chunk is opened.
 */
export function openChunk(buf: Uint8Array, n: number, first: number, last: number, place: ChunkPlace, rawPerSampleMax = RAW_BYTES_PER_SAMPLE_MAX): OpenedChunk {
  if (buf.length < 6) throw corrupt('chunk shorter than its header');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== crc32c(buf.subarray(4), chunkSeed(place))) throw corrupt(`chunk CRC32C mismatch (path ${place.id}, slice ${place.slice})`);
  const flags = buf[4] as number;
  if ((flags & ~CHUNK_FLAGS_KNOWN) !== 0 || (flags & CHUNK_REGULAR_TIMES && flags & CHUNK_ABSOLUTE_TIMES)) throw corrupt(`unknown chunk flags ${flags}`);
  const r = chunkBody(buf, flags, n, rawPerSampleMax);
  if (r.uvar() !== n) throw corrupt('chunk sample count differs from its index entry');
  const regularTimes = (flags & CHUNK_REGULAR_TIMES) !== 0;
  let ts: Float64Array;
  if (regularTimes) {
    ts = regularTs(n, first, last);
  } else {
    ts = new Float64Array(n);
    decodeColumnF64(r, ts, 0, n);
    if ((flags & CHUNK_ABSOLUTE_TIMES) === 0) for (let i = 0; i < n; i++) ts[i] = (ts[i] as number) + first;
  }
  if (ts[0] !== first || ts[n - 1] !== last) throw corrupt('chunk times differ from its index entry');
  // Regular times are nondecreasing by construction (first + i x step, step >= 0: rounding is monotone).
  if (!regularTimes) for (let i = 1; i < n; i++) if (!((ts[i] as number) >= (ts[i - 1] as number))) throw corrupt('chunk times out of order');
  return { r, ts };
}

/** Decodes the chunk at `place` after checking its CRC32C (with its place), flags, count and times against its index entry. */
export function decodeChunk(buf: Uint8Array, n: number, first: number, last: number, place: ChunkPlace): DecodedChunk {
  const { r, ts } = openChunk(buf, n, first, last, place);
  const numeric = r.pos < r.end && r.buf[r.pos] !== ColumnKind.MSGPACK;
  const num = numeric ? new Float64Array(n) : undefined;
  const values = numeric ? undefined : valueArray(n);
  if (num) decodeColumnF64(r, num, 0, n);
  else decodeColumn(r, values as Value[], 0, n);
  if (r.pos !== r.end) throw corrupt('trailing bytes in a chunk');
  return { n, ts, num, values };
}

/**
 * The last regular times built: the chunks of one slice (read one after the other, in file
 * order) mostly share n, first and last, so they share one array (runs are read only,
 * storage/series-cache.ts), which halves what a wide query allocates.
 */
let regularMemo = { n: 0, first: 0, last: 0, ts: new Float64Array(0) };

function regularTs(n: number, first: number, last: number): Float64Array {
  const m = regularMemo;
  if (m.n === n && m.first === first && m.last === last) return m.ts;
  const ts = new Float64Array(n);
  const step = n > 1 ? (last - first) / (n - 1) : 0;
  for (let i = 0; i < n; i++) ts[i] = first + i * step;
  regularMemo = { n, first, last, ts };
  return ts;
}
