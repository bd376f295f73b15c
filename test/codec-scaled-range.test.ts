/**
 * Every number the writer keeps as a decimal (a scaled integer within 2^51, storage/codec/
 * decimal-exponent.ts) comes back bit for bit from every reader: decodeBatches,
 * decodeBatchesSelected, decodeBatchesInto, the column reader (ColumnBlockReader) in full and
 * up to every batch, and the sidecar's column codec (encodeColumn / decodeColumn /
 * decodeColumnF64). The whole range, its edges most of all: a reader refusing what the writer
 * wrote loses the block (a column whose first value was near 2^51 and whose second was small
 * was refused as "packed value out of range" by every reader: seed 278528 of
 * test/series-sidecar.test.ts).
 *
 * Seeded (printed; TPD_RANGE_SEED replays).
 */
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { decodeColumn, decodeColumnF64, encodeColumn } from '../storage/codec/columns.js';
import { decodeBatches, decodeBatchesInto, decodeBatchesSelected, encodeBatches, newNumberBatches, type FlatBatches } from '../storage/codec/payload.js';
import { ColumnBlockReader } from '../storage/column-block.js';
import type { Value } from '../protocol/value.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_RANGE_SEED', 'codec-scaled-range');
const LIMIT = 2 ** 51;
const bits = (x: number): bigint => new BigUint64Array(Float64Array.of(x).buffer)[0] as bigint;

/** A scaled integer: at or near ±2^51, near 0, or anywhere within. */
function scaled(r: () => number): number {
  const pick = r();
  const sign = r() < 0.5 ? -1 : 1;
  if (pick < 0.35) return sign * (LIMIT - Math.floor(r() * 4));
  if (pick < 0.5) return sign * (LIMIT / 2 + Math.floor((r() - 0.5) * 8));
  if (pick < 0.75) return Math.floor((r() - 0.5) * 2000);
  return Math.floor((r() * 2 - 1) * LIMIT);
}

/** A column of values of one exponent k, in one of several shapes reaching the range's edges. */
function column(r: () => number, n: number, k: number): number[] {
  const shape = Math.floor(r() * 6);
  const out: number[] = [];
  let s = scaled(r);
  for (let i = 0; i < n; i++) {
    if (shape === 0) s = scaled(r); // anything, each value
    else if (shape === 1) s = i === 0 ? s : Math.floor((r() - 0.5) * 100); // an edge first, then small ones
    else if (shape === 2) s = i % 2 === 0 ? LIMIT - Math.floor(r() * 3) : -LIMIT + Math.floor(r() * 3); // swinging edge to edge
    else if (shape === 3) s = Math.max(-LIMIT, Math.min(LIMIT, s + Math.floor((r() - 0.5) * 1e6))); // a walk along an edge
    else if (shape === 4) s = r() < 0.1 ? scaled(r) : Math.floor(r() * 50); // small, with edge spikes (exceptions)
    else s = Math.min(LIMIT, Math.max(-LIMIT, s)) - (s > 0 ? i : -i); // a steady slope from an edge (order 2)
    const v = s / 10 ** k;
    // Only values that are what they say at k (the writer picks the smallest exact exponent, whatever it is).
    out.push(Math.round(v * 10 ** k) === s ? v : s);
  }
  return out;
}

/** P paths polled in each of n batches (a uniform block): column p is values[p]. */
function poll(cols: number[][]): FlatBatches & { ts: number[]; values: Value[] } {
  const n = cols[0]?.length ?? 0;
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values: Value[] = [];
  for (let b = 0; b < n; b++) {
    ts.push(1_700_000_000_000_000 + b * 15_000_000);
    counts.push(cols.length);
    cols.forEach((c, p) => {
      ids.push(p);
      values.push(c[b] as number);
    });
  }
  return { ts, counts, ids, values, batchCount: n, updateCount: values.length };
}

function same(want: number, got: unknown, what: string): void {
  if (typeof got !== 'number' || bits(got) !== bits(want)) throw new Error(`${what}: ${String(got)}, want ${want} (seed ${SEED})`);
}

describe('numbers across the whole scaled range', () => {
  it('come back bit for bit from every reader, in whole blocks and read up to every batch', () => {
    const r = rng(SEED);
    const into = newNumberBatches();
    const reader = new ColumnBlockReader();
    for (let t = 0; t < 400; t++) {
      const n = [1, 2, 3, 4, 5, 15, 16, 17, 40, 130][Math.floor(r() * 10)] as number;
      const paths = 1 + Math.floor(r() * 4);
      const cols = Array.from({ length: paths }, () => column(r, n, Math.floor(r() * 10)));
      const flat = poll(cols);
      const raw = encodeBatches(flat);
      const firstTs = flat.ts[0] as number;
      const what = (reader: string, p: number, b: number): string => `round ${t} ${reader} path ${p} batch ${b} of [${cols[p]?.join(', ')}]`;
      const d = decodeBatches(raw, firstTs);
      const sel = decodeBatchesSelected(raw, firstTs, () => true);
      flat.values.forEach((v, u) => {
        same(v as number, d.values[u], what('decodeBatches', u % paths, Math.floor(u / paths)));
        same(v as number, sel.values[u], what('decodeBatchesSelected', u % paths, Math.floor(u / paths)));
      });
      // decodeBatchesInto takes the numbers (it may decline a block; a refusal throws).
      if (decodeBatchesInto(raw, firstTs, into)) {
        expect(into.updateCount).toBe(flat.updateCount);
        flat.values.forEach((v, u) => same(v as number, into.nums[u], what('decodeBatchesInto', u % paths, Math.floor(u / paths))));
      }
      for (const end of [Infinity, 0, 1, 2, n - 1, Math.floor(r() * n)]) {
        const blk = reader.decode(raw, firstTs, null, paths, end, 0);
        expect(blk.columns).toBe(paths);
        for (let s = 0; s < blk.columns; s++) {
          const p = blk.ids[s] as number;
          const from = blk.start[s] as number;
          const upto = Math.min(end, n, (blk.start[s + 1] as number) - from);
          for (let b = 0; b < upto; b++) same(cols[p]?.[b] as number, blk.nums[from + b], what(`ColumnBlockReader to ${end}`, p, b));
        }
      }
      // The sidecar's chunks: one column of a path's values.
      for (const [p, c] of cols.entries()) {
        const w = new ByteWriter(64);
        encodeColumn(w, c, Uint32Array.from(c.keys()), 0, c.length);
        const body = w.finish().slice();
        const vals: Value[] = new Array<Value>(c.length).fill(null);
        decodeColumn(new ByteReader(body), vals, 0, c.length);
        const nums = new Float64Array(c.length);
        decodeColumnF64(new ByteReader(body), nums, 0, c.length);
        c.forEach((v, b) => {
          same(v, vals[b], what('decodeColumn', p, b));
          same(v, nums[b], what('decodeColumnF64', p, b));
        });
      }
    }
  });
});
