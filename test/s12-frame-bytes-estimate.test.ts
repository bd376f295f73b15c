/**
 * A session cuts frames of batches at frameBytesMax by an estimate made before encoding
 * (server/sessions/frame-bytes.ts). The bound holds only if the estimate is at least what
 * the encoders write: held here against them (JSON bytes, msgpack; batches read one by one
 * and as columns) on hostile values, long strings with escapes and lone surrogates among them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeJsonColumnsRawFrame, encodeJsonColumnsViewFrame, encodeMsgpackColumnsRawFrame, encodeMsgpackColumnsViewFrame } from '../protocol/frame-columns.js';
import { encodeJsonColumnFrameBytes, encodeJsonRawFrameBytes } from '../protocol/frames.js';
import { encodeBatchFrame, encodeColumnFrame, type ColumnBatchesView } from '../protocol/msgpack-batch-frame.js';
import { MsgpackWriter } from '../protocol/msgpack-frames.js';
import { JsonBytesWriter } from '../protocol/value-json-bytes.js';
import type { Update, Value } from '../protocol/value.js';
import { FRAME_ENVELOPE_BYTES as ENVELOPE_BYTES, columnBatchBytes, rawBatchBytes } from '../server/sessions/frame-bytes.js';
import type { RawBatch } from '../storage/cursor.js';
import { hostilePath, hostileUpdates, hostileValue, propertySeed } from './helpers/values.js';

const T0 = 1_700_000_000_000_000;

const longString = fc.string({
  unit: fc.oneof(fc.constantFrom('a', 'é', '€', '𝄞', '"', '\\', '\u0001', '\u001f', '\ud800', '\udfff', '\u2028'), fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))),
  minLength: 64,
  maxLength: 400,
});
const updates: fc.Arbitrary<Update[]> = fc.oneof(
  hostileUpdates,
  // Batches recorded empty: their framing alone (several in a frame: the envelope counts).
  fc.constant<Update[]>([]),
  fc.uniqueArray(fc.tuple(hostilePath, fc.oneof(longString, fc.array(longString, { maxLength: 3 }) as fc.Arbitrary<Value>, hostileValue)), { minLength: 1, maxLength: 6, selector: (u) => u[0] }),
);

/** Batches over one path table, as a cursor hands them out and as a block of columns. */
function shape(batches: Update[][]): { raw: RawBatch[]; view: ColumnBatchesView; paths: string[] } {
  const paths: string[] = [];
  const idOf = new Map<string, number>();
  const ids: number[] = [];
  const values: Value[] = [];
  const starts = [0];
  for (const b of batches) {
    for (const [p, v] of b) {
      let id = idOf.get(p);
      if (id === undefined) idOf.set(p, (id = paths.push(p) - 1));
      ids.push(id);
      values.push(v);
    }
    starts.push(ids.length);
  }
  const idArr = Uint32Array.from(ids);
  const raw = batches.map((_, k) => ({ ts: T0 + k, ids: idArr, values, from: starts[k] as number, to: starts[k + 1] as number, filtered: false }));
  const nums = new Float64Array(values.length);
  const otherAt: number[] = [];
  const others: Value[] = [];
  values.forEach((v, u) => {
    if (typeof v === 'number') nums[u] = v;
    else {
      otherAt.push(u);
      others.push(v);
    }
  });
  const view = { ts: raw.map((b) => b.ts), starts: Uint32Array.from(starts), ids: idArr, nums, otherCount: others.length, otherAt: Uint32Array.from(otherAt), others };
  return { raw, view, paths };
}

describe('frame bytes estimate', () => {
  it('is at least what the JSON and msgpack encoders write, for batches read one by one and as columns', () => {
    fc.assert(
      fc.property(fc.array(updates, { minLength: 1, maxLength: 8 }), (batches) => {
        const { raw, view, paths } = shape(batches);
        const k1 = raw.length;
        for (const format of ['json', 'msgpack'] as const) {
          const estRaw = raw.reduce((n, b) => n + rawBatchBytes(b, format, paths, undefined), ENVELOPE_BYTES);
          let estColumns = ENVELOPE_BYTES;
          for (let k = 0; k < k1; k++) estColumns += columnBatchBytes(view, k, format, paths);
          const rawBytes = format === 'json' ? encodeJsonRawFrameBytes(new JsonBytesWriter(), raw, paths, undefined).length : encodeBatchFrame(new MsgpackWriter(), raw, undefined).length;
          const columnBytes = format === 'json' ? encodeJsonColumnFrameBytes(new JsonBytesWriter(), view, 0, k1, paths).length : encodeColumnFrame(new MsgpackWriter(), view, 0, k1).length;
          expect(estRaw, format).toBeGreaterThanOrEqual(rawBytes);
          expect(estColumns, format).toBeGreaterThanOrEqual(columnBytes);
          // The columns layout (?layout=columns) is held to the same estimates.
          const rawColumnsLayout = format === 'json' ? encodeJsonColumnsRawFrame(new JsonBytesWriter(), raw, paths, undefined).length : encodeMsgpackColumnsRawFrame(new MsgpackWriter(), raw, undefined).length;
          const viewColumnsLayout = format === 'json' ? encodeJsonColumnsViewFrame(new JsonBytesWriter(), view, 0, k1, paths).length : encodeMsgpackColumnsViewFrame(new MsgpackWriter(), view, 0, k1).length;
          expect(estRaw, `${format} columns layout`).toBeGreaterThanOrEqual(rawColumnsLayout);
          expect(estColumns, `${format} columns layout`).toBeGreaterThanOrEqual(viewColumnsLayout);
        }
      }),
      { seed: propertySeed('frame bytes estimate'), numRuns: 400 },
    );
  });
});
