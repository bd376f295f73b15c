/**
 * A block's batches as columns in update order, for sequential readers that want every
 * update without an object per update or an await per batch (Cursor.nextColumns). The
 * block is decoded by storage/column-block.ts (numbers unboxed into a Float64Array, XOR and
 * FLOAT64 as their bits), then gathered into update order: per update its path id and,
 * when it is a number, its value in `nums`; any other value (string, null, boolean, bigint,
 * bytes, array, map) goes to a side channel, in update order.
 *
 * The result lives in the builder's scratch arrays, reused block after block: valid until
 * the next fill. The order of updates, their batches and the values, bit for bit, are the
 * ones Cursor.next / nextRaw give.
 */
import { TapedeckError } from '../protocol/errors.js';
import type { Value } from '../protocol/value.js';
import { ByteReader } from './codec/bytes.js';
import { decodeBatchesInto, newNumberBatches, readPayloadHead, type DecodedBatches, type NumberBatches } from './codec/payload.js';
import { decodeNotes } from './codec/xor-float.js';
import { ColumnBlockReader, ColumnPlace, type ColumnBlock } from './column-block.js';

/**
 * Batches [0, batches) of one block, each at ts[k], its updates [starts[k], starts[k + 1])
 * of ids / nums (starts[0] need not be 0). nums[u] is update u's value when it is a
 * number (NaN payloads and -0 kept) and 0 otherwise; the updates whose value is not a
 * number are otherAt[0, otherCount) (ascending update indices), their values others[j].
 */
export interface ColumnBatches {
  batches: number;
  ts: Float64Array;
  starts: Uint32Array;
  ids: Uint32Array;
  nums: Float64Array;
  otherCount: number;
  otherAt: Uint32Array;
  others: Value[];
}

/** Which batches and updates a view keeps (the cursor's filter and visibility rules). */
export interface Selection {
  /** Kept path ids; null keeps every path. Must be the same function from call to call (shapes are cached by it). */
  keep: ((id: number) => boolean) | null;
  /** Batches with no kept update are passed over even when they were recorded empty (Cursor's selective mode). */
  dropEmpty: boolean;
}

function grownU32(a: Uint32Array, n: number): Uint32Array {
  return a.length >= n ? a : new Uint32Array(Math.max(n, a.length * 2));
}

function grownF64(a: Float64Array, n: number): Float64Array {
  return a.length >= n ? a : new Float64Array(Math.max(n, a.length * 2));
}

/**
 * Whether every kept column of a block holds numbers. A loop alone in its function (see
 * ColumnBlockReader.assignSlots: code after a loop compiled on stack replacement).
 */
function allNumbers(b: ColumnBlock): boolean {
  const place = b.place;
  for (let s = 0; s < b.columns; s++) if (place[s] !== ColumnPlace.NUMBERS) return false;
  return true;
}

/**
 * Blocks with fewer updates than this many per column go through the codec's typed decode
 * (its cost is per update); blocks of longer columns (polls) through the column reader, whose
 * cost is per column and which skips the batch lists of a poll's repeated shape. Measured
 * (docs/storage.md "Reading by columns"): mixed blocks hold 1.6 updates a column, fabric's
 * polls one a batch.
 */
const INTO_UPDATES_PER_COLUMN_MAX = 4;

/** Whether a payload's head says its columns are short (INTO_UPDATES_PER_COLUMN_MAX); false when it cannot be read (the column reader then says why). */
function shortColumns(raw: Uint8Array): boolean {
  try {
    const h = readPayloadHead(new ByteReader(raw), raw);
    return h.nu < INTO_UPDATES_PER_COLUMN_MAX * h.nc;
  } catch {
    return false;
  }
}

/** After a block of values (not numbers only), blocks the codec's typed decode is not tried for before trying again. */
const INTO_RETRY_BLOCKS = 8;

export interface ColumnBatchesOptions {
  /**
   * Unfiltered blocks of numbers only go through the codec's decodeBatchesInto, which
   * decodes straight into update order (default true). false: every block through the
   * column reader (the test that compares the two paths).
   */
  into?: boolean;
}

/** Fills ColumnBatches from block payloads (one per cursor: not reentrant). */
export class ColumnBatchesBuilder {
  private readonly reader = new ColumnBlockReader({ floats: true, batchOf: false });
  private readonly into: NumberBatches | undefined;
  /** Blocks left before decodeBatchesInto is tried again after it declined one. */
  private intoPause = 0;
  /** Blocks read through decodeBatchesInto (tests check the path is taken). */
  intoBlocks = 0;
  /** Per kept update (update order): its occurrence in the block's column-major arrays. */
  private occ: Uint32Array = new Uint32Array(1024);
  /** Per occurrence of the block: 1 when its column is a value column (gatherMixed). */
  private isValue = new Uint8Array(1024);
  /** Per batch: its first kept update; [nb] = kept updates. */
  private keptStart: Uint32Array = new Uint32Array(1025);
  /** Per batch: updates recorded. */
  private sizes: Uint32Array = new Uint32Array(1024);
  /** The reader's shape and the selection the gather above was made for. */
  private shape = -1;
  private keep: ((id: number) => boolean) | null | undefined = undefined;
  private nb = 0;
  private colNext: Uint32Array = new Uint32Array(1024);
  readonly out: ColumnBatches = {
    batches: 0,
    ts: new Float64Array(1024),
    starts: new Uint32Array(1025),
    ids: new Uint32Array(1024),
    nums: new Float64Array(1024),
    otherCount: 0,
    otherAt: new Uint32Array(64),
    others: [],
  };

  constructor(opts: ColumnBatchesOptions = {}) {
    this.into = opts.into === false ? undefined : newNumberBatches();
  }

  /**
   * Batches [from, end) of a DELTA payload whose first batch is at firstTs and whose header
   * says it holds `batches`, selected. Throws
   * TPD_CORRUPT_BLOCK on anything the column reader refuses; undefined when the block
   * holds a signalling NaN in a value column (the caller reads it through the codec, which
   * keeps its payload: fromDecoded).
   */
  fill(raw: Uint8Array, firstTs: number, batches: number, pathCount: number, from: number, sel: Selection): ColumnBatches | undefined {
    if (sel.keep === null && this.into !== undefined && shortColumns(raw)) {
      if (this.intoPause === 0) {
        const view = this.fillInto(this.into, raw, firstTs, batches, pathCount, from);
        if (view) return view;
        this.intoPause = INTO_RETRY_BLOCKS;
      } else {
        this.intoPause--;
      }
    }
    decodeNotes.signalingNaN = false;
    const b = this.reader.decode(raw, firstTs, sel.keep, pathCount);
    if (b.batches !== batches) throw new TapedeckError('TPD_CORRUPT_BLOCK', 'batch count differs from its header');
    const order = this.reader.updateOrder();
    const out = this.out;
    const numeric = allNumbers(b);
    if (numeric && !b.uniform) {
      // Ragged batches of numbers: ids and values in one pass (such shapes seldom repeat).
      this.shape = -1;
      this.gatherRows(b);
      out.otherCount = 0;
      this.batchesFrom(b.ts, from, b.batches, sel);
      return out;
    }
    if (order.shape !== this.shape || sel.keep !== this.keep || b.batches !== this.nb) this.gatherOrder(b);
    this.shape = order.shape;
    this.keep = sel.keep;
    this.nb = b.batches;
    const kept = this.keptStart[b.batches] as number;
    out.nums = grownF64(out.nums, kept);
    const lo = this.keptStart[Math.min(from, b.batches)] as number;
    if (numeric) {
      this.gatherNumbers(b.nums, lo, kept);
      out.otherCount = 0;
    } else {
      this.gatherMixed(b, lo, kept);
      if (decodeNotes.signalingNaN) return undefined;
    }
    this.batchesFrom(b.ts, from, b.batches, sel);
    return out;
  }

  /**
   * An unfiltered block of numbers only, decoded by the codec straight into update order
   * (every bit kept, as the column reader keeps them); undefined when the codec declines
   * the payload (values that are not numbers, layout 1). The ids and numbers arrays are
   * shared with `out` (lent to the codec, which grows them when short).
   */
  private fillInto(nb: NumberBatches, raw: Uint8Array, firstTs: number, batches: number, pathCount: number, from: number): ColumnBatches | undefined {
    const out = this.out;
    // out.ids will no longer hold the cached gather of the column reader's last shape.
    this.shape = -1;
    nb.ids = out.ids;
    nb.nums = out.nums;
    if (!decodeBatchesInto(raw, firstTs, nb)) return undefined;
    out.ids = nb.ids;
    out.nums = nb.nums;
    if (nb.batchCount !== batches) throw new TapedeckError('TPD_CORRUPT_BLOCK', 'batch count differs from its header');
    if (nb.idMax >= pathCount) throw new TapedeckError('TPD_CORRUPT_BLOCK', 'unknown path id');
    this.intoBlocks++;
    out.otherCount = 0;
    this.startsFrom(nb, from);
    return out;
  }

  /** Every batch of [from, batchCount) is visible (no selection): their times and update ranges. */
  private startsFrom(nb: NumberBatches, from: number): void {
    const out = this.out;
    const n = nb.batchCount;
    out.ts = grownF64(out.ts, n);
    out.starts = grownU32(out.starts, n + 1);
    const counts = nb.counts;
    let at = 0;
    for (let i = 0; i < from && i < n; i++) at += counts[i] as number;
    let j = 0;
    out.starts[0] = at;
    for (let i = from; i < n; i++) {
      out.ts[j] = nb.ts[i] as number;
      at += counts[i] as number;
      out.starts[++j] = at;
    }
    if (j === 0) out.starts[0] = 0;
    out.batches = j;
  }

  /** The view of a block decoded by the codec (blocks the column reader refuses), same selection. */
  fromDecoded(d: DecodedBatches, from: number, sel: Selection): ColumnBatches {
    this.shape = -1;
    const nb = d.ts.length;
    this.keptStart = grownU32(this.keptStart, nb + 1);
    const out = this.out;
    out.ids = grownU32(out.ids, d.ids.length);
    out.nums = grownF64(out.nums, d.ids.length);
    out.otherCount = 0;
    let at = 0;
    let k = 0;
    this.sizes = grownU32(this.sizes, nb);
    for (let i = 0; i < nb; i++) {
      this.keptStart[i] = k;
      const end = at + (d.counts[i] as number);
      this.sizes[i] = d.counts[i] as number;
      for (; at < end; at++) {
        const id = d.ids[at] as number;
        if (sel.keep !== null && !sel.keep(id)) continue;
        if (i >= from) this.put(k, id, d.values[at] as Value);
        k++;
      }
    }
    this.keptStart[nb] = k;
    this.batchesFrom(d.ts, from, nb, sel);
    return out;
  }

  private put(k: number, id: number, v: Value): void {
    const out = this.out;
    out.ids[k] = id;
    if (typeof v === 'number') {
      out.nums[k] = v;
      return;
    }
    out.nums[k] = 0;
    this.other(k, v);
  }

  private other(k: number, v: Value): void {
    const out = this.out;
    if (out.otherAt.length <= out.otherCount) {
      // Grown keeping the entries of this block so far.
      const grown = new Uint32Array(out.otherAt.length * 2);
      grown.set(out.otherAt);
      out.otherAt = grown;
    }
    out.otherAt[out.otherCount] = k;
    out.others[out.otherCount++] = v;
  }

  /**
   * Each kept update's place in the column-major block (its occurrence) and path id, and
   * each batch's first kept update. Blocks of the same shape (a poll) reuse it.
   */
  private gatherOrder(b: ColumnBlock): void {
    const { local, sizes, slot } = this.reader.updateOrder();
    const nb = b.batches;
    const total = b.start[b.columns] as number;
    const keptStart = (this.keptStart = grownU32(this.keptStart, nb + 1));
    this.sizes = grownU32(this.sizes, nb);
    this.sizes.set(sizes.subarray(0, nb));
    const occ = (this.occ = grownU32(this.occ, total));
    const ids = (this.out.ids = grownU32(this.out.ids, total));
    const start = b.start;
    const colIds = b.ids;
    let k = 0;
    if (b.uniform) {
      // Every batch lists the first batch's columns in its order: occurrence i of each.
      const n = sizes[0] as number;
      for (let i = 0; i < nb; i++) {
        keptStart[i] = k;
        for (let j = 0; j < n; j++) {
          const s = slot[local[j] as number] as number;
          if (s < 0) continue;
          occ[k] = (start[s] as number) + i;
          ids[k++] = colIds[s] as number;
        }
      }
      keptStart[nb] = k;
      return;
    }
    // Each kept column's next occurrence.
    const next = (this.colNext = grownU32(this.colNext, b.columns));
    next.set(start.subarray(0, b.columns));
    let at = 0;
    for (let i = 0; i < nb; i++) {
      keptStart[i] = k;
      for (const end = at + (sizes[i] as number); at < end; at++) {
        const s = slot[local[at] as number] as number;
        if (s < 0) continue;
        const o = next[s] as number;
        next[s] = o + 1;
        occ[k] = o;
        ids[k++] = colIds[s] as number;
      }
    }
    keptStart[nb] = k;
  }

  /** A non-uniform block of numbers: each kept update's path id and value, by its column's occurrence (rank). */
  private gatherRows(b: ColumnBlock): void {
    const { local, rank, sizes, slot } = this.reader.updateOrder();
    const nb = b.batches;
    const total = b.start[b.columns] as number;
    const keptStart = (this.keptStart = grownU32(this.keptStart, nb + 1));
    this.sizes = grownU32(this.sizes, nb);
    this.sizes.set(sizes.subarray(0, nb));
    const ids = (this.out.ids = grownU32(this.out.ids, total));
    const nums = (this.out.nums = grownF64(this.out.nums, total));
    const start = b.start;
    const colIds = b.ids;
    const colNums = b.nums;
    let k = 0;
    let at = 0;
    for (let i = 0; i < nb; i++) {
      keptStart[i] = k;
      for (const end = at + (sizes[i] as number); at < end; at++) {
        const s = slot[local[at] as number] as number;
        if (s < 0) continue;
        ids[k] = colIds[s] as number;
        nums[k++] = colNums[(start[s] as number) + (rank[at] as number)] as number;
      }
    }
    keptStart[nb] = k;
  }

  private gatherNumbers(nums: Float64Array, lo: number, kept: number): void {
    const out = this.out.nums;
    const occ = this.occ;
    for (let k = lo; k < kept; k++) out[k] = nums[occ[k] as number] as number;
  }

  /** gatherNumbers for a block with value columns: their occurrences marked first, their non-numbers to the side channel. */
  private gatherMixed(b: ColumnBlock, lo: number, kept: number): void {
    const out = this.out;
    out.otherCount = 0;
    const total = b.start[b.columns] as number;
    if (this.isValue.length < total) this.isValue = new Uint8Array(Math.max(total, this.isValue.length * 2));
    const isValue = this.isValue;
    for (let s = 0; s < b.columns; s++) isValue.fill(b.place[s] === ColumnPlace.NUMBERS ? 0 : 1, b.start[s] as number, b.start[s + 1] as number);
    const occ = this.occ;
    for (let k = lo; k < kept; k++) {
      const o = occ[k] as number;
      if (isValue[o] === 0) {
        out.nums[k] = b.nums[o] as number;
        continue;
      }
      const v = b.values[o] as Value;
      if (typeof v === 'number') {
        out.nums[k] = v;
        continue;
      }
      out.nums[k] = 0;
      this.other(k, v);
    }
  }

  /** The visible batches of [from, nb) into out.ts / out.starts. */
  private batchesFrom(ts: Float64Array, from: number, nb: number, sel: Selection): void {
    const out = this.out;
    out.ts = grownF64(out.ts, nb);
    out.starts = grownU32(out.starts, nb + 1);
    const ks = this.keptStart;
    let j = 0;
    for (let i = from; i < nb; i++) {
      const a = ks[i] as number;
      const z = ks[i + 1] as number;
      // As Cursor.visible: a batch with no kept update shows only when it was recorded empty (and not in selective mode).
      if (a === z && sel.keep !== null && (sel.dropEmpty || (this.sizes[i] as number) > 0)) continue;
      out.ts[j] = ts[i] as number;
      out.starts[j] = a;
      out.starts[j + 1] = z;
      j++;
    }
    if (j === 0) out.starts[0] = 0;
    out.batches = j;
  }
}
