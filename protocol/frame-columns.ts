/**
 * The `columns` layout of `batch` / `batches` frames (a stream opened with
 * `?layout=columns`, docs/playback.md "Layouts"): a batch is `{ ts, paths, values }` in JSON
 * and `{ ts, ids, values }` in msgpack, the i-th value the i-th path's, instead of
 * `updates: [[path, value], ...]`. The same batches, values and order; what differs is
 * that a client's parser builds two arrays a batch instead of one array an update, which
 * is most of what JSON.parse spends on a frame of numbers (test/bench/json-frame.ts
 * --parse). Values take the one JSON / msgpack form (protocol/value-json.ts,
 * protocol/value-msgpack.ts), so a NaN payload or a bigint travels as in `pairs`.
 * Pure.
 */
import { otherIndexFrom, type ColumnBatchesView } from './msgpack-batch-frame.js';
import type { IdMatch, RawBatchView } from './msgpack-frames.js';
import { quotedPathsOf, quotedPath } from './frames.js';
import type { Value } from './value.js';
import type { JsonBytesWriter } from './value-json-bytes.js';
import type { MsgpackWriter } from './value-msgpack.js';

/** How a stream's batch frames hold their updates. */
export const FRAME_LAYOUTS = ['pairs', 'columns'] as const;
export type FrameLayout = (typeof FRAME_LAYOUTS)[number];

/** Opens a `batch` frame (one batch: its fields follow) or a `batches` frame (its array follows); closed by `]}` after the batches unless one. */
function jsonFrameOpen(w: JsonBytesWriter, one: boolean): void {
  w.ascii(one ? '{"type":"batch",' : '{"type":"batches","batches":[');
}

/** Opens a batch up to its paths column; the batch ends with `]}` after its values. */
function jsonBatchOpen(w: JsonBytesWriter, one: boolean, first: boolean, ts: number): void {
  w.ascii(one ? '"ts":' : first ? '{"ts":' : ',{"ts":');
  // As the pairs layout writes it (`${ts}`), whatever the number.
  w.ascii(String(ts));
  w.ascii(',"paths":[');
}

/**
 * The JSON `batch` frame (one view) or `batches` frame (several) of decoded ids and values,
 * updates `match` rejects left out: encodeJsonRawFrameBytes in the columns layout. A copy.
 */
export function encodeJsonColumnsRawFrame(w: JsonBytesWriter, batches: readonly RawBatchView[], paths: readonly string[], match: IdMatch): Uint8Array {
  const table = quotedPathsOf(paths);
  const one = batches.length === 1;
  w.reset();
  jsonFrameOpen(w, one);
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k] as RawBatchView;
    jsonBatchOpen(w, one, k === 0, b.ts);
    let first = true;
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      if (match && !match(id)) continue;
      w.pathItem(quotedPath(table, paths, id), first);
      first = false;
    }
    w.ascii('],"values":[');
    first = true;
    for (let i = b.from; i < b.to; i++) {
      if (match && !match(b.ids[i] as number)) continue;
      w.valueItem(b.values[i] as Value, first);
      first = false;
    }
    w.ascii(']}');
  }
  if (!one) w.ascii(']}');
  return w.take();
}

/** encodeJsonColumnsRawFrame of batches [k0, k1) of a column view (filtered by the cursor already). A copy. */
export function encodeJsonColumnsViewFrame(w: JsonBytesWriter, v: ColumnBatchesView, k0: number, k1: number, paths: readonly string[]): Uint8Array {
  const table = quotedPathsOf(paths);
  const one = k1 - k0 === 1;
  let j = otherIndexFrom(v, v.starts[k0] as number);
  let nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
  w.reset();
  jsonFrameOpen(w, one);
  for (let k = k0; k < k1; k++) {
    jsonBatchOpen(w, one, k === k0, v.ts[k] as number);
    const from = v.starts[k] as number;
    const to = v.starts[k + 1] as number;
    for (let u = from; u < to; u++) w.pathItem(quotedPath(table, paths, v.ids[u] as number), u === from);
    w.ascii('],"values":[');
    for (let u = from; u < to; u++) {
      if (u === nextOther) {
        w.valueItem(v.others[j++] as Value, u === from);
        nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
      } else {
        w.valueItem(v.nums[u] as number, u === from);
      }
    }
    w.ascii(']}');
  }
  if (!one) w.ascii(']}');
  return w.take();
}

/** Opens one batch's map in msgpack (`type` first when it is the frame itself). */
function msgpackBatchOpen(w: MsgpackWriter, one: boolean, ts: number): void {
  if (one) {
    w.mapHeader(4);
    w.str('type');
    w.str('batch');
  } else {
    w.mapHeader(3);
  }
  w.str('ts');
  w.num(ts);
}

function msgpackFrameOpen(w: MsgpackWriter, batches: number): void {
  w.reset();
  if (batches === 1) return;
  w.mapHeader(2);
  w.str('type');
  w.str('batches');
  w.str('batches');
  w.arrayHeader(batches);
}

/** The msgpack `batch` / `batches` frame (encodeBatchFrame) in the columns layout: `ids`, then `values`. A copy. */
export function encodeMsgpackColumnsRawFrame(w: MsgpackWriter, batches: readonly RawBatchView[], match: IdMatch): Uint8Array {
  msgpackFrameOpen(w, batches.length);
  for (const b of batches) {
    msgpackBatchOpen(w, batches.length === 1, b.ts);
    let n = b.to - b.from;
    if (match) {
      n = 0;
      for (let i = b.from; i < b.to; i++) if (match(b.ids[i] as number)) n++;
    }
    w.str('ids');
    w.arrayHeader(n);
    for (let i = b.from; i < b.to; i++) if (!match || match(b.ids[i] as number)) w.num(b.ids[i] as number);
    w.str('values');
    w.arrayHeader(n);
    for (let i = b.from; i < b.to; i++) if (!match || match(b.ids[i] as number)) w.value(b.values[i] as Value);
  }
  return w.take();
}

/** encodeMsgpackColumnsRawFrame of batches [k0, k1) of a column view. A copy. */
export function encodeMsgpackColumnsViewFrame(w: MsgpackWriter, v: ColumnBatchesView, k0: number, k1: number): Uint8Array {
  msgpackFrameOpen(w, k1 - k0);
  let j = otherIndexFrom(v, v.starts[k0] as number);
  let nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
  for (let k = k0; k < k1; k++) {
    msgpackBatchOpen(w, k1 - k0 === 1, v.ts[k] as number);
    const from = v.starts[k] as number;
    const to = v.starts[k + 1] as number;
    w.str('ids');
    w.arrayHeader(to - from);
    for (let u = from; u < to; u++) w.num(v.ids[u] as number);
    w.str('values');
    w.arrayHeader(to - from);
    for (let u = from; u < to; u++) {
      if (u === nextOther) {
        w.value(v.others[j++] as Value);
        nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
      } else {
        w.value(v.nums[u] as number);
      }
    }
  }
  return w.take();
}
