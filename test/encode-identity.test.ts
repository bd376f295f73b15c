/**
 * The payload encoder against its frozen copy at 7710056 (test/helpers/encode-oracle/), byte
 * for byte: the seventh session's encoder (one pass scaling a column and counting its
 * residuals, the exponent found from the last one's, two-value columns rescaled in place)
 * must write exactly what it wrote. Seeded blocks of every column kind and shape: decimals
 * of 0 to 9 places (exponents in runs, in turns, rising within a column), PACKED columns of
 * orders 0 to 2 with and without exceptions (gauges, counters with resets, levels near
 * zero, jumps past 32-bit residuals), values about 2^28, 2^50, 2^51 and 2^53 scaled, XOR and
 * FLOAT64 columns (float noise, arbitrary doubles), -0, every NaN shape, ±Inf, subnormals,
 * columns of 1 to 3 values and of 14 to 17 (the planner's edges), MSGPACK columns (strings,
 * booleans, nulls, bytes), the fabric and mixed workloads of bench/peers, and images (one
 * batch over every path). Each block is encoded in the block builder's forms (ids in an
 * Int32Array, numbers in a Float64Array) and as a Value[]; single columns as the sidecar
 * encodes them (encodeColumn).
 */
import { describe, expect, it } from 'vitest';
import * as now from '../storage/codec/payload.js';
import { encodeColumn } from '../storage/codec/columns.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import * as oracle from './helpers/encode-oracle/payload-encode.js';
import { encodeColumn as oracleEncodeColumn } from './helpers/encode-oracle/columns.js';
import { ByteWriter as OracleByteWriter } from './helpers/encode-oracle/bytes.js';
import { valueArray, type Value } from '../protocol/value.js';
import { fabricBatches } from '../server/sim/fabric.js';
import { scheduleSeed } from './helpers/seed.js';
import { randomValue, rng } from './helpers/workload.js';

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}

const NANS = [0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff0000000000002n, 0x7ff8000000000002n, 0x7ff0000000000001n, 0xfff0000000001234n, 0x7fffffffffffffffn].map(fromBits);
const ODD = [-0, 0, Infinity, -Infinity, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-310, Number.MAX_VALUE, 2 ** 53, -(2 ** 53), 2 ** 53 + 2];

/** A value of one of many hostile shapes at exponent k. */
function hostile(r: () => number, k: number): number {
  const p = 10 ** k;
  switch (Math.floor(r() * 12)) {
    case 0: return NANS[Math.floor(r() * NANS.length)] as number;
    case 1: return ODD[Math.floor(r() * ODD.length)] as number;
    case 2: {
      const edges = [2 ** 28, 2 ** 50, 2 ** 51, 2 ** 52];
      const edge = edges[Math.floor(r() * edges.length)] as number;
      return ((edge + Math.floor(r() * 41) - 20) * (r() < 0.5 ? -1 : 1)) / p;
    }
    case 3: return 0.1 * Math.floor(r() * 10) + 0.2 * Math.floor(r() * 10);
    case 4: return (Math.floor(r() * 1e6) * 10) / p; // exact at k - 1
    case 5: return (Math.floor(r() * 1e5) * 100) / p; // exact at k - 2
    case 6: return Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1);
    case 7: return (Math.floor(r() * 1e9) + 1) / 1e9;
    case 8: return r() * 1e6 - 5e5;
    case 9: return 486164504320 + (r() < 0.5 ? 0 : 0.5);
    case 10: return Math.round((r() - 0.5) * 2e5) / 10 ** Math.floor(r() * 12);
    default: return -(Math.floor(r() * 1e5) + 1) / p;
  }
}

const SHAPES = 14;

/** Column c's j-th value, by shape (state in acc). */
function shaped(r: () => number, shape: number, k: number, acc: number[], c: number, j: number): number {
  const p = 10 ** k;
  const a = acc[c] as number;
  switch (shape) {
    case 0: return 7.5; // constant
    case 1: { // counter with resets
      const next = r() < 0.03 ? Math.floor(r() * 50) : a + Math.floor(r() * 1000);
      acc[c] = next;
      return next / p;
    }
    case 2: return r() < 0.8 ? 0 : Math.floor(r() * 9) - 4; // near zero: order 0
    case 3: return ((r() < 0.5 ? -1 : 1) * (2 ** 28 - Math.floor(r() * 3))) / p; // the int32 bound
    case 4: return Math.floor((r() - 0.5) * 2 ** 40) / p; // wide
    case 5: return hostile(r, k);
    case 6: return (acc[c] = a + Math.floor((r() - 0.5) * 2 ** 31)) / p; // jumps past 32-bit residuals
    case 7: return (r() < 0.5 ? -1 : 1) * (2 ** 28 + Math.floor(r() * 2 ** 29)); // past 2^28
    case 8: return 42.5 + (r() - 0.5) * 1e-9 * (1 + (j % 3)); // float noise: XOR
    case 9: return r() < 0.9 ? Math.round((a + (j % 7)) * p) / p : Math.round(r() * 1e4) / 10 ** (k + 1 > 9 ? 9 : k + 1); // exponent rising mid-column
    case 10: return Math.round((r() - 0.5) * 2 ** 26) / p; // gauge near the int32 bound's residuals
    case 11: { // steady ramp with rare spikes: order 2 with exceptions
      acc[c] = a + 1000;
      return (r() < 0.05 ? a * 3 + 12345 : a) / p;
    }
    case 12: return j === 0 ? -0 : Math.round((r() - 0.5) * 100) / p; // -0 first
    default: return Math.round((r() - 0.5) * 1e6) / p; // a gauge at k
  }
}

interface Block {
  ts: number[];
  counts: number[];
  ids: number[];
  values: Value[];
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function flat(b: Block, ids: ArrayLike<number>, values: ArrayLike<Value>): now.FlatBatches {
  return { ts: b.ts, counts: b.counts, ids, values, batchCount: b.ts.length, updateCount: b.ids.length };
}

/** Payload bytes of both encoders in every form they take, and each column alone. */
function check(b: Block, label: string, columns = true): void {
  const generic = valueArray(b.values.length);
  b.values.forEach((v, i) => (generic[i] = v));
  const oGeneric = valueArray(b.values.length);
  b.values.forEach((v, i) => (oGeneric[i] = v));
  const want = hex(oracle.encodeBatches(flat(b, b.ids, oGeneric), new OracleByteWriter(64)));
  const numbers = b.values.every((v) => typeof v === 'number');
  if (numbers) {
    const got = hex(now.encodeBatches(flat(b, Int32Array.from(b.ids), Float64Array.from(b.values as number[])), new ByteWriter(16)));
    if (got !== want) expect.fail(`${label}: payload bytes (Float64Array) differ from the oracle's`);
  }
  const got = hex(now.encodeBatches(flat(b, Int32Array.from(b.ids), generic), new ByteWriter(16)));
  if (got !== want) expect.fail(`${label}: payload bytes (Value[]) differ from the oracle's`);
  if (!columns) return;
  // Each path's values as one column (the sidecar's encodeColumn).
  const byId = new Map<number, number[]>();
  b.ids.forEach((id, i) => {
    const list = byId.get(id) ?? [];
    list.push(i);
    byId.set(id, list);
  });
  for (const [id, idx] of byId) {
    const order = Uint32Array.from(idx);
    const wNow = new ByteWriter(8);
    const wOld = new OracleByteWriter(8);
    encodeColumn(wNow, generic, order, 0, order.length);
    oracleEncodeColumn(wOld, oGeneric, order, 0, order.length);
    if (hex(wNow.finish()) !== hex(wOld.finish())) expect.fail(`${label}: column of path ${id} differs from the oracle's`);
  }
}

/** `cols` paths in every batch, `len` batches: columns of `len` values, each of one shape. */
function shapedBlock(r: () => number, cols: number, len: number, runs: boolean): Block {
  const shapeOf = Array.from({ length: cols }, () => Math.floor(r() * SHAPES));
  let k = Math.floor(r() * 10);
  const kOf = Array.from({ length: cols }, () => {
    if (!runs || r() < 0.05) k = Math.floor(r() * 10);
    return k;
  });
  const acc = Array.from({ length: cols }, () => Math.floor((r() - 0.5) * 2 ** 29));
  const b: Block = { ts: [], counts: [], ids: [], values: [] };
  for (let j = 0; j < len; j++) {
    b.ts.push(1_700_000_000_000_000 + j * 1_000_000 + Math.floor(r() * 5000));
    const ids: number[] = [];
    for (let c = 0; c < cols; c++) if (len < 4 || r() < 0.97) ids.push(c);
    b.counts.push(ids.length);
    for (const c of ids) {
      b.ids.push(c);
      b.values.push(shaped(r, shapeOf[c] as number, kOf[c] as number, acc, c, j));
    }
  }
  return b;
}

/** Mixed-like: `size` consecutive paths a batch over `paths` paths, two-place decimals (some hostile). */
function mixedBlock(r: () => number, paths: number, size: number, updates: number, hostileShare: number): Block {
  const level = Array.from({ length: paths }, () => r() * 100);
  const b: Block = { ts: [], counts: [], ids: [], values: [] };
  let p = Math.floor(r() * paths);
  let ts = 1_763_000_000_000_000;
  const k = r() < 0.7 ? 2 : Math.floor(r() * 10);
  while (b.ids.length < updates) {
    b.ts.push((ts += 1000));
    b.counts.push(size);
    for (let i = 0; i < size; i++, p = (p + 1) % paths) {
      level[p] = (level[p] as number) + (r() - 0.5);
      b.ids.push(p);
      b.values.push(r() < hostileShare ? hostile(r, k) : Math.round((level[p] as number) * 10 ** k) / 10 ** k);
    }
  }
  return b;
}

describe('the payload encoder against its copy at 7710056', () => {
  it('writes the same bytes for columns of every shape and length (1 to 80 values)', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity shapes');
    const r = rng(seed);
    for (let i = 0; i < 300; i++) {
      const lengths = [1, 2, 3, 4, 14, 15, 16, 17, 18, 32, 33, 80];
      const len = r() < 0.6 ? (lengths[Math.floor(r() * lengths.length)] as number) : 1 + Math.floor(r() * 80);
      const cols = 1 + Math.floor(r() * 60);
      check(shapedBlock(r, cols, len, r() < 0.5), `block ${i}, ${cols} paths x ${len} (seed ${seed})`);
    }
  });

  it('writes the same bytes for mixed-like blocks of short columns, plain and hostile', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity mixed');
    const r = rng(seed + 1);
    for (let i = 0; i < 60; i++) {
      const paths = 1 + Math.floor(r() * 3000);
      const size = 1 + Math.floor(r() * 100);
      const updates = Math.floor(paths * (1 + r() * 1.5));
      const share = [0, 0, 0.01, 0.1, 0.5][Math.floor(r() * 5)] as number;
      check(mixedBlock(r, paths, size, updates, share), `block ${i}, ${paths} paths (seed ${seed}, hostile ${share})`, i % 10 === 0);
    }
  });

  it('writes the same bytes for the fabric workload in blocks of 16 384 updates and odd sizes', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity fabric');
    const r = rng(seed + 2);
    let b: Block = { ts: [], counts: [], ids: [], values: [] };
    let target = 16_384;
    let n = 0;
    for (const x of fabricBatches(seed, 64, 1200)) {
      b.ts.push(x.ts);
      b.counts.push(x.updates.length);
      x.updates.forEach((u, i) => {
        b.ids.push(i);
        b.values.push(u[1]);
      });
      if (b.ids.length >= target) {
        check(b, `fabric block ${n++} of ${b.ids.length} updates (seed ${seed})`, n % 8 === 0);
        b = { ts: [], counts: [], ids: [], values: [] };
        target = r() < 0.5 ? 16_384 : 512 * (1 + Math.floor(r() * 40));
      }
    }
  });

  it('writes the same bytes for images and blocks with values of every type', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity others');
    const r = rng(seed + 3);
    for (let i = 0; i < 80; i++) {
      const b = shapedBlock(r, 1 + Math.floor(r() * 40), 1 + Math.floor(r() * 30), r() < 0.5);
      // Some values of other types: the block takes the generic path.
      for (let j = 0; j < b.values.length; j++) if (r() < 0.03) b.values[j] = randomValue(r);
      check(b, `mixed-type block ${i} (seed ${seed})`);
      // An image: one batch with every path's last value.
      const last = new Map<number, Value>();
      b.ids.forEach((id, j) => last.set(id, b.values[j] as Value));
      const ids = [...last.keys()].sort((x, y) => x - y);
      check({ ts: [1_700_000_000_000_000], counts: [ids.length], ids, values: ids.map((id) => last.get(id) as Value) }, `image ${i} (seed ${seed})`);
    }
  });

  it('writes the same bytes for scaled values and differences at the varint lengths\' edges', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity varint edges');
    const r = rng(seed + 5);
    const edges: number[] = [];
    for (const e of [0, 6, 7, 13, 14, 18, 19, 20, 21, 27, 28]) for (const d of [-1, 0, 1]) edges.push(2 ** e + d, -(2 ** e) - d);
    const pick = (): number => edges[Math.floor(r() * edges.length)] as number;
    for (let i = 0; i < 200; i++) {
      const k = r() < 0.5 ? 2 : Math.floor(r() * 10);
      const p = 10 ** k;
      const cols = 1 + Math.floor(r() * 200);
      const b: Block = { ts: [1, 2], counts: [cols, 0], ids: [], values: [] };
      const first: number[] = [];
      for (let c = 0; c < cols; c++) {
        const s0 = pick();
        first.push(s0);
        b.ids.push(c);
        b.values.push(s0 / p);
      }
      for (let c = 0; c < cols; c++) {
        if (r() < 0.4) continue;
        b.ids.push(c);
        b.values.push(((first[c] as number) + (r() < 0.5 ? pick() : Math.floor(r() * 3) - 1)) / p);
      }
      b.counts[1] = b.ids.length - cols;
      check(b, `block ${i}, k ${k} (seed ${seed})`, false);
    }
  });

  it('writes the same bytes for hostile columns next to plain ones (the guessed exponent right and wrong)', () => {
    const seed = scheduleSeed('ENCODE_IDENTITY_SEED', 'encode identity hostile');
    const r = rng(seed + 4);
    for (let i = 0; i < 300; i++) {
      const cols = 1 + Math.floor(r() * 30);
      const len = 1 + Math.floor(r() * 24);
      const b: Block = { ts: [], counts: [], ids: [], values: [] };
      const kOf = Array.from({ length: cols }, () => Math.floor(r() * 10));
      for (let j = 0; j < len; j++) {
        b.ts.push(1 + j);
        b.counts.push(cols);
        for (let c = 0; c < cols; c++) {
          b.ids.push(c);
          const k = kOf[c] as number;
          b.values.push(r() < 0.3 ? hostile(r, k) : Math.round((r() - 0.5) * 1e7) / 10 ** k);
        }
      }
      check(b, `block ${i} (seed ${seed})`);
    }
  });
});
