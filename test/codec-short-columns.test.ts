/**
 * The short-column path of the number encoder (storage/codec/number-columns.ts shortColumns: 1 or
 * 2 values a column, the exponent of the last column tried first, Math.floor(x + 0.5) for
 * Math.round(x), r x 0.1 for r % 10) against the frozen codec (test/helpers/codec-oracle/),
 * byte for byte, on seeded blocks of many short columns: decimals of 0 to 9 places in runs
 * and in turns (so that the guessed exponent is right, too large, too small), values exact
 * at a smaller exponent than the guess (scaled multiples of 10), integers, -0 first and
 * second, ±Inf, every NaN shape, 0.1 + 0.2-like sums, scaled values about 2^50 and 2^51,
 * values past the scaled range, and long columns between runs of short ones; and long
 * columns (scaleDecimal's Math.floor(x + 0.5) for Math.round(x)) about the same edges, and
 * columns of 3 to 16 values (planPacked's planShort, scaleDecimal's guessed exponent). Blocks with
 * strings and other values (MSGPACK columns) take the generic path; they are compared too.
 */
import { describe, expect, it } from 'vitest';
import * as now from '../storage/codec/payload.js';
import * as oracle from './helpers/codec-oracle/payload.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { ByteWriter as OracleByteWriter } from './helpers/codec-oracle/bytes.js';
import { valueArray, type Value } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { randomValue, rng } from './helpers/workload.js';

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}

const NANS = [0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff0000000000002n, 0x7ff8000000000002n, 0x7ff0000000000001n, 0xfff0000000001234n, 0x7fffffffffffffffn].map(fromBits);

/** One value of a short column, from one of many shapes (some near the path's edges). */
function shortValue(r: () => number, k: number): number {
  const p = 10 ** k;
  switch (Math.floor(r() * 16)) {
    case 0:
      return NANS[Math.floor(r() * NANS.length)] as number;
    case 1:
      return [-0, 0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE][Math.floor(r() * 6)] as number;
    case 2: {
      // About the scaled bounds: r / 10^k with |r| near 2^50 and 2^51.
      const edge = r() < 0.5 ? 2 ** 50 : 2 ** 51;
      const s = (edge + Math.floor(r() * 41) - 20) * (r() < 0.5 ? -1 : 1);
      return s / p;
    }
    case 3:
      return 0.1 * Math.floor(r() * 10) + 0.2 * Math.floor(r() * 10); // 0.1 + 0.2-like
    case 4:
      return Math.floor(r() * 1e6) * 10 / p; // exact at k - 1 (a multiple of 10 scaled)
    case 5:
      return Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1); // an integer
    case 6:
      return Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1); // an integer, maybe past 2^51
    case 7:
      return (Math.floor(r() * 1e9) + 1) / 1e9; // 9 places
    case 8:
      return r() * 1e6 - 5e5; // a full double
    case 9:
      return 486164504320 + (r() < 0.5 ? 0 : 0.5); // large next to fine
    case 10:
      return Math.round((r() - 0.5) * 2e5) / 10 ** Math.floor(r() * 11); // 0 to 10 places
    case 11:
      return -(Math.floor(r() * 1e5) + 1) / p; // negative at k
    default:
      return Math.round(r() * 1e6) / p; // the column's own exponent (mostly)
  }
}

interface Block {
  ts: number[];
  counts: number[];
  ids: number[];
  values: Value[];
}

/**
 * Two batches over `paths` paths (each in the first, some again in the second: columns of 1
 * or 2 values), then, in some blocks, more batches over a few paths (columns of 3 or more
 * between short ones). Exponents come in runs (the guess right) or in turns (wrong).
 */
function shortBlock(r: () => number, withOthers: boolean): Block {
  const paths = 1 + Math.floor(r() * (r() < 0.5 ? 3000 : 100));
  const runs = r() < 0.5;
  let k = Math.floor(r() * 10);
  const kOf = Array.from({ length: paths }, () => {
    if (!runs || r() < 0.02) k = Math.floor(r() * 10);
    return k;
  });
  const b: Block = { ts: [], counts: [], ids: [], values: [] };
  const push = (list: number[], t: number): void => {
    b.ts.push(t);
    b.counts.push(list.length);
    for (const id of list) {
      b.ids.push(id);
      b.values.push(withOthers && r() < 0.05 ? randomValue(r) : shortValue(r, kOf[id] as number));
    }
  };
  push(Array.from({ length: paths }, (_, i) => i), 1_700_000_000_000_000);
  push(Array.from({ length: paths }, (_, i) => i).filter(() => r() < 0.6), 1_700_000_001_000_000);
  if (r() < 0.4) {
    const few = Array.from({ length: Math.min(paths, 1 + Math.floor(r() * 20)) }, () => Math.floor(r() * paths));
    for (let j = 0; j < 3; j++) push(few, 1_700_000_002_000_000 + j);
  }
  return b;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function flat(b: Block, ids: ArrayLike<number>, values: ArrayLike<Value>): now.FlatBatches {
  return { ts: b.ts, counts: b.counts, ids, values, batchCount: b.ts.length, updateCount: b.ids.length };
}

function check(b: Block, label: string): void {
  const generic = valueArray(b.values.length);
  b.values.forEach((v, i) => (generic[i] = v));
  const want = hex(oracle.encodeBatches(flat(b, b.ids, generic), new OracleByteWriter(64)));
  const numbers = b.values.every((v) => typeof v === 'number');
  // The block builder's forms: numbers unboxed in a Float64Array, ids in an Int32Array; a
  // small writer, so that the short path grows it mid-run.
  const values = numbers ? Float64Array.from(b.values as number[]) : generic;
  const got = hex(now.encodeBatches(flat(b, Int32Array.from(b.ids), values), new ByteWriter(16)));
  if (got !== want) expect.fail(`${label}: payload bytes differ from the oracle's`);
}

describe('short number columns against the oracle (fa3a187)', () => {
  it('writes the same bytes on seeded blocks of short columns with hostile values', () => {
    const seed = scheduleSeed('CODEC_SHORT_SEED', 'codec short columns');
    const r = rng(seed);
    for (let i = 0; i < 400; i++) {
      const withOthers = r() < 0.15;
      check(shortBlock(r, withOthers), `block ${i} (seed ${seed}, others ${withOthers})`);
    }
  });

  it('writes the same bytes about 2^50 and 2^51 scaled, at every exponent, first and second value', () => {
    const seed = scheduleSeed('CODEC_SHORT_SEED', 'codec short columns edges');
    const r = rng(seed + 1);
    for (let k = 1; k <= 9; k++) {
      const p = 10 ** k;
      for (const edge of [2 ** 50, 2 ** 51]) {
        const b: Block = { ts: [1, 2], counts: [0, 0], ids: [], values: [] };
        const n = 400;
        for (let i = 0; i < n; i++) {
          const s = (edge + Math.floor(r() * 201) - 100) * (r() < 0.5 ? -1 : 1);
          b.ids.push(i);
          // Guess first: a plain value at k, then the edge value (first of the next column).
          b.values.push(i % 2 === 0 ? (Math.floor(r() * 1e4) * 10 + 1) / p : s / p);
        }
        for (let i = 0; i < n; i += 3) {
          b.ids.push(i);
          b.values.push((edge - Math.floor(r() * 50)) / p);
        }
        b.counts = [n, b.ids.length - n];
        check(b, `k ${k}, edge 2^${Math.log2(edge)} (seed ${seed})`);
      }
    }
  });

  it('writes the same bytes for long columns with values about 2^50 and 2^51 scaled and -0 (scaleDecimal)', () => {
    const seed = scheduleSeed('CODEC_SHORT_SEED', 'codec long columns edges');
    const r = rng(seed + 3);
    for (let i = 0; i < 300; i++) {
      const k = 1 + Math.floor(r() * 9);
      const p = 10 ** k;
      const len = 3 + Math.floor(r() * 40);
      const cols = 1 + Math.floor(r() * 8);
      const b: Block = { ts: [], counts: [], ids: [], values: [] };
      for (let j = 0; j < len; j++) {
        b.ts.push(1 + j);
        b.counts.push(cols);
        for (let c = 0; c < cols; c++) {
          b.ids.push(c);
          const x = r();
          const edge = r() < 0.5 ? 2 ** 50 : 2 ** 51;
          b.values.push(x < 0.15 ? (edge + Math.floor(r() * 41) - 20) * (r() < 0.5 ? -1 : 1) / p : x < 0.2 ? -0 : x < 0.25 ? 0 : Math.round((r() - 0.5) * 1e6) / p);
        }
      }
      check(b, `block ${i}, k ${k} (seed ${seed})`);
    }
  });

  it('writes the same bytes for columns of 3 to 16 values (planPacked without histograms, scaleDecimal guessing)', () => {
    const seed = scheduleSeed('CODEC_SHORT_SEED', 'codec few-value columns');
    const r = rng(seed + 4);
    for (let i = 0; i < 300; i++) {
      const len = 3 + Math.floor(r() * 14);
      const cols = 1 + Math.floor(r() * 300);
      const b: Block = { ts: [], counts: [], ids: [], values: [] };
      const shapeOf = Array.from({ length: cols }, () => Math.floor(r() * 10));
      const kOf = Array.from({ length: cols }, () => Math.floor(r() * 10));
      const acc = Array.from({ length: cols }, () => Math.floor((r() - 0.5) * 2 ** 29));
      for (let j = 0; j < len; j++) {
        b.ts.push(1 + j);
        b.counts.push(cols);
        for (let c = 0; c < cols; c++) {
          b.ids.push(c);
          const p = 10 ** (kOf[c] as number);
          let v: number;
          switch (shapeOf[c]) {
            case 0: v = 7; break; // constant
            case 1: v = (acc[c] = (acc[c] as number) + Math.floor(r() * 1000)) / p; break; // counter
            case 2: v = r() < 0.7 ? 0 : Math.floor(r() * 9) - 4; break; // near zero (order 0)
            case 3: v = ((r() < 0.5 ? -1 : 1) * (2 ** 28 - Math.floor(r() * 3))) / p; break; // the int32 bound
            case 4: v = Math.floor((r() - 0.5) * 2 ** 40) / p; break; // wide
            case 5: v = shortValue(r, kOf[c] as number); break; // hostile
            case 6: v = (acc[c] = (acc[c] as number) + Math.floor((r() - 0.5) * 2 ** 31)) / p; break; // jumps past 32-bit residuals
            case 7: v = (r() < 0.5 ? -1 : 1) * (2 ** 28 + Math.floor(r() * 2 ** 29)); break; // past 2^28, swinging
            default: v = Math.round((r() - 0.5) * 1e6) / p; // a gauge
          }
          b.values.push(v);
        }
      }
      check(b, `block ${i}, ${len} values a column (seed ${seed})`);
    }
  });

  it('writes the same bytes for blocks in turn with other exponents (the guess carried across blocks)', () => {
    const seed = scheduleSeed('CODEC_SHORT_SEED', 'codec short columns turns');
    const r = rng(seed + 2);
    for (let i = 0; i < 200; i++) {
      const k = Math.floor(r() * 10);
      const p = 10 ** k;
      const n = 1 + Math.floor(r() * 50);
      const b: Block = { ts: [1, 2], counts: [n, 0], ids: [], values: [] };
      for (let j = 0; j < n; j++) {
        b.ids.push(j);
        b.values.push(r() < 0.8 ? Math.round((r() - 0.5) * 1e7) / p : shortValue(r, k));
      }
      for (let j = 0; j < n; j += 2) {
        b.ids.push(j);
        b.values.push(r() < 0.8 ? Math.round((r() - 0.5) * 1e7) / p : shortValue(r, k));
      }
      b.counts[1] = b.ids.length - n;
      check(b, `block ${i}, k ${k} (seed ${seed})`);
    }
  });
});
