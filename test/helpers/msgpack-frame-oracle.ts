/**
 * The msgpack `batch` / `batches` frame written the plain way, one MsgpackWriter.pair() per
 * update: the oracle protocol/msgpack-batch-frame.ts's encoders are compared with (it was
 * the replay path's encoder until those replaced it).
 */
import type { IdMatch, RawBatchView } from '../../protocol/msgpack-frames.js';
import type { Value } from '../../protocol/value.js';
import type { MsgpackWriter } from '../../protocol/value-msgpack.js';

function rawUpdates(w: MsgpackWriter, b: RawBatchView, match: IdMatch): void {
  let n = b.to - b.from;
  if (match) {
    n = 0;
    for (let i = b.from; i < b.to; i++) if (match(b.ids[i] as number)) n++;
  }
  w.arrayHeader(n);
  for (let i = b.from; i < b.to; i++) {
    const id = b.ids[i] as number;
    if (match && !match(id)) continue;
    w.pair(id, b.values[i] as Value);
  }
}

/** A `batch` frame for one view, a `batches` frame for several. */
export function encodeRawFrame(w: MsgpackWriter, batches: readonly RawBatchView[], match: IdMatch): Uint8Array {
  w.reset();
  if (batches.length === 1) {
    const b = batches[0] as RawBatchView;
    w.mapHeader(3);
    w.str('type');
    w.str('batch');
    w.str('ts');
    w.num(b.ts);
    w.str('updates');
    rawUpdates(w, b, match);
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
    rawUpdates(w, b, match);
  }
  return w.take();
}
