/**
 * The typed-array codec (storage/codec/) against the codec as it was before it
 * (test/helpers/codec-oracle/, fa3a187 verbatim), on seeded random and hostile blocks:
 * the same payload bytes for every input form the callers use (values as a generic Value[]
 * or as the block builder's Float64Array, ids as number[], Int32Array or Uint32Array), the
 * same column bytes (encodeColumn, which the series sidecar uses), the same decoded values
 * bit for bit, and the same outcome on damaged payloads (the same values, or a refusal with
 * TPD_CORRUPT_BLOCK where the oracle refuses).
 */
import { describe, expect, it } from 'vitest';
import * as now from '../storage/codec/payload.js';
import * as oracle from './helpers/codec-oracle/payload.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { ByteWriter as OracleByteWriter } from './helpers/codec-oracle/bytes.js';
import { encodeColumn } from '../storage/codec/columns.js';
import { encodeColumn as oracleEncodeColumn } from './helpers/codec-oracle/columns.js';
import { isTapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { fabricBatches, flattenBatches, randomBatches, randomValue, rng } from './helpers/workload.js';

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}
function bitsOf(v: number): bigint {
  f64[0] = v;
  return u64[0] as bigint;
}

/** Every NaN shape (quiet and signalling, both signs, low/high/random payloads, the stale marker), ±Inf, -0, subnormals, extremes. */
function hostileNumbers(r: () => number): number[] {
  const out: number[] = [];
  for (const sign of [0n, 1n << 63n]) {
    for (const quiet of [0n, 1n << 51n]) {
      for (const payload of [1n, 2n, 0x1234n, (1n << 50n) | 1n, (1n << 51n) - 1n, (BigInt(Math.floor(r() * 2 ** 30)) << 20n) | 1n]) {
        out.push(fromBits(sign | (0x7ffn << 52n) | quiet | payload));
      }
    }
  }
  out.push(fromBits(0x7ff0000000000002n), fromBits(0x7ff8000000000000n), fromBits(0xfff8000000000000n), fromBits(0x7fffffffffffffffn));
  out.push(-0, 0, Infinity, -Infinity, 5e-324, -5e-324, 2.2250738585072014e-308, fromBits(0x000fffffffffffffn), Number.MAX_VALUE, -Number.MAX_VALUE);
  out.push(2 ** 51, -(2 ** 51), 2 ** 51 + 1, 2 ** 52, 2 ** 53, -(2 ** 53), 486164504320, 414434.329373762, 0.1, 0.3, 1e-9, 1.5e-9, 123456.123456789, 1e21, 1e-300);
  return out;
}

/** A value for a numbers-only column of the given shape. */
function numberOf(r: () => number, shape: number, hostile: number[], state: { acc: number }): number {
  switch (shape) {
    case 0: return hostile[Math.floor(r() * hostile.length)] as number;
    case 1: return Math.round(r() * 1e6) / 10 ** Math.floor(r() * 11); // 0 to 10 decimals
    case 2: return (state.acc += Math.floor(r() * 1000)); // counter
    case 3: return 42;
    case 4: return fromBits(0x7ff0000000000002n); // all stale
    case 5: return Math.round((state.acc += r() - 0.5) * 100) / 100; // decimal random walk
    case 6: return r() * 1e9 - 5e8; // noisy doubles (XOR or FLOAT64)
    case 7: return r() < 0.5 ? Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1) : r(); // wide integers and fractions
    case 9: return r() < 0.8 ? 0 : Math.floor(r() * 9) - 4; // sparse small levels (PACKED order 0)
    case 10: return r() < 0.3 ? (r() < 0.5 ? -1 : 1) * (2 ** 28 - Math.floor(r() * 3)) : (r() < 0.5 ? -1 : 1) * Math.floor(r() * 2 ** 31); // about the int32 planning bound (2^28) and past it
    default: return r() < 0.9 ? Math.round(r() * 1e4) / 100 : (hostile[Math.floor(r() * hostile.length)] as number);
  }
}

interface Block {
  ts: number[];
  counts: number[];
  ids: number[];
  values: Value[];
}

/**
 * A block of `batches` batches: ragged (random paths, random counts, some paths once) or
 * uniform (every batch the same path list), numbers only (per-path shapes) or mixed values.
 */
function randomBlock(r: () => number, hostile: number[], opts: { uniform: boolean; numbersOnly: boolean }): Block {
  const paths = 1 + Math.floor(r() * (r() < 0.3 ? 3000 : 60));
  // Path ids are dense in an archive; the encoder sizes a scratch table by the largest.
  const pathIds = Array.from({ length: paths }, () => Math.floor(r() * (r() < 0.2 ? 2 ** 22 : 20_000)));
  const shapes = pathIds.map(() => Math.floor(r() * 11));
  const states = pathIds.map(() => ({ acc: Math.floor(r() * 1e6) }));
  const batches = 1 + Math.floor(r() * 60);
  const b: Block = { ts: [], counts: [], ids: [], values: [] };
  let ts = 1_700_000_000_000_000 + Math.floor(r() * 1e12);
  const uniformList = Array.from({ length: 1 + Math.floor(r() * Math.min(paths, 80)) }, (_, i) => i % paths);
  for (let i = 0; i < batches; i++) {
    ts += r() < 0.2 ? 0 : r() < 0.5 ? 1_000_000 : Math.floor(r() * 1e9);
    const list = opts.uniform ? uniformList : Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * r() * paths));
    b.ts.push(ts);
    b.counts.push(list.length);
    for (const k of list) {
      b.ids.push(pathIds[k] as number);
      b.values.push(opts.numbersOnly || r() < 0.7 ? numberOf(r, shapes[k] as number, hostile, states[k] as { acc: number }) : randomValue(r));
    }
  }
  return b;
}

/** A generic Value[] (numbers boxed, signalling NaNs kept: see protocol/value.ts valueArray). */
function generic(values: readonly Value[]): Value[] {
  const out = valueArray(values.length);
  values.forEach((v, i) => (out[i] = v));
  return out;
}

function flat(b: Block, ids: ArrayLike<number>, values: ArrayLike<Value>): now.FlatBatches {
  return { ts: b.ts, counts: b.counts, ids, values, batchCount: b.ts.length, updateCount: b.ids.length };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * A decode's outcome, values as bit patterns (numbers) or as they are, for comparison. With
 * `anyNaN`, every NaN is one: the oracle's plain arrays did not keep a quiet NaN's payload
 * in every V8 tier (protocol/value.ts valueArray), so its NaNs are compared as NaNs only.
 */
function outcome(decode: () => now.DecodedBatches, anyNaN = false): unknown {
  let d: now.DecodedBatches;
  try {
    d = decode();
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    expect(err.code).toBe('TPD_CORRUPT_BLOCK');
    return 'refused';
  }
  return {
    ts: Array.from(d.ts),
    counts: Array.from(d.counts),
    ids: Array.from(d.ids),
    values: d.values.map((v) => valueKey(v, anyNaN)),
  };
}

function valueKey(v: Value | undefined, anyNaN: boolean): unknown {
  if (typeof v === 'number') return anyNaN && v !== v ? 'NaN' : `n${bitsOf(v).toString(16)}`;
  return v instanceof Uint8Array ? `b${hex(v)}` : v;
}

function checkBlock(b: Block, label: string): void {
  const want = oracle.encodeBatches(flat(b, b.ids, generic(b.values)), new OracleByteWriter(64)).slice();
  const forms: Array<[string, ArrayLike<number>, ArrayLike<Value>]> = [
    ['number[] ids, generic values', b.ids, generic(b.values)],
    ['Int32Array ids', Int32Array.from(b.ids, (x) => x | 0), generic(b.values)],
    ['Uint32Array ids', Uint32Array.from(b.ids), generic(b.values)],
  ];
  if (b.values.every((v) => typeof v === 'number')) {
    // The block builder's form: numbers unboxed in a Float64Array (every bit kept).
    forms.push(['Float64Array values', Int32Array.from(b.ids, (x) => x | 0), Float64Array.from(b.values as number[])]);
  }
  for (const [form, ids, values] of forms) {
    // Int32Array ids wrap past 2^31: the oracle gets the same ids.
    const wantForm = ids instanceof Int32Array ? oracle.encodeBatches(flat(b, ids, generic(b.values)), new OracleByteWriter(64)).slice() : want;
    const got = now.encodeBatches(flat(b, ids, values), new ByteWriter(64)).slice();
    if (hex(got) !== hex(wantForm)) expect.fail(`${label}, ${form}: payload bytes differ from the oracle's`);
  }
  const firstTs = b.ts[0] as number;
  const got = now.decodeBatches(want, firstTs);
  // Every bit of every value, NaN payloads included, as written.
  expect(Array.from(got.ids), label).toEqual(b.ids);
  expect(got.values.map((v) => valueKey(v, false)), label).toEqual(b.values.map((v) => valueKey(v, false)));
  expect(outcome(() => now.decodeBatches(want, firstTs), true), label).toEqual(outcome(() => oracle.decodeBatches(want, firstTs), true));
  const keep = (g: number): boolean => g % 3 === 0;
  const some = now.decodeBatchesSelected(want, firstTs, keep);
  expect(some.values.map((v) => valueKey(v, false)), label).toEqual(b.values.filter((_, i) => keep(b.ids[i] as number)).map((v) => valueKey(v, false)));
  expect(outcome(() => now.decodeBatchesSelected(want, firstTs, keep), true), label).toEqual(outcome(() => oracle.decodeBatchesSelected(want, firstTs, keep), true));
}

describe('codec against the oracle (fa3a187)', () => {
  it('writes the same payload bytes and decodes the same bits on seeded random and hostile blocks', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity');
    const r = rng(seed);
    const hostile = hostileNumbers(r);
    for (let i = 0; i < 300; i++) {
      const uniform = r() < 0.4;
      const numbersOnly = r() < 0.7;
      checkBlock(randomBlock(r, hostile, { uniform, numbersOnly }), `block ${i} (seed ${seed}, uniform ${uniform}, numbers only ${numbersOnly})`);
    }
  });

  it('matches on the repository workloads: random batches and the fabric', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { flat: f } = flattenBatches(randomBatches(seed, 300));
      checkBlock({ ts: f.ts, counts: f.counts, ids: f.ids, values: f.values }, `randomBatches ${seed}`);
    }
    const { flat: fab } = flattenBatches([...fabricBatches(1, 16, 200)]);
    checkBlock({ ts: fab.ts, counts: fab.counts, ids: fab.ids, values: fab.values }, 'fabric');
  });

  it('writes the same column bytes (encodeColumn, the series sidecar) for every shape of column', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity columns');
    const r = rng(seed + 1);
    const hostile = hostileNumbers(r);
    for (let i = 0; i < 400; i++) {
      const shape = Math.floor(r() * 11);
      const state = { acc: Math.floor(r() * 1e6) };
      const n = 1 + Math.floor(r() * (r() < 0.5 ? 4 : 400));
      const values = generic(Array.from({ length: n }, () => (r() < 0.05 ? randomValue(r) : numberOf(r, shape, hostile, state))));
      const order = Uint32Array.from({ length: n }, (_, k) => n - 1 - k); // reversed: order is honoured
      const want = new OracleByteWriter(16);
      want.u8(0xee);
      oracleEncodeColumn(want, values, order, 0, n);
      for (const vals of values.every((v) => typeof v === 'number') ? [values, Float64Array.from(values as number[])] : [values]) {
        const got = new ByteWriter(16);
        got.u8(0xee);
        encodeColumn(got, vals, order, 0, n);
        if (hex(got.finish()) !== hex(want.finish())) expect.fail(`column ${i} (shape ${shape}, seed ${seed}): bytes differ from the oracle's`);
      }
    }
  });

  it('refuses or decodes damaged payloads exactly as the oracle does', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity damage');
    const r = rng(seed + 2);
    const hostile = hostileNumbers(r);
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const b = randomBlock(r, hostile, { uniform: r() < 0.4, numbersOnly: r() < 0.8 });
      const good = oracle.encodeBatches(flat(b, b.ids, generic(b.values)), new OracleByteWriter(64)).slice();
      for (let k = 0; k < 8; k++) {
        const bad = good.slice(0, r() < 0.2 ? Math.floor(r() * good.length) : good.length);
        const flips = 1 + Math.floor(r() * 3);
        for (let f = 0; f < flips && bad.length > 0; f++) {
          const at = Math.floor(r() * bad.length);
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
        }
        const want = outcome(() => oracle.decodeBatches(bad, 1_700_000_000_000_000), true);
        if (want === 'refused') refused++;
        expect(outcome(() => now.decodeBatches(bad, 1_700_000_000_000_000), true), `block ${i} damage ${k} (seed ${seed})`).toEqual(want);
      }
    }
    // The damage reaches the column bodies, not only the head (the comparison would be weak otherwise).
    expect(refused).toBeGreaterThan(100);
  });

  it("keeps quiet NaNs' payloads in every V8 tier (the oracle lost some before its code was optimised)", () => {
    // fa3a187 decoded these into arrays of doubles, where V8's runtime replaces any NaN by
    // 0x7ff8000000000000: the same loop on the oracle loses 4 of these 120 000 values.
    const patterns = [0x7ff8000000000002n, 0xfff8000000001234n, 0x7fffffffffffffffn];
    const values = valueArray(40);
    for (let i = 0; i < 40; i++) values[i] = i % 4 === 0 ? fromBits(patterns[i % 3] as bigint) : i * 1.1;
    const raw = now.encodeBatches({ ts: [1], counts: [40], ids: Array.from({ length: 40 }, (_, i) => i % 2), values, batchCount: 1, updateCount: 40 }).slice();
    let lost = 0;
    for (let k = 0; k < 3000; k++) {
      const d = k % 2 === 1 ? now.decodeBatches(raw, 1) : now.decodeBatchesSelected(raw, 1, () => true);
      for (let i = 0; i < 40; i++) if (bitsOf(d.values[i] as number) !== bitsOf(values[i] as number)) lost++;
    }
    expect(lost).toBe(0);
  });

  it('refuses PACKED columns whose values leave the scaled range, and their other hostile bodies, as the oracle does', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity packed');
    const r = rng(seed + 3);
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const n = 1 + Math.floor(r() * 40);
      const order = Math.floor(r() * 3);
      const width = r() < 0.8 ? Math.floor(r() * 25) : Math.floor(r() * 40); // past 24: the general reader; past 32: refused
      const big = (): number => (r() < 0.5 ? -1 : 1) * Math.floor(r() < 0.5 ? 2 ** 51 - r() * 1000 : r() * 2 ** 52);
      const w = new ByteWriter(64);
      // Layout 2, n batches of one update of path 0: the first lists it, the rest repeat it.
      for (const x of [0, 2]) w.u8(x);
      w.uvar(n);
      w.uvar(n);
      w.uvar(1);
      for (let b = 0; b < n; b++) w.svar(0);
      w.svar(0);
      w.uvar(2);
      w.svar(1);
      for (let b = 1; b < n; b++) w.uvar(3);
      w.u8(0x40 + 16 * order + Math.floor(r() * 10));
      if (order >= 1) w.svar(r() < 0.5 ? big() : Math.floor(r() * 1000));
      if (order === 2) w.svar(r() < 0.3 ? big() : Math.floor(r() * 1000));
      const exceptions = r() < 0.2 && width <= 32 ? 1 + Math.floor(r() * 3) : 0;
      w.u8(width | (exceptions > 0 ? 0x80 : 0));
      if (exceptions > 0) w.uvar(exceptions);
      const bytes = Math.ceil(((n - Math.min(order, n)) * Math.min(width, 32)) / 8) + (r() < 0.1 ? -1 : 0);
      for (let b = 0; b < bytes; b++) w.u8(r() < 0.3 ? 0xff : Math.floor(r() * 256));
      for (let e = 0; e < exceptions; e++) {
        w.uvar(Math.floor(r() * 3));
        w.uvar(r() < 0.5 ? Math.floor(r() * 2 ** 40) : 1);
      }
      const raw = w.finish();
      const want = outcome(() => oracle.decodeBatches(raw, 0), true);
      if (want === 'refused') refused++;
      expect(outcome(() => now.decodeBatches(raw, 0), true), `body ${i} (seed ${seed}, order ${order}, width ${width})`).toEqual(want);
      const some = (g: number): boolean => g === 0;
      expect(outcome(() => now.decodeBatchesSelected(raw, 0, some), true), `body ${i} selected`).toEqual(outcome(() => oracle.decodeBatchesSelected(raw, 0, some), true));
    }
    // Both kinds of outcome occur (a test of refusals that never refuses, or never decodes, would be weak).
    expect(refused).toBeGreaterThan(40);
    expect(refused).toBeLessThan(360);
  });

  it('decodes numbers-only payloads into typed arrays (decodeBatchesInto) bit for bit, reusing them, and declines the others', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity into');
    const r = rng(seed + 4);
    const hostile = hostileNumbers(r);
    const out = now.newNumberBatches();
    const u32 = new Uint32Array(2);
    const f = new Float64Array(u32.buffer);
    let declined = 0;
    let damagedRead = 0;
    for (let i = 0; i < 200; i++) {
      const numbersOnly = r() < 0.75;
      const b = randomBlock(r, hostile, { uniform: r() < 0.4, numbersOnly });
      const raw = now.encodeBatches(flat(b, b.ids, generic(b.values)), new ByteWriter(64)).slice();
      const firstTs = b.ts[0] as number;
      const label = `block ${i} (seed ${seed})`;
      const hasOther = b.values.some((v) => typeof v !== 'number');
      if (!now.decodeBatchesInto(raw, firstTs, out)) {
        expect(hasOther, label).toBe(true);
        declined++;
        continue;
      }
      expect(hasOther, label).toBe(false);
      expect(Array.from(out.ts.subarray(0, out.batchCount)), label).toEqual(b.ts);
      expect(Array.from(out.counts.subarray(0, out.batchCount)), label).toEqual(b.counts);
      expect(Array.from(out.ids.subarray(0, out.updateCount)), label).toEqual(b.ids);
      expect(out.updateCount, label).toBe(b.values.length);
      // The stored words, NaN payloads included.
      const words = new Uint32Array(out.nums.buffer, 0, 2 * out.updateCount);
      b.values.forEach((v, k) => {
        f[0] = v as number;
        if (words[2 * k] !== u32[0] || words[2 * k + 1] !== u32[1]) expect.fail(`${label}: value ${k} bits differ`);
      });
      // Damage: decodeBatchesInto refuses where decodeBatches does, and otherwise gives its bits.
      for (let k = 0; k < 4; k++) {
        const bad = raw.slice(0, r() < 0.2 ? Math.floor(r() * raw.length) : raw.length);
        if (bad.length > 0) {
          const at = Math.floor(r() * bad.length);
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
        }
        const want = outcome(() => now.decodeBatches(bad, firstTs));
        let got: boolean;
        try {
          got = now.decodeBatchesInto(bad, firstTs, out);
        } catch (err) {
          if (!isTapedeckError(err)) throw err;
          expect(want, `${label} damage ${k}`).toBe('refused');
          continue;
        }
        if (!got) continue;
        damagedRead++;
        expect(want, `${label} damage ${k}`).not.toBe('refused');
        const w = want as { ids: number[]; values: unknown[] };
        expect(Array.from(out.ids.subarray(0, out.updateCount)), `${label} damage ${k}`).toEqual(w.ids);
        expect(Array.from(out.nums.subarray(0, out.updateCount), (v) => valueKey(v, false)), `${label} damage ${k}`).toEqual(w.values);
      }
    }
    expect(declined).toBeGreaterThan(10);
    expect(damagedRead).toBeGreaterThan(10);
  });

  it('writes the same path definitions bytes (encodePathDefs) for ASCII, non-ASCII, lone surrogates and long paths', () => {
    const seed = scheduleSeed('CODEC_IDENTITY_SEED', 'codec identity paths');
    const r = rng(seed + 5);
    const pieces = ['a', '/dev', 'é', '日本', '\u{1f600}', '\ud800', '\udfff', ' ', '%', '\u0000', 'x'.repeat(200), 'y'.repeat(17_000)];
    for (let i = 0; i < 200; i++) {
      const defs = Array.from({ length: Math.floor(r() * 30) }, (_, k) => {
        let path = '';
        const parts = r() < 0.05 ? 100 : Math.floor(r() * 12);
        for (let j = 0; j < parts; j++) path += pieces[Math.floor(r() * pieces.length)] as string;
        return { id: Math.floor(r() * 2 ** 32), path, firstTs: 1_700_000_000_000_000 + k * Math.floor(r() * 1e9) };
      });
      const got = now.encodePathDefs(defs, 1_700_000_000_000_000);
      if (hex(got) !== hex(oracle.encodePathDefs(defs, 1_700_000_000_000_000))) expect.fail(`defs ${i} (seed ${seed}): bytes differ from the oracle's`);
    }
  });

  it('decodes selected paths right when the selection itself decodes other payloads (nested, selected or not)', () => {
    const r = rng(11);
    const hostile = hostileNumbers(r);
    // Small blocks: every column's `keep` decodes three others.
    const blocks = Array.from({ length: 4 }, (_, i) => {
      const b: Block = { ts: [], counts: [], ids: [], values: [] };
      for (let k = 0; k < 30; k++) {
        b.ts.push(1_700_000_000_000_000 + k * 1000);
        b.counts.push(10);
        for (let j = 0; j < 10; j++) {
          b.ids.push((j * 7 + k * (i + 1) + i * 13) % (40 + 9 * i));
          b.values.push(i % 2 === 0 || r() < 0.8 ? numberOf(r, (j + i) % 11, hostile, { acc: j }) : randomValue(r));
        }
      }
      return b;
    });
    const raws = blocks.map((b) => now.encodeBatches(flat(b, b.ids, generic(b.values)), new ByteWriter(64)).slice());
    const keep = (g: number): boolean => g % 2 === 0;
    const want = raws.map((raw, i) => outcome(() => now.decodeBatchesSelected(raw, blocks[i]?.ts[0] as number, keep)));
    let nested = 0;
    const keepDecoding = (g: number): boolean => {
      // Another block's full and selected decodes (the selected one nesting once more).
      const k = nested++ % raws.length;
      now.decodeBatches(raws[k] as Uint8Array, blocks[k]?.ts[0] as number);
      now.decodeBatchesSelected(raws[(k + 1) % raws.length] as Uint8Array, 0, (h) => {
        now.decodeBatches(raws[(k + 2) % raws.length] as Uint8Array, 0);
        return h % 3 === 0;
      });
      return keep(g);
    };
    raws.forEach((raw, i) => expect(outcome(() => now.decodeBatchesSelected(raw, blocks[i]?.ts[0] as number, keepDecoding)), `block ${i}`).toEqual(want[i]));
    expect(nested).toBeGreaterThan(10);
  });
});
