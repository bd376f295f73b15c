/**
 * msgpack session frames (protocol/frames.ts describes them), written with the value codec
 * of protocol/value-msgpack.ts: `ts` and ids are msgpack integers, values exact. The hot
 * frames (batch, batches, state) are written from decoded ids and values without building
 * frame objects. Pure.
 */
import type { ServerFrame } from './frames.js';
import type { Value } from './value.js';
import { MsgpackWriter, encodeMsgpack } from './value-msgpack.js';

export { MsgpackWriter };

/** A batch as a view: updates are ids[from..to) / values[from..to), minus ids `match` rejects. */
export interface RawBatchView {
  ts: number;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  from: number;
  to: number;
}

export type IdMatch = ((id: number) => boolean) | undefined;

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

export function encodeStateFrame(w: MsgpackWriter, ts: number | null, values: ReadonlyArray<readonly [number, Value]>): Uint8Array {
  w.reset();
  w.mapHeader(3);
  w.str('type');
  w.str('state');
  w.str('ts');
  if (ts === null) w.value(null);
  else w.num(ts);
  w.str('values');
  w.pairs(values);
  return w.take();
}

/** Any server frame (controls, paths, error, ...): the same codec, so `posUs` is an integer too. */
export function encodeMsgpackFrame(w: MsgpackWriter, frame: ServerFrame<string | number>): Uint8Array {
  return encodeMsgpack(frame as unknown as Value, w);
}
