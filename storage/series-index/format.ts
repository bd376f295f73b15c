/**
 * The per-series sidecar of a sealed segment file (docs/prometheus.md, "Per-series
 * sidecars"): the same samples as the file's delta blocks, laid out series by series so that
 * one series over the file costs its own bytes, not every block. Pure: bytes in, records
 * out; storage/series-index/build.ts writes it, store.ts reads it.
 *
 * Layout (little-endian; docs/format.md, "Per-series sidecar"):
 *   header  HEADER_BYTES: magic "TPDSIDX1", version, the segment's identity (archive id, seq,
 *           name's CRC32C, committed bytes, delta blocks, first and last batch time), where the
 *           index is, its stored and raw lengths and its CRC32C, then the header's own CRC32C.
 *   chunks  one per (slice of the file's blocks, path): CRC32C of the rest, flags, then the
 *           body, LZ4-compressed when that saves (FLAG_LZ4): the sample count, the times
 *           (none when they are regular: first + i x step), the values as a column
 *           (storage/codec/columns.ts: the archive's own column kinds, exact for every bit
 *           pattern).
 *   index   raw DEFLATE when that saves (raw length in the header): per path, in id order:
 *           id delta, flags, chunk count, then per chunk its slice, offset, stored bytes,
 *           samples, first and last time (each relative to what precedes it).
 *
 * Nothing here is trusted before its CRC32C and its bounds are checked: a sidecar that fails
 * any check is not used (the reader falls back to the blocks and the sidecar is rebuilt).
 * Compressed lengths are bounded before anything is allocated for them.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { compressSync } from 'lz4-napi';
import { TapedeckError } from '../../protocol/errors.js';
import type { Value } from '../../protocol/value.js';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { ColumnKind, decodeColumn, decodeColumnF64, encodeColumn } from '../codec/columns.js';
import { crc32c } from '../codec/crc.js';
import { bytesToHex, hexToBytes } from '../codec/header.js';
import { genericArray } from '../codec/payload.js';
import { LZ4_EXPANSION_MAX, lz4DecodeInto } from '../codec/lz4-block.js';

export const SIDECAR_MAGIC = 'TPDSIDX1';
/**
 * 3: the archive id in the header (2 had none: another archive's sidecar of a segment of the
 * same name, seq, size, block count and times was taken for this one's). 2: compressed chunks
 * and index, regular and relative times. Another version is rebuilt.
 */
export const SIDECAR_VERSION = 3;
export const HEADER_BYTES = 88;
/** Index flag: the path holds values other than numbers and null in this file; read it from the blocks. */
export const FLAG_NOT_COVERED = 1;

/** Chunk flags. LZ4: the body is an LZ4 block after its u32 raw length. */
export const CHUNK_LZ4 = 1;
/** The times are first + i x (last - first) / (n - 1): no time column. */
export const CHUNK_REGULAR_TIMES = 2;
/** The time column holds the times themselves, not their offsets from the chunk's first. */
export const CHUNK_ABSOLUTE_TIMES = 4;
const CHUNK_FLAGS_KNOWN = CHUNK_LZ4 | CHUNK_REGULAR_TIMES | CHUNK_ABSOLUTE_TIMES;
/** Bodies smaller than this are stored as they are: LZ4 would not save its length prefix. */
const COMPRESS_MIN_BYTES = 32;
/** A body is stored compressed when that saves at least 1/2^this of it (as frames do). */
const COMPRESS_SAVING_SHIFT = 4;
/**
 * Bounds on a declared raw length, checked before anything is allocated for it: LZ4 never
 * expands a stream more than 255 times (LZ4_EXPANSION_MAX), and a chunk's body never holds
 * more than 32 bytes a sample (two columns of at most ~10 bytes a value, XOR's worst case, and a count).
 */
const RAW_BYTES_PER_SAMPLE_MAX = 32;
const RAW_BYTES_SLACK = 64;
/** DEFLATE never expands more than 1032 times; the index is deflated at this level (built once, read at open). */
const DEFLATE_RATIO_MAX = 1032;
const INDEX_DEFLATE_LEVEL = 6;

/** What a sidecar was built from: it is used only for a segment that still matches all of it. */
export interface SegmentIdentity {
  /** The archive's id (16 hex characters, as in every segment's header). */
  archiveId: string;
  seq: number;
  name: string;
  committedBytes: number;
  deltaBlocks: number;
  firstTs: number;
  lastTs: number;
}

export interface SidecarHeader extends SegmentIdentity {
  indexOffset: number;
  /** Stored (maybe deflated) bytes of the index, and its bytes once inflated (equal when stored as is). */
  indexBytes: number;
  indexRawBytes: number;
  indexCrc: number;
}

/** The index, as typed arrays: path i is ids[i]; its chunks are [chunkStart[i], chunkStart[i + 1]). */
export interface SidecarIndex {
  ids: Uint32Array;
  flags: Uint8Array;
  chunkStart: Uint32Array;
  slice: Uint32Array;
  offset: Float64Array;
  bytes: Uint32Array;
  n: Uint32Array;
  first: Float64Array;
  last: Float64Array;
}

/** One path's entry while building: its chunks in file order. */
export interface IndexEntry {
  id: number;
  flags: number;
  chunks: Array<{ slice: number; offset: number; bytes: number; n: number; first: number; last: number }>;
}

const corrupt = (what: string): TapedeckError => new TapedeckError('TPD_CORRUPT_BLOCK', `series sidecar: ${what}`);

export function encodeHeader(h: SidecarHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES);
  const v = new DataView(buf.buffer);
  buf.set(new TextEncoder().encode(SIDECAR_MAGIC), 0);
  v.setUint32(8, SIDECAR_VERSION, true);
  v.setUint32(12, h.deltaBlocks, true);
  v.setFloat64(16, h.seq, true);
  v.setFloat64(24, h.committedBytes, true);
  v.setFloat64(32, h.firstTs, true);
  v.setFloat64(40, h.lastTs, true);
  v.setFloat64(48, h.indexOffset, true);
  v.setUint32(56, h.indexBytes, true);
  v.setUint32(60, h.indexCrc, true);
  v.setUint32(64, crc32c(h.name), true);
  v.setUint32(68, h.indexRawBytes, true);
  buf.set(hexToBytes(h.archiveId), 72);
  v.setUint32(80, 0, true);
  v.setUint32(84, crc32c(buf.subarray(0, 84)), true);
  return buf;
}

/** The version a sidecar's first bytes declare, or undefined when they are not a sidecar's. */
export function versionOf(buf: Uint8Array): number | undefined {
  if (buf.length < 12 || new TextDecoder().decode(buf.subarray(0, 8)) !== SIDECAR_MAGIC) return undefined;
  return new DataView(buf.buffer, buf.byteOffset, 12).getUint32(8, true);
}

/** The header, or an error naming what is wrong; `expect` is the segment it must describe. */
export function decodeHeader(buf: Uint8Array, expect: SegmentIdentity, sidecarBytes: number): SidecarHeader {
  if (buf.length < 12) throw corrupt('shorter than its header');
  const version = versionOf(buf);
  if (version === undefined) throw corrupt('bad magic');
  // Before the CRC: another version's header has another layout.
  if (version !== SIDECAR_VERSION) throw corrupt(`version ${version}, not ${SIDECAR_VERSION}`);
  if (buf.length < HEADER_BYTES) throw corrupt('shorter than its header');
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  if (v.getUint32(84, true) !== crc32c(buf.subarray(0, 84))) throw corrupt('header CRC32C mismatch');
  const archiveId = bytesToHex(buf.subarray(72, 80));
  if (archiveId !== expect.archiveId) throw corrupt(`built for archive ${archiveId}, not ${expect.archiveId}`);
  const h: SidecarHeader = {
    deltaBlocks: v.getUint32(12, true),
    seq: v.getFloat64(16, true),
    committedBytes: v.getFloat64(24, true),
    firstTs: v.getFloat64(32, true),
    lastTs: v.getFloat64(40, true),
    indexOffset: v.getFloat64(48, true),
    indexBytes: v.getUint32(56, true),
    indexCrc: v.getUint32(60, true),
    indexRawBytes: v.getUint32(68, true),
    name: expect.name,
    archiveId,
  };
  const same = h.seq === expect.seq && h.committedBytes === expect.committedBytes && h.deltaBlocks === expect.deltaBlocks && h.firstTs === expect.firstTs && h.lastTs === expect.lastTs && v.getUint32(64, true) === crc32c(expect.name);
  if (!same) throw corrupt('built for another segment (or another state of it)');
  if (!Number.isInteger(h.indexOffset) || h.indexOffset < HEADER_BYTES || h.indexOffset + h.indexBytes !== sidecarBytes) throw corrupt('index out of bounds');
  if (h.indexRawBytes < h.indexBytes || h.indexRawBytes > h.indexBytes * DEFLATE_RATIO_MAX + RAW_BYTES_SLACK || v.getUint32(80, true) !== 0) throw corrupt('index raw length out of bounds');
  return h;
}

/** The index as stored: raw DEFLATE when that saves; `raw` tells the length it inflates to. */
export function encodeIndex(entries: readonly IndexEntry[], firstTs: number): { stored: Uint8Array; rawBytes: number } {
  const w = new ByteWriter(1 << 16);
  w.uvar(entries.length);
  let prevId = -1;
  for (const e of entries) {
    w.uvar(e.id - prevId - 1);
    prevId = e.id;
    w.u8(e.flags);
    w.uvar(e.chunks.length);
    let prevOffset = 0;
    let prevSlice = -1;
    let prevLast = firstTs;
    for (const c of e.chunks) {
      w.uvar(c.slice - prevSlice - 1);
      prevSlice = c.slice;
      w.uvar(c.offset - prevOffset);
      prevOffset = c.offset;
      w.uvar(c.bytes);
      w.uvar(c.n);
      w.uvar(c.first - prevLast);
      w.uvar(c.last - c.first);
      prevLast = c.last;
    }
  }
  const raw = w.finish();
  const deflated = deflateRawSync(raw, { level: INDEX_DEFLATE_LEVEL });
  const saves = deflated.length <= raw.length - (raw.length >> COMPRESS_SAVING_SHIFT);
  return { stored: saves ? new Uint8Array(deflated.buffer, deflated.byteOffset, deflated.byteLength) : raw, rawBytes: raw.length };
}

/** The index after its CRC32C and every bound are checked against the header. */
export function decodeIndex(stored: Uint8Array, h: SidecarHeader): SidecarIndex {
  if (stored.length !== h.indexBytes || crc32c(stored) !== h.indexCrc) throw corrupt('index CRC32C mismatch');
  let buf = stored;
  if (h.indexRawBytes !== h.indexBytes) {
    try {
      // Bounded by the declared length, itself bounded by DEFLATE's ratio (decodeHeader).
      buf = inflateRawSync(stored, { maxOutputLength: Math.max(1, h.indexRawBytes) });
    } catch (err) {
      throw new TapedeckError('TPD_CORRUPT_BLOCK', 'series sidecar: index does not inflate', undefined, { cause: err });
    }
    if (buf.length !== h.indexRawBytes) throw corrupt('index inflates to another length');
  }
  return decodeEntries(buf, h);
}

/**
 * Chunk entries' columns, written in place as they are decoded (a first query over a day of
 * 10 000 series decodes 290 000: arrays of numbers and their typed copies cost it half of its
 * decoding time and most of the collections that followed). Grown by doubling; cut to their
 * length at the end.
 */
class EntryColumns {
  count = 0;
  slice: Uint32Array;
  offset: Float64Array;
  bytes: Uint32Array;
  n: Uint32Array;
  first: Float64Array;
  last: Float64Array;

  constructor(capacity: number) {
    this.slice = new Uint32Array(capacity);
    this.offset = new Float64Array(capacity);
    this.bytes = new Uint32Array(capacity);
    this.n = new Uint32Array(capacity);
    this.first = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
  }

  /** Room for `more` entries after count. */
  reserve(more: number): void {
    const need = this.count + more;
    if (need <= this.slice.length) return;
    const cap = Math.max(need, this.slice.length * 2);
    this.slice = grown(this.slice, new Uint32Array(cap));
    this.offset = grown(this.offset, new Float64Array(cap));
    this.bytes = grown(this.bytes, new Uint32Array(cap));
    this.n = grown(this.n, new Uint32Array(cap));
    this.first = grown(this.first, new Float64Array(cap));
    this.last = grown(this.last, new Float64Array(cap));
  }
}

function grown<T extends Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Exactly `n` entries: the array itself when it has that length, else a copy of its first n. */
function cut<T extends Uint32Array | Float64Array>(a: T, n: number): T {
  return (a.length === n ? a : a.slice(0, n)) as T;
}

/** The columns' first size, in bytes of inflated index a chunk entry: on the low side of what entries take (six varints; a steady scrape's 16), so that one copy to the exact length is the usual cost, not a doubling. */
const INDEX_BYTES_PER_CHUNK_GUESS = 12;

/** The inflated index's paths and chunk entries, every bound checked (the checks and messages of the reader before EntryColumns). */
function decodeEntries(buf: Uint8Array, h: SidecarHeader): SidecarIndex {
  const r = new ByteReader(buf);
  const paths = r.uvar();
  if (paths > buf.length) throw corrupt('impossible path count');
  const ids = new Uint32Array(paths);
  const flags = new Uint8Array(paths);
  const chunkStart = new Uint32Array(paths + 1);
  const cols = new EntryColumns(Math.ceil(buf.length / INDEX_BYTES_PER_CHUNK_GUESS));
  const firstTs = h.firstTs;
  const lastTs = h.lastTs;
  const indexOffset = h.indexOffset;
  let id = -1;
  for (let i = 0; i < paths; i++) {
    id += r.uvar() + 1;
    if (id > 0xffffffff) throw corrupt('path id out of range');
    ids[i] = id;
    flags[i] = r.u8();
    const chunks = r.uvar();
    if (chunks > buf.length) throw corrupt('impossible chunk count');
    // Bounded by the index's length (each entry takes at least six bytes), so never more than it can hold.
    cols.reserve(Math.min(chunks, Math.ceil((r.end - r.pos) / 6)));
    const { slice: sliceCol, offset: offsetCol, bytes: bytesCol, n: nCol, first: firstCol, last: lastCol } = cols;
    let at = cols.count;
    let offset = 0;
    let slice = -1;
    let prevLast = firstTs;
    for (let c = 0; c < chunks; c++) {
      slice += r.uvar() + 1;
      offset += r.uvar();
      const bytes = r.uvar();
      const n = r.uvar();
      const first = prevLast + r.uvar();
      const last = first + r.uvar();
      if (slice > 0xffffffff || offset < HEADER_BYTES || offset + bytes > indexOffset || n === 0 || last > lastTs) throw corrupt(`chunk of path ${id} out of bounds`);
      prevLast = last;
      sliceCol[at] = slice;
      offsetCol[at] = offset;
      bytesCol[at] = bytes;
      nCol[at] = n;
      firstCol[at] = first;
      lastCol[at] = last;
      at++;
    }
    cols.count = at;
    chunkStart[i + 1] = at;
  }
  if (r.pos !== r.end) throw corrupt('trailing bytes after the index');
  const k = cols.count;
  return { ids, flags, chunkStart, slice: cut(cols.slice, k), offset: cut(cols.offset, k), bytes: cut(cols.bytes, k), n: cut(cols.n, k), first: cut(cols.first, k), last: cut(cols.last, k) };
}

/** Position of `id` in the index, or -1. */
export function findPath(ix: SidecarIndex, id: number): number {
  let lo = 0;
  let hi = ix.ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ix.ids[mid] as number) < id) lo = mid + 1;
    else hi = mid;
  }
  return ix.ids[lo] === id ? lo : -1;
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

/** Appends one chunk: timestamps ts[order[from..to)], values vals[order[from..to)]. */
export function encodeChunk(w: ByteWriter, ts: Float64Array, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): void {
  const n = to - from;
  if (timesScratch.length < n) timesScratch = new Float64Array(Math.max(n, timesScratch.length * 2));
  if (identity.length < n) identity = Uint32Array.from({ length: Math.max(n, identity.length * 2) }, (_, i) => i);
  const times = timesScratch;
  for (let i = 0; i < n; i++) times[i] = ts[order[from + i] as number] as number;
  let flags = 0;
  const body = bodyWriter;
  body.reset();
  body.uvar(n);
  if (regular(times, n)) {
    flags |= CHUNK_REGULAR_TIMES;
  } else {
    // Offsets from the first time: a steady scrape's column starts at 0, not at 2^50 µs.
    const first = times[0] as number;
    let exact = true;
    for (let i = 0; i < n && exact; i++) exact = (times[i] as number) - first + first === times[i];
    if (exact) for (let i = n - 1; i >= 0; i--) times[i] = (times[i] as number) - first;
    else flags |= CHUNK_ABSOLUTE_TIMES;
    encodeColumn(body, times, identity, 0, n);
  }
  encodeColumn(body, vals, order, from, to);
  const raw = body.buf.subarray(0, body.pos);
  let stored: Uint8Array = raw;
  // A body past the reader's bound on raw lengths (never seen: see RAW_BYTES_PER_SAMPLE_MAX) stays uncompressed.
  if (raw.length >= COMPRESS_MIN_BYTES && raw.length <= n * RAW_BYTES_PER_SAMPLE_MAX + RAW_BYTES_SLACK) {
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
  w.view.setUint32(start, crc32c(w.buf.subarray(start + 4, w.pos)), true);
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
function chunkBody(buf: Uint8Array, flags: number, n: number): ByteReader {
  if ((flags & CHUNK_LZ4) === 0) return new ByteReader(buf, 5);
  if (buf.length < 9) throw corrupt('compressed chunk shorter than its length');
  const raw = new DataView(buf.buffer, buf.byteOffset + 5, 4).getUint32(0, true);
  const stored = buf.length - 9;
  if (raw > stored * LZ4_EXPANSION_MAX || raw > n * RAW_BYTES_PER_SAMPLE_MAX + RAW_BYTES_SLACK) throw corrupt(`compressed chunk declares ${raw} bytes, more than ${stored} stored bytes of ${n} samples can hold`);
  if (inflated.length < raw) inflated = new Uint8Array(Math.max(raw, inflated.length * 2));
  lz4DecodeInto(buf, 9, buf.length, inflated, raw, 'series sidecar');
  return new ByteReader(inflated, 0, raw);
}

/** Decodes a chunk after checking its CRC32C, flags, count and times against its index entry. */
export function decodeChunk(buf: Uint8Array, n: number, first: number, last: number): DecodedChunk {
  if (buf.length < 6) throw corrupt('chunk shorter than its header');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== crc32c(buf.subarray(4))) throw corrupt('chunk CRC32C mismatch');
  const flags = buf[4] as number;
  if ((flags & ~CHUNK_FLAGS_KNOWN) !== 0 || (flags & CHUNK_REGULAR_TIMES && flags & CHUNK_ABSOLUTE_TIMES)) throw corrupt(`unknown chunk flags ${flags}`);
  const r = chunkBody(buf, flags, n);
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
  const numeric = r.pos < r.end && r.buf[r.pos] !== ColumnKind.MSGPACK;
  const num = numeric ? new Float64Array(n) : undefined;
  const values = numeric ? undefined : genericArray(n);
  if (num) decodeColumnF64(r, num, 0, n);
  else decodeColumn(r, values as Value[], 0, n);
  if (r.pos !== r.end) throw corrupt('trailing bytes in a chunk');
  if (ts[0] !== first || ts[n - 1] !== last) throw corrupt('chunk times differ from its index entry');
  // Regular times are nondecreasing by construction (first + i x step, step >= 0: rounding is monotone).
  if (!regularTimes) for (let i = 1; i < n; i++) if (!((ts[i] as number) >= (ts[i - 1] as number))) throw corrupt('chunk times out of order');
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
