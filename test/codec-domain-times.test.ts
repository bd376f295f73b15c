/**
 * Batch times over the whole time contract (protocol/time.ts: 0 to TS_MAX_US = 2^53 - 1
 * microseconds; storage/writer.ts accepts any safe integer from 0) come back exactly from
 * every reader of a block's times: decodeBatches, decodeBatchesSelected, decodeBatchesInto
 * (by chains and grouped), the column reader, the cursor's column batches, readBatchTimes,
 * batchesAtOrBefore and the seek head of the block's frame; and a path definition's first
 * time, whatever its distance from the block's.
 *
 * The second differences of such times reach -(2^53 - 3) (0, 2^53 - 2, 2^53 - 1): their
 * zigzag was rounded to an even number past 2^53, so the last time came back as
 * 27021597764222970, silently (codec/bytes.ts putSvar and ByteReader.svar).
 *
 * Seeded (printed; TPD_TIMES_SEED replays).
 */
import { describe, expect, it } from 'vitest';
import { TS_MAX_US } from '../protocol/value.js';
import { ByteReader, ByteWriter, putSvar } from '../storage/codec/bytes.js';
import { batchesAtOrBefore, readBatchTimes } from '../storage/codec/batch-times.js';
import { BlockType, encodeFrame } from '../storage/codec/frame.js';
import { decodeBatches, decodeBatchesInto, decodeBatchesSelected, decodePathDefs, encodeBatches, encodePathDefs, newNumberBatches } from '../storage/codec/payload.js';
import { ColumnBatchesBuilder } from '../storage/column-batches.js';
import { ColumnBlockReader } from '../storage/column-block.js';
import { seekHead } from '../storage/seek-head.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_TIMES_SEED', 'codec-domain-times');
const M = TS_MAX_US;

/** Steps at the edges of the varints' lengths and of the zigzag's exactness. */
const STEPS = [1, 2, 63, 64, 65, 8191, 8192, 2 ** 20, 2 ** 27, 2 ** 31, 2 ** 32, 2 ** 45, 2 ** 51, 2 ** 52 - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 3];

/** Strictly increasing times within [0, 2^53 - 1], jumping between the contract's ends. */
function times(r: () => number, n: number): number[] {
  const out: number[] = [];
  let t = r() < 0.3 ? 0 : r() < 0.5 ? M - n : Math.floor(r() * M);
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      const pick = r();
      const step = pick < 0.4 ? (STEPS[Math.floor(r() * STEPS.length)] as number) : pick < 0.6 ? M - (n - i) - t : 1 + Math.floor(r() * 1000);
      t = Math.min(t + Math.max(1, step), M - (n - 1 - i));
    }
    out.push(t);
  }
  return out;
}

/** The block of `ts`, one or more paths a batch (uniform, or short columns for the chains). */
function block(ts: number[], paths: number, uniform: boolean): { ts: number[]; counts: number[]; ids: number[]; values: number[]; batchCount: number; updateCount: number } {
  const counts: number[] = [];
  const ids: number[] = [];
  const values: number[] = [];
  ts.forEach((_, b) => {
    const list = uniform ? Array.from({ length: paths }, (_, p) => p) : [b % paths, paths + b];
    for (const id of list) {
      ids.push(id);
      values.push(b * 0.5);
    }
    counts.push(list.length);
  });
  return { ts, counts, ids, values, batchCount: ts.length, updateCount: values.length };
}

function expectTimes(got: ArrayLike<number>, want: number[], what: string): void {
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) throw new Error(`${what}: batch ${i} at ${got[i]}, want ${want[i]} (times ${want.join(', ')}; seed ${SEED})`);
}

function checkBlock(ts: number[], paths: number, uniform: boolean, what: string): void {
  const flat = block(ts, paths, uniform);
  const raw = encodeBatches(flat, new ByteWriter(64)).slice();
  const firstTs = ts[0] as number;
  const nb = ts.length;
  expectTimes(decodeBatches(raw, firstTs).ts, ts, `${what} decodeBatches`);
  expectTimes(decodeBatchesSelected(raw, firstTs, (id) => id === 0).ts, ts, `${what} decodeBatchesSelected`);
  const into = newNumberBatches();
  expect(decodeBatchesInto(raw, firstTs, into)).toBe(true);
  expectTimes(into.ts, ts, `${what} decodeBatchesInto`);
  const pathCount = 2 * paths + nb;
  expectTimes(new ColumnBlockReader().decode(raw, firstTs, null, pathCount).ts, ts, `${what} ColumnBlockReader`);
  for (const useInto of [true, false]) {
    const cb = new ColumnBatchesBuilder({ into: useInto }).fill(raw, firstTs, nb, pathCount, 0, { keep: null, dropEmpty: false });
    expectTimes(cb?.ts ?? [], ts, `${what} ColumnBatchesBuilder(into ${useInto})`);
  }
  expectTimes(readBatchTimes(raw, firstTs), ts, `${what} readBatchTimes`);
  const meta = { type: BlockType.DELTA, firstTs, lastTs: ts[nb - 1] as number, batches: nb, updates: flat.updateCount };
  const frame = encodeFrame(meta, raw);
  const head = seekHead(frame, { offset: 0, frameBytes: frame.length, ...meta });
  expect(head).toBeDefined();
  ts.forEach((t, b) => {
    for (const bytes of [raw, head as Uint8Array]) {
      expect(batchesAtOrBefore(bytes, firstTs, nb, t)).toBe(b + 1);
      expect(batchesAtOrBefore(bytes, firstTs, nb, t - 1)).toBe(b);
    }
  });
}

describe('batch times over the whole time contract', () => {
  it('come back exactly from every reader when a block jumps between the ends of the contract', () => {
    // The case found: the second difference -(2^53 - 3).
    checkBlock([0, M - 1, M], 1, true, 'ends');
    checkBlock([1, 2, M - 1, M], 3, false, 'ends, short columns');
    checkBlock([0, 2 ** 52 - 1, 2 ** 52 + 1, M], 2, true, 'halves');
    const r = rng(SEED);
    for (let round = 0; round < 300; round++) {
      const n = [2, 3, 4, 5, 9, 17, 40][Math.floor(r() * 7)] as number;
      checkBlock(times(r, n), 1 + Math.floor(r() * 3), r() < 0.5, `round ${round}`);
    }
  });

  it('writes and reads every signed varint the codec takes, to +-2^53', () => {
    const r = rng(SEED + 1);
    const edges = [0, 1, -1, 2 ** 52 - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 1, 2 ** 53];
    const vs: number[] = [];
    for (const e of edges) vs.push(e, -e);
    for (let i = 0; i < 2000; i++) vs.push((r() < 0.5 ? -1 : 1) * Math.floor(r() * 2 ** 53));
    const w = new ByteWriter(16);
    for (const v of vs) w.svar(v);
    const buf = new Uint8Array(vs.length * 8);
    let p = 0;
    for (const v of vs) p = putSvar(buf, p, v);
    expect(Buffer.from(buf.subarray(0, p)).equals(Buffer.from(w.finish()))).toBe(true);
    const rd = new ByteReader(buf, 0, p);
    for (const v of vs) expect(rd.svar()).toBe(v === 0 ? 0 : v);
    expect(rd.pos).toBe(p);
  });

  it("keeps a path definition's first time at any distance from the block's", () => {
    for (const [first, base] of [
      [0, M],
      [M, 0],
      [1, M - 1],
      [M - 1, 2],
    ] as [number, number][]) {
      const defs = decodePathDefs(encodePathDefs([{ id: 7, path: '/a', firstTs: first }], base), base);
      expect(defs).toEqual([{ id: 7, path: '/a', firstTs: first }]);
    }
  });
});
