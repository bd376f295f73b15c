/**
 * The msgpack `batch` / `batches` frame of the session replay path, written from decoded
 * ids and values (one MsgpackWriter.pairsOf call a batch), or from a block held as columns
 * (pairsOfColumns). The same bytes as writing one pair() per update (the oracle
 * test/helpers/msgpack-frame-oracle.ts, which test/msgpack-batch-frame.test.ts and
 * test/session-columns.test.ts compare them with on seeded hostile values). Pure.
 */
import type { IdMatch, RawBatchView } from './msgpack-frames.js';
import type { Value } from './value.js';
import type { MsgpackWriter } from './value-msgpack.js';

/** A `batch` frame for one view, a `batches` frame for several; a copy of the bytes. */
export function encodeBatchFrame(w: MsgpackWriter, batches: readonly RawBatchView[], match: IdMatch): Uint8Array {
  w.reset();
  if (batches.length === 1) {
    const b = batches[0] as RawBatchView;
    w.mapHeader(3);
    w.str('type');
    w.str('batch');
    w.str('ts');
    w.num(b.ts);
    w.str('updates');
    w.pairsOf(b.ids, b.values, b.from, b.to, match);
    return w.take();
  }
  w.mapHeader(2);
  w.str('type');
  w.str('batches');
  w.str('batches');
  w.arrayHeader(batches.length);
  for (const b of batches) {
    w.mapHeader(2);
    w.str('ts');
    w.num(b.ts);
    w.str('updates');
    w.pairsOf(b.ids, b.values, b.from, b.to, match);
  }
  return w.take();
}

/**
 * Batches held as columns (storage's ColumnBatches, from Cursor.nextColumns): batch k at
 * ts[k], its updates [starts[k], starts[k + 1]) of ids, each update's value nums[u] unless
 * u is one of otherAt[0, otherCount) (ascending), whose values are others[j].
 */
export interface ColumnBatchesView {
  ts: ArrayLike<number>;
  starts: ArrayLike<number>;
  ids: ArrayLike<number>;
  nums: Float64Array;
  otherCount: number;
  otherAt: ArrayLike<number>;
  others: ArrayLike<Value>;
}

/** The first j with otherAt[j] >= u (otherCount when none). */
export function otherIndexFrom(v: ColumnBatchesView, u: number): number {
  let lo = 0;
  let hi = v.otherCount;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((v.otherAt[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** encodeBatchFrame of batches [k0, k1) of a column view: the same bytes for the same batches. */
export function encodeColumnFrame(w: MsgpackWriter, v: ColumnBatchesView, k0: number, k1: number): Uint8Array {
  w.reset();
  let j = otherIndexFrom(v, v.starts[k0] as number);
  if (k1 - k0 === 1) {
    w.mapHeader(3);
    w.str('type');
    w.str('batch');
    w.str('ts');
    w.num(v.ts[k0] as number);
    w.str('updates');
    w.pairsOfColumns(v.ids, v.nums, v.starts[k0] as number, v.starts[k0 + 1] as number, v.otherAt, v.others, v.otherCount, j);
    return w.take();
  }
  w.mapHeader(2);
  w.str('type');
  w.str('batches');
  w.str('batches');
  w.arrayHeader(k1 - k0);
  for (let k = k0; k < k1; k++) {
    w.mapHeader(2);
    w.str('ts');
    w.num(v.ts[k] as number);
    w.str('updates');
    j = w.pairsOfColumns(v.ids, v.nums, v.starts[k] as number, v.starts[k + 1] as number, v.otherAt, v.others, v.otherCount, j);
  }
  return w.take();
}
