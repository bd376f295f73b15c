/**
 * The per-series sidecar of a sealed segment file (docs/prometheus.md, "Per-series
 * sidecars"): the same samples as the file's delta blocks, laid out series by series so that
 * one series over the file costs its own bytes, not every block. Pure: bytes in, records
 * out; storage/series-index/build.ts writes it, store.ts reads it.
 *
 * Layout (little-endian):
 *   header  HEADER_BYTES: magic "TPDSIDX1", version, the segment's identity (seq, name's
 *           CRC32C, committed bytes, delta blocks, first and last batch time), where the index
 *           is and its CRC32C, then the header's own CRC32C.
 *   chunks  one per (slice of the file's blocks, path): CRC32C of the rest, sample count,
 *           the timestamps as a column, the values as a column (storage/codec/columns.ts: the
 *           archive's own column kinds, so timestamps are PACKED delta-of-delta and floats
 *           XOR or PACKED, exact for every bit pattern).
 *   index   per path, in id order: id delta, flags, chunk count, then per chunk its slice,
 *           offset, bytes, samples, first and last time.
 *
 * Nothing here is trusted before its CRC32C and its bounds are checked: a sidecar that fails
 * any check is not used (the reader falls back to the blocks and the sidecar is rebuilt).
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { Value } from '../../protocol/value.js';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { ColumnKind, decodeColumn, encodeColumn } from '../codec/columns.js';
import { crc32c } from '../codec/crc.js';
import { genericArray } from '../codec/payload.js';

export const SIDECAR_MAGIC = 'TPDSIDX1';
export const SIDECAR_VERSION = 1;
export const HEADER_BYTES = 72;
/** Index flag: the path holds values other than numbers and null in this file; read it from the blocks. */
export const FLAG_NOT_COVERED = 1;

/** What a sidecar was built from: it is used only for a segment that still matches all of it. */
export interface SegmentIdentity {
  seq: number;
  name: string;
  committedBytes: number;
  deltaBlocks: number;
  firstTs: number;
  lastTs: number;
}

export interface SidecarHeader extends SegmentIdentity {
  indexOffset: number;
  indexBytes: number;
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
  v.setUint32(68, crc32c(buf.subarray(0, 68)), true);
  return buf;
}

/** The header, or an error naming what is wrong; `expect` is the segment it must describe. */
export function decodeHeader(buf: Uint8Array, expect: SegmentIdentity, sidecarBytes: number): SidecarHeader {
  if (buf.length < HEADER_BYTES) throw corrupt('shorter than its header');
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  if (new TextDecoder().decode(buf.subarray(0, 8)) !== SIDECAR_MAGIC) throw corrupt('bad magic');
  if (v.getUint32(68, true) !== crc32c(buf.subarray(0, 68))) throw corrupt('header CRC32C mismatch');
  if (v.getUint32(8, true) !== SIDECAR_VERSION) throw corrupt(`unknown version ${v.getUint32(8, true)}`);
  const h: SidecarHeader = {
    deltaBlocks: v.getUint32(12, true),
    seq: v.getFloat64(16, true),
    committedBytes: v.getFloat64(24, true),
    firstTs: v.getFloat64(32, true),
    lastTs: v.getFloat64(40, true),
    indexOffset: v.getFloat64(48, true),
    indexBytes: v.getUint32(56, true),
    indexCrc: v.getUint32(60, true),
    name: expect.name,
  };
  const same = h.seq === expect.seq && h.committedBytes === expect.committedBytes && h.deltaBlocks === expect.deltaBlocks && h.firstTs === expect.firstTs && h.lastTs === expect.lastTs && v.getUint32(64, true) === crc32c(expect.name);
  if (!same) throw corrupt('built for another segment (or another state of it)');
  if (!Number.isInteger(h.indexOffset) || h.indexOffset < HEADER_BYTES || h.indexOffset + h.indexBytes !== sidecarBytes) throw corrupt('index out of bounds');
  return h;
}

export function encodeIndex(entries: readonly IndexEntry[], firstTs: number): Uint8Array {
  const w = new ByteWriter(1 << 16);
  w.uvar(entries.length);
  let prevId = -1;
  for (const e of entries) {
    w.uvar(e.id - prevId - 1);
    prevId = e.id;
    w.u8(e.flags);
    w.uvar(e.chunks.length);
    let prevOffset = 0;
    for (const c of e.chunks) {
      w.uvar(c.slice);
      w.uvar(c.offset - prevOffset);
      prevOffset = c.offset;
      w.uvar(c.bytes);
      w.uvar(c.n);
      w.uvar(c.first - firstTs);
      w.uvar(c.last - c.first);
    }
  }
  return w.finish();
}

/** The index after its CRC32C and every bound are checked against the header. */
export function decodeIndex(buf: Uint8Array, h: SidecarHeader): SidecarIndex {
  if (buf.length !== h.indexBytes || crc32c(buf) !== h.indexCrc) throw corrupt('index CRC32C mismatch');
  const r = new ByteReader(buf);
  const paths = r.uvar();
  if (paths > buf.length) throw corrupt('impossible path count');
  const ids = new Uint32Array(paths);
  const flags = new Uint8Array(paths);
  const chunkStart = new Uint32Array(paths + 1);
  const cols = { slice: [] as number[], offset: [] as number[], bytes: [] as number[], n: [] as number[], first: [] as number[], last: [] as number[] };
  let id = -1;
  for (let i = 0; i < paths; i++) {
    id += r.uvar() + 1;
    if (id > 0xffffffff) throw corrupt('path id out of range');
    ids[i] = id;
    flags[i] = r.u8();
    const chunks = r.uvar();
    if (chunks > buf.length) throw corrupt('impossible chunk count');
    let offset = 0;
    let prevLast = -Infinity;
    for (let c = 0; c < chunks; c++) {
      const slice = r.uvar();
      offset += r.uvar();
      const bytes = r.uvar();
      const n = r.uvar();
      const first = h.firstTs + r.uvar();
      const last = first + r.uvar();
      if (offset < HEADER_BYTES || offset + bytes > h.indexOffset || n === 0 || first < prevLast || last > h.lastTs) throw corrupt(`chunk of path ${id} out of bounds`);
      prevLast = last;
      cols.slice.push(slice);
      cols.offset.push(offset);
      cols.bytes.push(bytes);
      cols.n.push(n);
      cols.first.push(first);
      cols.last.push(last);
    }
    chunkStart[i + 1] = cols.offset.length;
  }
  if (r.pos !== r.end) throw corrupt('trailing bytes after the index');
  return {
    ids,
    flags,
    chunkStart,
    slice: Uint32Array.from(cols.slice),
    offset: Float64Array.from(cols.offset),
    bytes: Uint32Array.from(cols.bytes),
    n: Uint32Array.from(cols.n),
    first: Float64Array.from(cols.first),
    last: Float64Array.from(cols.last),
  };
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

/** Appends one chunk: timestamps ts[order[from..to)], values vals[order[from..to)]. */
export function encodeChunk(w: ByteWriter, ts: Float64Array, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): void {
  const start = w.pos;
  w.ensure(4);
  w.pos += 4;
  w.uvar(to - from);
  encodeColumn(w, ts, order, from, to);
  encodeColumn(w, vals, order, from, to);
  const crc = crc32c(w.buf.subarray(start + 4, w.pos));
  w.view.setUint32(start, crc, true);
}

/** A decoded chunk: numbers in `num` when the values are all numbers, else every value in `values`. */
export interface DecodedChunk {
  n: number;
  ts: Float64Array;
  num: Float64Array | undefined;
  values: Value[] | undefined;
}

/** Decodes a chunk after checking its CRC32C, count and times against its index entry. */
export function decodeChunk(buf: Uint8Array, n: number, first: number, last: number): DecodedChunk {
  if (buf.length < 5) throw corrupt('chunk shorter than its header');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== crc32c(buf.subarray(4))) throw corrupt('chunk CRC32C mismatch');
  const r = new ByteReader(buf, 4);
  if (r.uvar() !== n) throw corrupt('chunk sample count differs from its index entry');
  const ts = new Float64Array(n);
  // The codec fills arrays of any kind by index; a Float64Array keeps every bit of a float.
  decodeColumn(r, ts as unknown as Value[], 0, n);
  const numeric = r.pos < r.end && buf[r.pos] !== ColumnKind.MSGPACK;
  const num = numeric ? new Float64Array(n) : undefined;
  const values = numeric ? undefined : genericArray(n);
  decodeColumn(r, num ? (num as unknown as Value[]) : (values as Value[]), 0, n);
  if (r.pos !== r.end) throw corrupt('trailing bytes in a chunk');
  if (ts[0] !== first || ts[n - 1] !== last) throw corrupt('chunk times differ from its index entry');
  for (let i = 1; i < n; i++) if (!((ts[i] as number) >= (ts[i - 1] as number))) throw corrupt('chunk times out of order');
  return { n, ts, num, values };
}
