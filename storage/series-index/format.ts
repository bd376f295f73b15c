/**
 * The per-series sidecar of a sealed segment file (docs/prometheus.md, "Per-series
 * sidecars"): the same samples as the file's delta blocks, laid out series by series so that
 * one series over the file costs its own bytes, not every block. Pure: bytes in, records
 * out; storage/series-index/build.ts writes it, store.ts reads it. This file holds the
 * header and the index; chunk.ts the chunks.
 *
 * Layout (little-endian; docs/format.md, "Per-series sidecar"):
 *   header  HEADER_BYTES: magic "TPDSIDX1", version, the segment's identity (archive id, seq,
 *           name's CRC32C, committed bytes, delta blocks, first and last batch time), where the
 *           index is, its stored and raw lengths and its CRC32C, then the header's own CRC32C.
 *   chunks  one per (slice of the file's blocks, path): CRC32C of its path id, slice and the rest, flags, then the
 *           body, LZ4-compressed when that saves (FLAG_LZ4): the sample count, the times
 *           (none when they are regular: first + i x step), the values as a column
 *           (storage/codec/columns.ts: the archive's own column kinds, exact for every bit
 *           pattern).
 *   index   raw DEFLATE when that saves (raw length in the header): per path, in id order:
 *           id delta, flags, chunk count, then per chunk its slice, offset, stored bytes,
 *           samples, first and last time (each relative to what precedes it).
 * Version 5 (SIDECAR_REFS_VERSION, a compacted file's): a chunk holds the times and the
 * CRC32C of the path's column bodies in the segment, not the values; its index entry is
 * followed by where those bodies are (chunk-refs.ts, index-refs.ts).
 *
 * Nothing here is trusted before its CRC32C and its bounds are checked: a sidecar that fails
 * any check is not used (the reader falls back to the blocks and the sidecar is rebuilt).
 * Compressed lengths are bounded before anything is allocated for them.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { TapedeckError } from '../../protocol/errors.js';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { crc32c } from '../codec/crc.js';
import { bytesToHex, hexToBytes } from '../codec/header.js';
import type { BodyRef } from './chunk-refs.js';
import { RefColumns, writeRefs, type RefTable } from './index-refs.js';

export const SIDECAR_MAGIC = 'TPDSIDX1';
/**
 * 5 (SIDECAR_REFS_VERSION): the same header, for a segment whose every DELTA frame is codec
 * 3 (split): a chunk holds its times and the CRC32C of the path's column bodies in the
 * segment file (chunk-refs.ts), its index entry where those bodies are (index-refs.ts), and
 * no copy of its values. Written beside 4, not in its place: a segment with another frame
 * is still given a version-4 sidecar.
 * 4: a chunk's CRC32C covers its path id and slice (chunk.ts; 3's did not: a chunk found
 * where another path's should be, same count, times and length, was read as that path's).
 * 3: the archive id in the header (2 had none: another archive's sidecar of a segment of the
 * same name, seq, size, block count and times was taken for this one's). 2: compressed chunks
 * and index, regular and relative times. Another version is rebuilt.
 */
export const SIDECAR_VERSION = 4;
export const SIDECAR_REFS_VERSION = 5;
export const HEADER_BYTES = 88;
/** Index flag: the path holds values other than numbers and null in this file; read it from the blocks. */
export const FLAG_NOT_COVERED = 1;
/** A chunk body or the index is stored compressed when that saves at least 1/2^this of it (as frames do). */
export const COMPRESS_SAVING_SHIFT = 4;
/** Slack on a declared raw length (the index's here, a chunk's in chunk.ts), checked before anything is allocated for it. */
export const RAW_BYTES_SLACK = 64;
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
  /**
   * Updates in its delta blocks (the archive's block table): an honest index holds each at
   * most once, so its sample counts add up to no more (decodeIndex refuses more before
   * anything is allocated for them). Not stored in the header; unchecked when absent.
   */
  updates?: number;
}

export interface SidecarHeader extends SegmentIdentity {
  /** SIDECAR_VERSION (chunks hold the values; the default) or SIDECAR_REFS_VERSION (chunks point at the segment's bodies). */
  version?: number;
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
  /** Version 5: each chunk's column bodies in the segment. */
  refs?: RefTable;
}

/** One path's entry while building: its chunks in file order (version 5: with their bodies' places). */
export interface IndexEntry {
  id: number;
  flags: number;
  chunks: Array<{ slice: number; offset: number; bytes: number; n: number; first: number; last: number; refs?: BodyRef[] }>;
}

export const corrupt = (what: string): TapedeckError => new TapedeckError('TPD_CORRUPT_BLOCK', `series sidecar: ${what}`);

export function encodeHeader(h: SidecarHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES);
  const v = new DataView(buf.buffer);
  buf.set(new TextEncoder().encode(SIDECAR_MAGIC), 0);
  v.setUint32(8, h.version ?? SIDECAR_VERSION, true);
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

/** Whether this release reads sidecars of `version` (4 and 5: neither is rebuilt for its version). */
export function currentVersion(version: number | undefined): boolean {
  return version === SIDECAR_VERSION || version === SIDECAR_REFS_VERSION;
}

/**
 * Whether a sidecar's first bytes are those of a version an earlier release wrote (1 to 3):
 * stale, rebuilt at start, not damaged (unless they are a current header with its version
 * damaged: currentWithVersionDamaged). Any other version, or no magic, is damage (a flipped
 * bit of the version field reads as a version no release wrote).
 */
export function earlierVersion(head: Uint8Array): boolean {
  const v = versionOf(head);
  return v !== undefined && v >= 1 && v < SIDECAR_VERSION && !currentWithVersionDamaged(head);
}

/**
 * Whether a header (at least HEADER_BYTES of it) passes its CRC32C once its version is read
 * as 4 or 5: a current sidecar whose version field is damaged (5 with one bit flipped reads
 * as 1), not one an earlier release wrote (its CRC32C covers its own version).
 */
function currentWithVersionDamaged(head: Uint8Array): boolean {
  if (head.length < HEADER_BYTES) return false;
  const copy = head.slice(0, HEADER_BYTES);
  const v = new DataView(copy.buffer);
  const crc = v.getUint32(84, true);
  for (const version of [SIDECAR_VERSION, SIDECAR_REFS_VERSION]) {
    v.setUint32(8, version, true);
    if (crc32c(copy.subarray(0, 84)) === crc) return true;
  }
  return false;
}

/** The header, or an error naming what is wrong; `expect` is the segment it must describe. */
export function decodeHeader(buf: Uint8Array, expect: SegmentIdentity, sidecarBytes: number): SidecarHeader {
  if (buf.length < 12) throw corrupt('shorter than its header');
  const version = versionOf(buf);
  if (version === undefined) throw corrupt('bad magic');
  // Before the CRC: another version's header has another layout.
  if (!currentVersion(version)) throw corrupt(`version ${version}, not ${SIDECAR_VERSION} or ${SIDECAR_REFS_VERSION}`);
  if (buf.length < HEADER_BYTES) throw corrupt('shorter than its header');
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  if (v.getUint32(84, true) !== crc32c(buf.subarray(0, 84))) throw corrupt('header CRC32C mismatch');
  const archiveId = bytesToHex(buf.subarray(72, 80));
  if (archiveId !== expect.archiveId) throw corrupt(`built for archive ${archiveId}, not ${expect.archiveId}`);
  const h: SidecarHeader = {
    version: version as number,
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
    ...(expect.updates !== undefined ? { updates: expect.updates } : {}),
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
  const ends = new Map<number, number>();
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
      if (c.refs) writeRefs(w, c.refs, ends);
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

/** `to` holding `from` at its start: a column grown by doubling (index entries here, version-5 references in index-refs.ts). */
export function grown<T extends Uint32Array | Uint8Array | Float64Array>(from: T, to: T): T {
  to.set(from as never);
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
  const refs = h.version === SIDECAR_REFS_VERSION ? new RefColumns(h.deltaBlocks, h.committedBytes) : undefined;
  // Samples the index may still declare: a chunk's count allocates its arrays when read.
  let samplesLeft = h.updates ?? Infinity;
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
      samplesLeft -= n;
      if (samplesLeft < 0) throw corrupt(`samples past the segment's ${h.updates ?? 0} updates (path ${id})`);
      refs?.read(r, at, id, n);
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
  const ix: SidecarIndex = { ids, flags, chunkStart, slice: cut(cols.slice, k), offset: cut(cols.offset, k), bytes: cut(cols.bytes, k), n: cut(cols.n, k), first: cut(cols.first, k), last: cut(cols.last, k) };
  if (refs) ix.refs = refs.finish();
  return ix;
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
