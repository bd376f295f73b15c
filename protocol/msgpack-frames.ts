/**
 * msgpack session frames (protocol/frames.ts describes them), written with the value codec
 * of protocol/value-msgpack.ts: `ts` and ids are msgpack integers, values exact. The hot
 * frames (batch, batches, state) are written from decoded ids and values without building
 * frame objects (batch and batches: protocol/msgpack-batch-frame.ts). Pure.
 */
import type { ValuelessFrame } from './frames.js';
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

/**
 * A server frame that carries no recorded value (controls, paths, error, ...), as a value of
 * the same codec, so `posUs` is an integer too. Frames with values (state, batch, batches)
 * go through the writers above: here the frame's own map and array would count against a
 * value's nesting limit, and a value at the limit would be refused.
 */
export function encodeMsgpackFrame(w: MsgpackWriter, frame: ValuelessFrame<string | number>): Uint8Array {
  return encodeMsgpack(frame as unknown as Value, w);
}
