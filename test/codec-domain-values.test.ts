/**
 * The writer's whole domain through every reader: whatever encodeBatches accepts (numbers of
 * every float64 class, decimals whose scaled values sit at each column kind's bounds, values
 * of every kind, mixed columns, columns of every length around the planner's thresholds, a
 * path twice in a batch, empty batches) comes back bit for bit from decodeBatches,
 * decodeBatchesSelected (all paths and some), decodeBatchesInto, the column reader
 * (ColumnBlockReader, numbers boxed or as bits, in full and up to / from every batch), the
 * cursor's column batches (ColumnBatchesBuilder, both paths), the batch-time readers, the
 * frame (LZ4) and its seek head, and the sidecar's column and chunk codecs.
 *
 * Seeded (printed; TPD_DOMAIN_SEED replays).
 */
import { describe, expect, it } from 'vitest';
import type { Value } from '../protocol/value.js';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { decodeColumn, decodeColumnF64, encodeColumn, skipColumn } from '../storage/codec/columns.js';
import { decodeBatches, decodeBatchesInto, decodeBatchesSelected, encodeBatches, newNumberBatches, type FlatBatches } from '../storage/codec/payload.js';
import { batchesAtOrBefore, readBatchTimes } from '../storage/codec/batch-times.js';
import { BlockType, encodeFrame, openFrame, FRAME_HEADER_BYTES } from '../storage/codec/frame.js';
import { seekHead } from '../storage/seek-head.js';
import { ColumnBlockReader, ColumnPlace } from '../storage/column-block.js';
import { ColumnBatchesBuilder } from '../storage/column-batches.js';
import { decodeChunk, encodeChunk } from '../storage/series-index/chunk.js';
import { valueDiff } from './helpers/values.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_DOMAIN_SEED', 'codec-domain-values');

const f64 = (hex: bigint): number => new Float64Array(new BigUint64Array([hex]).buffer)[0] as number;
const bitsOf = (x: number): bigint => new BigUint64Array(Float64Array.of(x).buffer)[0] as bigint;

/**
 * An empty array in V8's generic elements, which keep a NaN's payload: an array of only
 * numbers is stored as raw doubles, where V8 may replace a NaN by the canonical one (so a
 * test's own arrays would lose the payloads it means to write).
 */
function generic<T>(): T[] {
  const a = new Array<unknown>(1).fill(null);
  a.length = 0;
  return a as T[];
}

/** Every float64 class: zeros, subnormals, infinities, NaNs with payloads (Prometheus' stale marker), the ends of the integers. */
const SPECIAL = generic<number>();
SPECIAL.push(
  0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, Number.MAX_VALUE, -Number.MAX_VALUE, Infinity, -Infinity, NaN,
  f64(0x7ff0000000000002n), f64(0x7ff8000000000001n), f64(0xfff8000000000000n), f64(0x7ff4000000000000n), f64(0x7fffffffffffffffn), f64(0xfff0000000000001n),
  2 ** 51 - 1, 2 ** 51, 2 ** 51 + 1, -(2 ** 51), -(2 ** 51) - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 60, 1e21, 1e300, 0.1, 0.3, 1 / 3, Math.PI,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 2 ** 28, 2 ** 28 - 1, -(2 ** 28), 2 ** 19, 2 ** 19 - 1, -(2 ** 19), 2 ** 12, 2 ** 12 - 1, -(2 ** 12), 4095, 4096,
);

/** Scaled magnitudes at each bound the writer and readers test: SMALL 2^19, ORDER0 2^12, widths 24/32, int32, 2^28, short 2^50, 2^51, 2^52. */
const BOUNDS = [2 ** 12, 2 ** 19, 2 ** 20, 2 ** 24, 2 ** 28, 2 ** 31, 2 ** 32, 2 ** 50, 2 ** 51, 2 ** 52];

/** A number near an edge: a special, a decimal of k places whose scaled value is near a bound, or ordinary. */
function edgeNumber(r: () => number, k: number): number {
  const pick = r();
  if (pick < 0.25) return SPECIAL[Math.floor(r() * SPECIAL.length)] as number;
  const sign = r() < 0.5 ? -1 : 1;
  if (pick < 0.7) {
    const b = BOUNDS[Math.floor(r() * BOUNDS.length)] as number;
    const s = sign * (b + Math.floor(r() * 5) - 2);
    return s / 10 ** k;
  }
  if (pick < 0.9) return Math.floor((r() - 0.5) * 2000) / 10 ** k;
  return (r() - 0.5) * 10 ** Math.floor(r() * 20);
}

const LONG = 'x'.repeat(70_000);
/** Values other than numbers: empty, long, lone surrogates, NUL, bytes, booleans, null, bigints, nested. */
const OTHERS: Value[] = ['', LONG, '\ud800', 'a\udc00b', '\u0000', 'ok', new Uint8Array(0), new Uint8Array([0, 255, 1]), true, false, null, 2n ** 64n - 1n, -(2n ** 63n), [], [-0, NaN], { __proto__: 1, a: -0 } as unknown as Value, { '': [null] }];

type Shape = 'numbers' | 'walk' | 'decimalEdge' | 'mixed' | 'others' | 'constant' | 'spikes';
const SHAPES: Shape[] = ['numbers', 'walk', 'decimalEdge', 'mixed', 'others', 'constant', 'spikes'];
const LENGTHS = [1, 2, 3, 4, 15, 16, 17, 18, 31, 33, 64, 130, 300];

/** One path's values: a shape reaching the writer's edges. */
function columnValues(r: () => number, n: number): Value[] {
  const shape = SHAPES[Math.floor(r() * SHAPES.length)] as Shape;
  const k = Math.floor(r() * 10);
  const out = generic<Value>();
  const b = BOUNDS[Math.floor(r() * BOUNDS.length)] as number;
  let s = (r() < 0.5 ? -1 : 1) * (b - Math.floor(r() * 3));
  for (let i = 0; i < n; i++) {
    if (shape === 'numbers') out.push(edgeNumber(r, k));
    else if (shape === 'walk') {
      s += Math.floor((r() - 0.5) * 64);
      out.push(s / 10 ** k);
    } else if (shape === 'decimalEdge') out.push(edgeNumber(r, k) === 0 ? 0 : (r() < 0.5 ? s : -s + i) / 10 ** k);
    else if (shape === 'mixed') out.push(r() < 0.5 ? edgeNumber(r, k) : (OTHERS[Math.floor(r() * OTHERS.length)] as Value));
    else if (shape === 'others') out.push(OTHERS[Math.floor(r() * OTHERS.length)] as Value);
    else if (shape === 'constant') out.push(s / 10 ** k);
    else out.push(r() < 0.1 ? edgeNumber(r, k) : Math.floor(r() * 8) / 10 ** k);
  }
  return out;
}

interface Block {
  flat: FlatBatches & { ts: number[]; counts: number[]; ids: number[]; values: Value[] };
  paths: number;
}

/**
 * A block: P paths, each of its values in order; batches list paths in a random or fixed
 * order (uniform: every path once a batch), some batches empty, some with a path twice.
 */
function block(r: () => number): Block {
  // Mostly a few paths; sometimes hundreds of short columns (an image, a mixed block: the
  // encoder's runs of short columns, the reader's chains).
  const wide = r() < 0.15;
  const paths = wide ? 50 + Math.floor(r() * 300) : 1 + Math.floor(r() * 5);
  const uniform = r() < 0.5;
  const n = wide ? 1 + Math.floor(r() * 3) : (LENGTHS[Math.floor(r() * LENGTHS.length)] as number);
  const cols = Array.from({ length: paths }, () => columnValues(r, n + 4));
  const used = new Array<number>(paths).fill(0);
  const ids0 = Array.from({ length: paths }, (_, p) => (r() < 0.3 ? p * 1000 + Math.floor(r() * 3) : p));
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values = generic<Value>();
  let t = 1_700_000_000_000_000;
  for (let bi = 0; bi < n; bi++) {
    t += r() < 0.2 ? 1 : 15_000_000;
    ts.push(t);
    const list: number[] = [];
    if (uniform) for (let p = 0; p < paths; p++) list.push(p);
    else if (r() >= 0.1) {
      for (let p = 0; p < paths; p++) if (r() < 0.6) list.push(p);
      if (list.length > 0 && r() < 0.15) list.push(list[0] as number); // the same path twice in a batch
    }
    for (const p of list) {
      const c = cols[p] as Value[];
      ids.push(ids0[p] as number);
      const at = used[p] as number;
      used[p] = at + 1;
      values.push(c[at % c.length] as Value);
    }
    counts.push(list.length);
  }
  return { flat: { ts, counts, ids, values, batchCount: n, updateCount: values.length }, paths: Math.max(...ids0) + 1 };
}

function same(want: Value, got: unknown, what: string): void {
  if (typeof want === 'number') {
    if (typeof got !== 'number' || bitsOf(got) !== bitsOf(want)) throw new Error(`${what}: got ${String(got)} (0x${typeof got === 'number' ? bitsOf(got).toString(16) : '?'}), want ${want} (0x${bitsOf(want).toString(16)}) (seed ${SEED})`);
    return;
  }
  const d = valueDiff(want, got);
  if (d !== undefined) throw new Error(`${what}: ${d} (seed ${SEED})`);
}

/** Every update's (batch, path id, value) in update order; the occurrences of each path id in time order. */
function occurrences(flat: Block['flat']): Map<number, { batch: number; value: Value }[]> {
  const byId = new Map<number, { batch: number; value: Value }[]>();
  let u = 0;
  flat.counts.forEach((c, b) => {
    for (let j = 0; j < c; j++, u++) {
      const id = flat.ids[u] as number;
      const list = byId.get(id) ?? [];
      list.push({ batch: b, value: flat.values[u] as Value });
      byId.set(id, list);
    }
  });
  return byId;
}

function checkCodec(raw: Uint8Array, blk: Block, what: string): void {
  const { flat } = blk;
  const firstTs = flat.ts[0] as number;
  const full = decodeBatches(raw, firstTs);
  expect(Array.from(full.ts)).toEqual(flat.ts);
  expect(Array.from(full.counts)).toEqual(flat.counts);
  expect(Array.from(full.ids)).toEqual(flat.ids);
  flat.values.forEach((v, u) => same(v, full.values[u], `${what} decodeBatches update ${u}`));
  const all = decodeBatchesSelected(raw, firstTs, () => true);
  flat.values.forEach((v, u) => same(v, all.values[u], `${what} decodeBatchesSelected update ${u}`));
  // Every other path: the kept updates in order, the batches' counts of them.
  const keep = (id: number): boolean => id % 2 === 0;
  const some = decodeBatchesSelected(raw, firstTs, keep);
  let j = 0;
  flat.values.forEach((v, u) => {
    if (keep(flat.ids[u] as number)) same(v, some.values[j++], `${what} decodeBatchesSelected(even) kept ${j}`);
  });
  expect(some.values.length).toBe(j);
  const into = newNumberBatches();
  const numeric = flat.values.every((v) => typeof v === 'number');
  if (decodeBatchesInto(raw, firstTs, into)) {
    expect(numeric).toBe(true);
    expect(into.updateCount).toBe(flat.updateCount);
    expect(Array.from(into.ts.subarray(0, into.batchCount))).toEqual(flat.ts);
    expect(Array.from(into.ids.subarray(0, into.updateCount))).toEqual(flat.ids);
    flat.values.forEach((v, u) => same(v, into.nums[u], `${what} decodeBatchesInto update ${u}`));
  } else expect(numeric).toBe(false);
  expect(Array.from(readBatchTimes(raw, firstTs))).toEqual(flat.ts);
  flat.ts.forEach((t, b) => {
    expect(batchesAtOrBefore(raw, firstTs, flat.batchCount, t)).toBe(b + 1);
    expect(batchesAtOrBefore(raw, firstTs, flat.batchCount, t - 1)).toBe(b);
  });
}

function checkColumnReaders(raw: Uint8Array, blk: Block, r: () => number, what: string): void {
  const { flat, paths } = blk;
  const firstTs = flat.ts[0] as number;
  const occ = occurrences(flat);
  const nb = flat.batchCount;
  for (const floats of [false, true]) {
    const reader = new ColumnBlockReader({ floats });
    const ends: [number, number][] = [[Infinity, 0], [0, 0], [1, 0], [nb, nb], [nb - 1, 1]];
    for (let i = 0; i < 3; i++) {
      const e = Math.floor(r() * (nb + 1));
      ends.push([e, Math.floor(r() * (e + 1))]);
    }
    for (const [end, from] of ends) {
      const b = reader.decode(raw, firstTs, null, paths, end, from);
      expect(b.columns).toBe(occ.size);
      for (let c = 0; c < b.columns; c++) {
        const list = occ.get(b.ids[c] as number) ?? [];
        const at = b.start[c] as number;
        expect((b.start[c + 1] as number) - at).toBe(list.length);
        list.forEach((o, j) => {
          // Decoded: occurrences in batches [fromBatch - 1, endBatch) of a uniform block, all of another.
          if (b.uniform && (o.batch >= b.endBatch || o.batch < b.fromBatch - 1)) return;
          const got = b.place[c] === ColumnPlace.NUMBERS ? b.nums[at + j] : b.values[at + j];
          same(o.value, got, `${what} ColumnBlockReader(floats ${floats}) ${end}/${from} id ${b.ids[c]} occurrence ${j}`);
        });
      }
    }
  }
  for (const into of [true, false]) {
    const builder = new ColumnBatchesBuilder({ into });
    for (const from of [0, Math.floor(r() * nb)]) {
      const cb = builder.fill(raw, firstTs, nb, paths, from, { keep: null, dropEmpty: false });
      if (cb === undefined) continue; // a NaN among other values: the cursor reads the block through the codec
      let u = flat.counts.slice(0, from).reduce((a, c) => a + c, 0);
      let other = 0;
      for (let k = 0; k < cb.batches; k++) {
        expect(cb.ts[k]).toBe(flat.ts[from + k]);
        for (let x = cb.starts[k] as number; x < (cb.starts[k + 1] as number); x++, u++) {
          expect(cb.ids[x]).toBe(flat.ids[u]);
          const v = flat.values[u] as Value;
          if (typeof v === 'number') same(v, cb.nums[x], `${what} ColumnBatchesBuilder(into ${into}) from ${from} update ${u}`);
          else {
            expect(cb.otherAt[other]).toBe(x);
            same(v, cb.others[other++], `${what} ColumnBatchesBuilder(into ${into}) from ${from} update ${u}`);
          }
        }
      }
    }
  }
}

function checkFrame(raw: Uint8Array, blk: Block, what: string): void {
  const { flat } = blk;
  const meta = { type: BlockType.DELTA, firstTs: flat.ts[0] as number, lastTs: flat.ts[flat.batchCount - 1] as number, batches: flat.batchCount, updates: flat.updateCount };
  const frame = encodeFrame(meta, raw);
  const opened = openFrame(frame, what);
  expect(Buffer.from(opened.raw).equals(Buffer.from(raw))).toBe(true);
  const head = seekHead(frame, { offset: 0, frameBytes: frame.length, ...meta });
  expect(head).toBeDefined();
  flat.ts.forEach((t, b) => expect(batchesAtOrBefore(head as Uint8Array, meta.firstTs, meta.batches, t)).toBe(b + 1));
  expect(frame.length).toBeGreaterThanOrEqual(FRAME_HEADER_BYTES);
}

function checkSidecar(blk: Block, what: string): void {
  const occ = occurrences(blk.flat);
  for (const [id, list] of occ) {
    const vals = generic<Value>();
    for (const o of list) vals.push(o.value);
    const order = Uint32Array.from(vals.keys());
    const w = new ByteWriter(64);
    encodeColumn(w, vals, order, 0, vals.length);
    const body = w.finish();
    const boxed = new Array<Value>(vals.length).fill(null);
    decodeColumn(new ByteReader(body), boxed, 0, vals.length);
    vals.forEach((v, j) => same(v, boxed[j], `${what} decodeColumn id ${id} value ${j}`));
    const skipper = new ByteReader(body);
    skipColumn(skipper, vals.length);
    expect(skipper.pos).toBe(body.length);
    if (vals.every((v) => typeof v === 'number')) {
      const nums = new Float64Array(vals.length);
      decodeColumnF64(new ByteReader(body), nums, 0, vals.length);
      vals.forEach((v, j) => same(v, nums[j], `${what} decodeColumnF64 id ${id} value ${j}`));
    }
    // A chunk: the path's times (strictly increasing in the block unless a path is twice in a batch) and values.
    const ts = Float64Array.from(list.map((o) => blk.flat.ts[o.batch] as number));
    const cw = new ByteWriter(64);
    encodeChunk(cw, ts, vals, order, 0, vals.length, { id, slice: 0 });
    const chunk = decodeChunk(cw.finish(), vals.length, ts[0] as number, ts[ts.length - 1] as number, { id, slice: 0 });
    expect(Array.from(chunk.ts)).toEqual(Array.from(ts));
    vals.forEach((v, j) => same(v, chunk.num ? chunk.num[j] : chunk.values?.[j], `${what} decodeChunk id ${id} value ${j}`));
  }
}

/** A block of the given columns, polled: every path each batch. */
function polled(cols: Value[][]): Block {
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values = generic<Value>();
  const n = cols[0]?.length ?? 0;
  for (let b = 0; b < n; b++) {
    ts.push(1_000_000 + b);
    counts.push(cols.length);
    cols.forEach((c, p) => {
      ids.push(p);
      values.push(c[b] as Value);
    });
  }
  return { flat: { ts, counts, ids, values, batchCount: n, updateCount: values.length }, paths: cols.length };
}

/** nb batches each listing each of `paths` paths `k` times, values constant or on a line (PACKED of no bits). */
function repeated(nb: number, paths: number, k: number, slope: number): Block {
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values = generic<Value>();
  let u = 0;
  for (let b = 0; b < nb; b++) {
    ts.push(1_000 + 10 * b);
    counts.push(paths * k);
    for (let j = 0; j < k; j++)
      for (let p = 0; p < paths; p++) {
        ids.push(p);
        values.push(7.5 + slope * u++);
      }
  }
  return { flat: { ts, counts, ids, values, batchCount: nb, updateCount: values.length }, paths };
}

describe('the writer domain, every reader', () => {
  it('reads a path listed many times in each batch, however few bytes its values take', () => {
    // 17 times a batch over 100 batches of one constant path: more updates than batches x
    // columns, and than 8 a byte; every reader refused it ('impossible counts').
    const r = rng(SEED);
    for (const [nb, paths, k, slope] of [
      [100, 1, 17, 0],
      [100, 1, 20, 0.5],
      [2, 1, 200, 0],
      [50, 3, 64, 1],
      [300, 2, 16, 0],
      [1, 1, 1000, 0],
    ] as [number, number, number, number][]) {
      const blk = repeated(nb, paths, k, slope);
      const what = `${paths} path(s) ${k} times in each of ${nb} batches`;
      // The general encoder and the block builder's (numbers in a Float64Array): the same bytes.
      const bytes = encodeBatches(blk.flat, new ByteWriter(64)).slice();
      const typed = encodeBatches({ ...blk.flat, values: Float64Array.from(blk.flat.values as number[]) }, new ByteWriter(64)).slice();
      expect(Buffer.from(typed).equals(Buffer.from(bytes))).toBe(true);
      checkCodec(bytes, blk, what);
      checkColumnReaders(bytes, blk, r, what);
      checkFrame(bytes, blk, what);
    }
  });


  it('keeps NaN payloads in float columns through every reader, the column reader of boxed values included', () => {
    // XOR and FLOAT64 columns of stale markers and other NaNs beside plain numbers: the column
    // reader put them in an array of values that V8 stored as raw doubles (the stale marker came
    // back as 0x7ff8000000000002), with nothing noted for storage/cursor-state.ts or server/diff-pass.ts to retry.
    const stale = f64(0x7ff0000000000002n);
    const xor = generic<Value>();
    xor.push(1.1e-300, stale, Math.PI, stale, 2.5e10, Math.E, stale);
    const raw = generic<Value>();
    raw.push(f64(0x7ff8000000000001n), 0.1 + 0.2, stale);
    const r = rng(SEED);
    for (const cols of [[xor], [raw], [xor.slice(0, 3), raw]]) {
      const blk = polled(cols);
      const bytes = encodeBatches(blk.flat, new ByteWriter(64)).slice();
      checkCodec(bytes, blk, 'NaN columns');
      checkColumnReaders(bytes, blk, r, 'NaN columns');
    }
  });

  it('gives back every value of every kind, bit for bit, from every reader', () => {
    const r = rng(SEED);
    for (let round = 0; round < 160; round++) {
      const blk = block(r);
      const what = `round ${round}`;
      // The block builder's path (numbers in a Float64Array) and the general one (a Value array).
      const numeric = blk.flat.values.every((v) => typeof v === 'number');
      const raws = [encodeBatches(blk.flat, new ByteWriter(64)).slice()];
      if (numeric) raws.push(encodeBatches({ ...blk.flat, values: Float64Array.from(blk.flat.values as number[]) }, new ByteWriter(64)).slice());
      for (const raw of raws) {
        checkCodec(raw, blk, what);
        checkColumnReaders(raw, blk, r, what);
        checkFrame(raw, blk, what);
      }
      checkSidecar(blk, what);
    }
  });
});
