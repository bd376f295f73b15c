/**
 * A version-5 index's references (format.ts SIDECAR_REFS_VERSION): after each chunk entry,
 * the column bodies of its path in the segment file (chunk-refs.ts BodyRef). In the index,
 * not in the chunks: paths follow one another in id order, as the columns of a compacted
 * block do, so a body's offset is coded from the end of the previous path's body in the same
 * block (0 when they are adjacent), and the index's DEFLATE takes the repeated kinds, counts
 * and lengths: 58 000 references of bench:prom-write's file cost 25 KB there, 415 KB in the
 * chunks (offsets from the previous reference, each chunk apart).
 *
 * Per chunk entry: the reference count, then per reference: block (from the previous
 * reference's plus one; the first from -1), kind byte, value count, offset (zigzag, from
 * where the previous reference into the same block ended; the first into a block from 0),
 * byte length. Every bound is checked as it is read (decodeRefs).
 */
import type { ByteReader, ByteWriter } from '../codec/bytes.js';
import type { BodyRef } from './chunk-refs.js';
import { corrupt, grown } from './format.js';

/** The references of every chunk entry, as typed arrays: chunk c's are [start[c], start[c + 1]). */
export interface RefTable {
  start: Uint32Array;
  block: Uint32Array;
  kind: Uint8Array;
  count: Uint32Array;
  offset: Float64Array;
  bytes: Uint32Array;
}

/** Writes a chunk entry's references; `ends` holds, per block, where the last reference into it ended (updated). */
export function writeRefs(w: ByteWriter, refs: readonly BodyRef[], ends: Map<number, number>): void {
  w.uvar(refs.length);
  let block = -1;
  for (const r of refs) {
    w.uvar(r.block - block - 1);
    block = r.block;
    w.u8(r.kind);
    w.uvar(r.count);
    w.svar(r.offset - (ends.get(r.block) ?? 0));
    w.uvar(r.bytes);
    ends.set(r.block, r.offset + r.bytes);
  }
}

/** A RefTable being read, grown by doubling. */
export class RefColumns {
  chunks = 0;
  count = 0;
  start = new Uint32Array(1024);
  block = new Uint32Array(1024);
  kind = new Uint8Array(1024);
  counts = new Uint32Array(1024);
  offset = new Float64Array(1024);
  bytes = new Uint32Array(1024);
  /** Per block, where the last reference into it ended. */
  private readonly ends: Float64Array;

  constructor(private readonly blocks: number, private readonly segmentBytes: number) {
    this.ends = new Float64Array(blocks);
  }

  /** Reads chunk entry `chunk`'s references (of path `id`, `n` samples), checking each bound. */
  read(r: ByteReader, chunk: number, id: number, n: number): void {
    const k = r.uvar();
    if (k === 0 || k > n) throw corrupt(`chunk of path ${id} holds ${k} references for ${n} samples`);
    this.reserve(chunk, k);
    this.start[chunk] = this.count;
    let block = -1;
    let values = 0;
    for (let i = 0; i < k; i++) {
      block += r.uvar() + 1;
      const kind = r.u8();
      const c = r.uvar();
      if (block >= this.blocks || c === 0) throw corrupt(`reference of path ${id} out of bounds`);
      const offset = (this.ends[block] as number) + r.svar();
      const bytes = r.uvar();
      if (offset < 0 || offset + bytes > this.segmentBytes) throw corrupt(`reference of path ${id} out of bounds`);
      this.ends[block] = offset + bytes;
      values += c;
      const at = this.count++;
      this.block[at] = block;
      this.kind[at] = kind;
      this.counts[at] = c;
      this.offset[at] = offset;
      this.bytes[at] = bytes;
    }
    if (values !== n) throw corrupt(`references of path ${id} hold ${values} values for ${n} samples`);
    this.chunks = chunk + 1;
  }

  /** The table, cut to its length. */
  finish(): RefTable {
    const n = this.count;
    const start = new Uint32Array(this.chunks + 1);
    start.set(this.start.subarray(0, this.chunks));
    start[this.chunks] = n;
    return { start, block: this.block.slice(0, n), kind: this.kind.slice(0, n), count: this.counts.slice(0, n), offset: this.offset.slice(0, n), bytes: this.bytes.slice(0, n) };
  }

  private reserve(chunk: number, more: number): void {
    if (chunk >= this.start.length) this.start = grown(this.start, new Uint32Array(Math.max(chunk + 1, this.start.length * 2)));
    const need = this.count + more;
    if (need <= this.block.length) return;
    const cap = Math.max(need, this.block.length * 2);
    this.block = grown(this.block, new Uint32Array(cap));
    this.kind = grown(this.kind, new Uint8Array(cap));
    this.counts = grown(this.counts, new Uint32Array(cap));
    this.offset = grown(this.offset, new Float64Array(cap));
    this.bytes = grown(this.bytes, new Uint32Array(cap));
  }
}

/** Chunk entry c's references. */
export function chunkRefs(t: RefTable, c: number): BodyRef[] {
  const out: BodyRef[] = [];
  for (let i = t.start[c] as number; i < (t.start[c + 1] as number); i++) {
    out.push({ block: t.block[i] as number, kind: t.kind[i] as number, count: t.count[i] as number, offset: t.offset[i] as number, bytes: t.bytes[i] as number });
  }
  return out;
}
