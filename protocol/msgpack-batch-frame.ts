/**
 * The msgpack `batch` / `batches` frame of the session replay path, written from decoded
 * ids and values (one MsgpackWriter.pairsOf call a batch). The same bytes as
 * protocol/msgpack-frames.ts encodeRawFrame (test/msgpack-batch-frame.test.ts compares
 * them on seeded hostile values), which builds each pair with pair(). Pure.
 */
import type { IdMatch, RawBatchView } from './msgpack-frames.js';
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
