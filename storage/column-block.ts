/**
 * A DELTA payload decoded column by column, for readers that fold each path's values in
 * time order (GET /api/v1/diff) and need neither update pairs nor the block's update order.
 * Pure: bytes in, typed arrays out; the layout is docs/format.md ("Batch payload").
 *
 * Decimal columns (DECIMAL, DECIMAL_K, PACKED: most telemetry numbers) are decoded straight
 * into a Float64Array (storage/column-numbers.ts), with no Value array and no boxing; other
 * kinds go through the codec's decodeColumnBody into a Value array at the same offsets.
 * Columns whose path is not kept are skipped (their extent checked, as
 * decodeBatchesSelected does).
 *
 * Anything malformed throws TPD_CORRUPT_BLOCK; callers that want the archive's own error
 * (with file and offset) read the block again through Archive.readBlock. The result lives
 * in the reader's scratch arrays, valid until its next decode.
 */
import type { Value } from '../protocol/value.js';
import { ByteReader } from './codec/bytes.js';
import { decodeColumnBody, skipColumnBody } from './codec/columns.js';
import { checkUpdateCount, readPayloadHead } from './codec/payload.js';
import { DecimalColumns, readFloatColumn, svar } from './column-numbers.js';

/** Where kept column c's values are: numbers in `nums`, anything else in `values`. */
export const ColumnPlace = { NUMBERS: 1, VALUES: 2 } as const;

/**
 * One decoded block. Kept column c is path ids[c]; its occurrences, in time order, are
 * [start[c], start[c + 1]) of nums (place NUMBERS) or values (place VALUES), the k-th of
 * them in batch batchOf[k], at ts[batchOf[k]]; in a uniform block (every batch lists the
 * same paths, each once: a poll of every path) batchOf is not filled and occurrence k of
 * column c is in batch k - start[c].
 */
export interface ColumnBlock {
  batches: number;
  /**
   * Occurrences in batches at or past this one may not have been decoded (decode's
   * `endBatch` in a uniform block; `batches` when every one was): their slots in nums and
   * values hold anything.
   */
  endBatch: number;
  /**
   * Occurrences before a column's last one before this batch may not have been decoded
   * either (decode's `fromBatch` in a uniform block; 0 when every one before endBatch was).
   */
  fromBatch: number;
  uniform: boolean;
  ts: Float64Array;
  columns: number;
  ids: Uint32Array;
  start: Uint32Array;
  place: Uint8Array;
  nums: Float64Array;
  values: Value[];
  batchOf: Uint32Array;
}

function grownU32(a: Uint32Array, n: number): Uint32Array {
  return a.length >= n ? a : new Uint32Array(Math.max(n, a.length * 2));
}

function grownF64(a: Float64Array, n: number): Float64Array {
  return a.length >= n ? a : new Float64Array(Math.max(n, a.length * 2));
}

export interface ColumnBlockOptions {
  /** XOR and FLOAT64 columns into `nums` too (as their bits), not into `values`. Default false. */
  floats?: boolean;
  /** Fill ColumnBlock.batchOf (non-uniform blocks). Default true; readers by update order (updateOrder) do without. */
  batchOf?: boolean;
}

/** The last decode's update order (storage/column-batches.ts reads blocks back in it). */
export interface UpdateOrder {
  /** Block-local column of each update; in a uniform block only the first batch's (every batch repeats it). */
  local: Uint32Array;
  /** Each update's occurrence within its column, in time order (not filled in a uniform block: there it is the batch). */
  rank: Uint32Array;
  /** Updates of each batch. */
  sizes: Uint32Array;
  /** Each block-local column's kept slot, -1 when not kept. */
  slot: Int32Array;
  /** Bumped whenever the column table or batch lists differ from the previous decode's. */
  shape: number;
}

/** Decodes blocks into reused scratch arrays (one reader per pass: not reentrant). */
export class ColumnBlockReader {
  private readonly decimals = new DecimalColumns();
  private readonly floats: boolean;
  private readonly fillsBatchOf: boolean;
  private shapeSerial = 0;
  private colGlobal: Uint32Array = new Uint32Array(1024);
  private colCount: Uint32Array = new Uint32Array(1024);
  private colAt = new Int32Array(1024);
  private local: Uint32Array = new Uint32Array(1024);
  /** Each update's occurrence within its column (not filled in a uniform block: there it is the batch). */
  private rank: Uint32Array = new Uint32Array(1024);
  private batchSizes: Uint32Array = new Uint32Array(1024);
  private nextAt: Int32Array = new Int32Array(1024);
  /** Per path id, the column table (counted by `table`) that listed it last. */
  private seenIn: Uint32Array = new Uint32Array(1024);
  private table = 0;
  /** The last block's column table and batch lists, as bytes and as read (see sameShape). */
  private shape: { nb: number; nu: number; nc: number; keep: ((id: number) => boolean) | null; pathCount: number; bytes: Buffer } | undefined;
  private readonly out: ColumnBlock = {
    batches: 0,
    endBatch: 0,
    fromBatch: 0,
    uniform: false,
    ts: new Float64Array(0),
    columns: 0,
    ids: new Uint32Array(1024),
    start: new Uint32Array(1025),
    place: new Uint8Array(1024),
    nums: new Float64Array(1024),
    values: [],
    batchOf: new Uint32Array(1024),
  };

  constructor(opts: ColumnBlockOptions = {}) {
    this.floats = opts.floats === true;
    this.fillsBatchOf = opts.batchOf !== false;
  }

  /** The update order of the last decode (views of scratch arrays, valid until the next decode). */
  updateOrder(): UpdateOrder {
    return { local: this.local, rank: this.rank, sizes: this.batchSizes, slot: this.colAt, shape: this.shapeSerial };
  }

  /**
   * Decodes the kept columns of a DELTA payload whose first batch is at `firstTs`. Path ids
   * at or past `pathCount` are refused (as Archive.readBlock refuses them).
   *
   * In a uniform block (a poll), with `endBatch`, decimal columns are decoded only up to
   * it (their occurrences in batches before it; the rest of each body is moved past by its
   * extent, as a skipped column's): a state after a seek needs each column up to the
   * position's batch, not the whole block. With `fromBatch`, their occurrences before the
   * last one before it may be left undecoded too (the state takes each column's latest
   * value before its batch: in a block before the position, only the last). Other kinds,
   * and every column of a non-uniform block, are decoded in full: there the counting of
   * each column's occurrences before a batch, and the part reads of columns of a few
   * values, cost more than they saved (docs/storage.md). ColumnBlock.endBatch and
   * fromBatch say what was decoded.
   */
  decode(raw: Uint8Array, firstTs: number, keep: ((id: number) => boolean) | null, pathCount: number, endBatch = Infinity, fromBatch = 0): ColumnBlock {
    const r = new ByteReader(raw);
    // Layout 2 (codec/payload.ts): a mark, the layout, and the kind bytes ahead of the bodies.
    const head = readPayloadHead(r, raw);
    checkUpdateCount(r, raw, head);
    const { layout2, nb, nu, nc } = head;
    const out = this.out;
    out.batches = nb;
    out.ts = this.readTimes(r, nb, firstTs);
    if (!this.sameShape(r, nb, nu, nc, keep, pathCount)) {
      this.shape = undefined;
      this.shapeSerial++;
      const from = r.pos;
      this.readColumnTable(r, nc, pathCount);
      out.uniform = this.readBatchLists(r, nb, nu, nc);
      const kept = this.place(nc, keep);
      if (!out.uniform && this.fillsBatchOf) this.fillBatchOf(nb, nu, nc, kept);
      this.shape = { nb, nu, nc, keep, pathCount, bytes: Buffer.from(raw.subarray(from, r.pos)) };
    }
    const kinds = layout2 ? r.bytes(nc) : undefined;
    const end = out.uniform ? Math.max(0, Math.min(nb, endBatch)) : nb;
    const start = out.uniform ? Math.max(0, Math.min(end, fromBatch)) : 0;
    out.endBatch = end;
    out.fromBatch = start;
    this.readColumns(r, nc, kinds, end < nb || start > 0 ? end : -1, start);
    if (r.pos !== r.end) r.fail('trailing bytes');
    return out;
  }

  /**
   * Whether the column table and batch lists ahead (from r.pos) are the previous block's,
   * byte for byte, with the same counts, filter and no fewer paths: then everything read
   * from them (columns, kept slots, batch of each value) is still in place, and r moves
   * past them. Blocks of a poll repeat them block after block: this skips half the decode.
   */
  private sameShape(r: ByteReader, nb: number, nu: number, nc: number, keep: ((id: number) => boolean) | null, pathCount: number): boolean {
    const s = this.shape;
    if (!s || s.nb !== nb || s.nu !== nu || s.nc !== nc || s.keep !== keep || pathCount < s.pathCount) return false;
    const n = s.bytes.length;
    if (r.end - r.pos < n || !s.bytes.equals(r.buf.subarray(r.pos, r.pos + n))) return false;
    r.pos += n;
    return true;
  }

  private readTimes(r: ByteReader, nb: number, firstTs: number): Float64Array {
    const ts = new Float64Array(nb);
    let prevTs = firstTs;
    let prevDelta = 0;
    for (let i = 0; i < nb; i++) {
      prevDelta += svar(r);
      prevTs += prevDelta;
      ts[i] = prevTs;
    }
    return ts;
  }

  /**
   * The column table. A path in two columns is refused: the writer gives a path one column
   * a block, and folding column by column needs each path's values in one run (the codec,
   * which interleaves them by update, reads such a block; the pass then takes its reading).
   */
  private readColumnTable(r: ByteReader, nc: number, pathCount: number): void {
    const g = (this.colGlobal = grownU32(this.colGlobal, nc));
    this.colCount = grownU32(this.colCount, nc);
    this.colCount.fill(0, 0, nc);
    if (this.seenIn.length < pathCount) this.seenIn = new Uint32Array(Math.max(pathCount, this.seenIn.length * 2));
    if (++this.table === 0xffffffff) {
      this.seenIn.fill(0);
      this.table = 1;
    }
    let id = 0;
    for (let c = 0; c < nc; c++) {
      id += svar(r);
      if (id < 0 || id >= pathCount) r.fail(`unknown path id ${id}`);
      if (this.seenIn[id] === this.table) r.fail(`path id ${id} in two columns`);
      this.seenIn[id] = this.table;
      g[c] = id;
    }
  }

  /**
   * Each update's column (local), and each column's update count; as payload.ts readLayout.
   * Returns whether the block is uniform: one explicit list naming every column once, then
   * only "same as previous" lists (then local is not filled past the first list).
   */
  private readBatchLists(r: ByteReader, nb: number, nu: number, nc: number): boolean {
    const local = (this.local = grownU32(this.local, nu));
    const rank = (this.rank = grownU32(this.rank, nu));
    const sizes = (this.batchSizes = grownU32(this.batchSizes, nb));
    const count = this.colCount;
    let uniform = nb > 0;
    let at = 0;
    let prevStart = 0;
    let prevCount = -1;
    for (let i = 0; i < nb; i++) {
      const head = r.uvar();
      const n = Math.floor(head / 2);
      if (at + n > nu) r.fail('batch lists exceed update count');
      if (head % 2 === 1) {
        if (n !== prevCount) r.fail('"same as previous" batch with another count');
        if (!uniform) {
          local.copyWithin(at, prevStart, prevStart + n);
          for (let j = at; j < at + n; j++) {
            const l = local[j] as number;
            const seen = count[l] as number;
            rank[j] = seen;
            count[l] = seen + 1;
          }
        }
      } else {
        if (uniform && i > 0) this.unfold(i, nc);
        uniform = i === 0 && n === nc;
        let l = -1;
        for (let j = 0; j < n; j++) {
          l += svar(r);
          if (l < 0 || l >= nc) r.fail('column index out of range');
          local[at + j] = l;
          const seen = count[l] as number;
          if (seen > 0) uniform = false;
          rank[at + j] = seen;
          count[l] = seen + 1;
        }
      }
      sizes[i] = n;
      prevStart = at;
      prevCount = n;
      at += n;
    }
    if (at !== nu) r.fail('batch lists do not add up to the update count');
    if (uniform) for (let c = 0; c < nc; c++) count[c] = nb;
    return uniform;
  }

  /** A block seen as uniform up to batch i is not: copies the first list into batches 1..i-1 as readLayout would have (occurrence b in batch b). */
  private unfold(i: number, nc: number): void {
    const local = this.local;
    const count = this.colCount;
    for (let b = 1; b < i; b++) {
      local.copyWithin(b * nc, 0, nc);
      this.rank.fill(b, b * nc, (b + 1) * nc);
    }
    for (let c = 0; c < nc; c++) count[c] = i;
  }

  /** Kept columns get consecutive slots (colAt[c]); skipped ones -1. Returns the kept count. */
  private place(nc: number, keep: ((id: number) => boolean) | null): number {
    const out = this.out;
    this.colAt = nc <= this.colAt.length ? this.colAt : new Int32Array(Math.max(nc, this.colAt.length * 2));
    out.ids = grownU32(out.ids, nc);
    out.start = grownU32(out.start, nc + 1);
    if (out.place.length < nc) out.place = new Uint8Array(Math.max(nc, out.place.length * 2));
    const kept = this.assignSlots(nc, keep);
    const at = out.start[kept] as number;
    out.columns = kept;
    out.nums = grownF64(out.nums, at);
    // Generic elements (filled with null), never an array V8 stores as raw doubles: those may
    // replace a NaN's payload (an XOR or FLOAT64 column's stale marker; protocol/value.ts valueArray).
    if (out.values.length < at) out.values = new Array<Value>(Math.max(at, out.values.length * 2)).fill(null);
    return kept;
  }

  /**
   * place's loop: slots, ids and starts of the kept columns (start[kept] kept current
   * inside it). Alone in its function, which returns right after it: V8 compiles such a
   * loop on stack replacement during the first long block, and code after the loop, not
   * yet run then, would leave that compiled code on every later call (a deoptimization a
   * block, seen on blocks of 10 000 one-value columns).
   */
  private assignSlots(nc: number, keep: ((id: number) => boolean) | null): number {
    const colAt = this.colAt;
    const colGlobal = this.colGlobal;
    const colCount = this.colCount;
    const ids = this.out.ids;
    const start = this.out.start;
    let kept = 0;
    start[0] = 0;
    for (let c = 0; c < nc; c++) {
      const id = colGlobal[c] as number;
      if (keep !== null && !keep(id)) {
        colAt[c] = -1;
        continue;
      }
      colAt[c] = kept;
      ids[kept] = id;
      start[kept + 1] = (start[kept] as number) + (colCount[c] as number);
      kept++;
    }
    return kept;
  }

  /**
   * The columns' bodies; each starts with its kind byte unless `kinds` holds them (layout
   * 2). end >= 0 (uniform blocks only: occurrence j is batch j): decimal columns only up
   * to batch `end`, and from their last occurrence before batch `start` (decode's endBatch
   * and fromBatch).
   */
  private readColumns(r: ByteReader, nc: number, kinds: Uint8Array | undefined, end: number, start: number): void {
    const out = this.out;
    for (let c = 0; c < nc; c++) {
      const kind = kinds === undefined ? r.u8() : (kinds[c] as number);
      const slot = this.colAt[c] as number;
      const n = this.colCount[c] as number;
      if (slot < 0) {
        skipColumnBody(kind, r, n);
        continue;
      }
      const from = out.start[slot] as number;
      if (end >= 0) {
        const need = Math.min(n, end);
        const skip = Math.max(0, Math.min(n, start) - 1);
        if ((need < n || skip > 0) && this.decimals.readPrefix(r, kind, out.nums, from, n, need, skip)) {
          out.place[slot] = ColumnPlace.NUMBERS;
          continue;
        }
      }
      if (this.decimals.read(r, kind, out.nums, from, n) || (this.floats && readFloatColumn(r, kind, out.nums, from, n))) {
        out.place[slot] = ColumnPlace.NUMBERS;
      } else {
        decodeColumnBody(kind, r, out.values, from, from + n);
        out.place[slot] = ColumnPlace.VALUES;
      }
    }
  }

  /** The batch of each kept occurrence, from the update order (batches in order, so per column in time order). */
  private fillBatchOf(nb: number, nu: number, nc: number, kept: number): void {
    const out = this.out;
    const batchOf = (out.batchOf = grownU32(out.batchOf, out.start[kept] as number));
    // Each kept column's next free occurrence (-1: skipped column).
    if (this.nextAt.length < nc) this.nextAt = new Int32Array(Math.max(nc, this.nextAt.length * 2));
    const next = this.nextAt;
    for (let c = 0, k = 0; c < nc; c++) next[c] = (this.colAt[c] as number) < 0 ? -1 : (out.start[k++] as number);
    const local = this.local;
    let at = 0;
    for (let b = 0; b < nb && at < nu; b++) {
      const end = at + (this.batchSizes[b] as number);
      for (; at < end; at++) {
        const c = local[at] as number;
        const o = next[c] as number;
        if (o < 0) continue;
        batchOf[o] = b;
        next[c] = o + 1;
      }
    }
  }
}
