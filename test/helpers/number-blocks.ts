/**
 * Seeded blocks of numbers for the encoders' differential tests (test/wasm-columns.test.ts,
 * test/native-payload.test.ts): columns of every shape the number encoder distinguishes
 * (gauges, counters, sparse, spikes, XOR-ish, noisy, hostile bit patterns), and whole blocks
 * of batches over sparse path ids.
 */
import type { FlatBatches } from '../../storage/codec/payload-encode.js';
export type Rand = () => number;

/** A column under construction: values written as numbers or as exact bit patterns. */
export class Column {
  readonly f = new Float64Array(0);
  private vals: Float64Array;
  private words: Uint32Array;
  n = 0;

  constructor(capacity: number) {
    this.vals = new Float64Array(capacity);
    this.words = new Uint32Array(this.vals.buffer);
  }

  num(v: number): void {
    this.vals[this.n++] = v;
  }

  /** A value by its bits (NaN payloads survive only this way). */
  bits(hi: number, lo: number): void {
    this.words[2 * this.n] = lo >>> 0;
    this.words[2 * this.n + 1] = hi >>> 0;
    this.n++;
  }

  get values(): Float64Array {
    return this.vals.subarray(0, this.n);
  }
}

export const NAN_BITS: Array<[number, number]> = [
  [0x7ff80000, 0],
  [0xfff80000, 0],
  [0x7ff00000, 2], // Prometheus' stale marker
  [0x7ff80000, 2],
  [0x7ff00000, 1],
  [0xfff00000, 0x1234],
  [0x7fffffff, 0xffffffff],
];

export function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

/** A hostile value: NaNs, -0, ±Inf, subnormals, edges of the scaled range, ties. */
export function hostile(r: Rand, c: Column, k: number): void {
  const p = 10 ** k;
  switch (Math.floor(r() * 9)) {
    case 0: {
      const [hi, lo] = pick(r, NAN_BITS);
      return c.bits(hi, lo);
    }
    case 1:
      return c.num(pick(r, [-0, 0, Infinity, -Infinity, 5e-324, -5e-324, 2.2250738585072e-308, Number.MAX_VALUE, -Number.MIN_VALUE]));
    case 2: {
      const edge = pick(r, [2 ** 50, 2 ** 51, 2 ** 52, 2 ** 53]);
      return c.num(((edge + Math.floor(r() * 9) - 4) * (r() < 0.5 ? -1 : 1)) / p);
    }
    case 3:
      return c.num(pick(r, [0.1 + 0.2, 2e6, 2e6 - 1e-9, 1999999.9999999, 0.15, -2.5, 2.5, -0.5, 0.5, 1e-9, 1e-10, 486164504320.5]));
    case 4:
      return c.num(Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1));
    case 5:
      return c.num(r() * 1e6 - 5e5);
    case 6:
      return c.num(Math.round((r() - 0.5) * 2e5) / 10 ** Math.floor(r() * 11));
    case 7:
      return c.num(-(Math.floor(r() * 1e5) + 1) / p);
    default:
      return c.num((Math.floor(r() * 2 ** 31) * 10) / p); // exact one place lower
  }
}

export const SHAPES = ['gauge', 'counter', 'constant', 'sparse', 'sparseEdge', 'spikes', 'rising', 'wide', 'noisy', 'xorish', 'hostile', 'mixed'] as const;

/** One column of n values of a random shape at exponent k. */
export function column(r: Rand, n: number): { col: Column; shape: string } {
  const c = new Column(n);
  const shape = pick(r, SHAPES);
  const k = Math.floor(r() * 10);
  const p = 10 ** k;
  let s = Math.floor((r() - 0.3) * (r() < 0.5 ? 5000 : 1e9));
  const step = Math.floor(r() * (r() < 0.5 ? 10 : 1e6));
  const noise = 1 + Math.floor(r() * (r() < 0.3 ? 3 : r() < 0.5 ? 300 : 1e7));
  const base = r() * 1e4;
  for (let i = 0; i < n; i++) {
    switch (shape) {
      case 'gauge':
        s += Math.floor(r() * noise) - Math.floor(noise / 2);
        c.num(s / p);
        break;
      case 'counter': // growing by a step or a varied amount, resets now and then
        s = r() < 0.01 ? 0 : s + step + (r() < 0.5 ? Math.floor(r() * noise) : 0);
        c.num(s / p);
        break;
      case 'constant':
        c.num(s / p);
        break;
      case 'sparse': // error counts: zeros, now and then a few
        c.num(r() < 0.1 ? Math.floor(r() * noise) : 0);
        break;
      case 'sparseEdge': // sparse after a first value about order 0's bound (|s| < 4096)
        c.num(i === 0 ? ((4094 + Math.floor(r() * 5)) * (r() < 0.5 ? -1 : 1)) / p : r() < 0.1 ? Math.floor(r() * 8) / p : 0);
        break;
      case 'spikes': // smooth, with rare wide residuals (exceptions)
        s += Math.floor(r() * 5) - 2;
        c.num((r() < 0.03 ? s + Math.floor(r() * 2 ** pick(r, [20, 30, 40, 48])) : s) / p);
        break;
      case 'rising': // integers, then places appear (rescales), at most 9
        c.num(Math.round(r() * 1e4) / 10 ** Math.min(9, Math.floor((i * 10) / n)));
        break;
      case 'wide': // residuals of 24 to 40 bits
        s = Math.floor((r() - 0.5) * 2 ** pick(r, [24, 25, 31, 32, 33, 40]));
        c.num(s / p);
        break;
      case 'noisy':
        c.num(base + r() * 1e3);
        break;
      case 'xorish': // repeats and few-bit changes of a full double
        c.num(r() < 0.5 && i > 0 ? (c.values[i - 1] as number) : base + Math.floor(r() * 4) * 0.25 + 1 / 3);
        break;
      case 'hostile':
        hostile(r, c, k);
        break;
      default: // a decimal column with hostile values here and there
        if (r() < 0.05) hostile(r, c, k);
        else c.num(Math.floor(r() * noise) / p);
    }
  }
  return { col: c, shape };
}

export function columnLength(r: Rand): number {
  const x = r();
  if (x < 0.4) return 1 + Math.floor(r() * 3); // 1 to 3
  if (x < 0.7) return 4 + Math.floor(r() * 16); // about the 16-residual rule
  if (x < 0.97) return 20 + Math.floor(r() * 500);
  return 2000 + Math.floor(r() * 15000);
}

export interface Block {
  vals: Float64Array;
  order: Uint32Array;
  colStart: Uint32Array;
  nc: number;
  shapes: string[];
}

/** Columns placed at random places among the block's values (order says where). */
export function block(r: Rand, nc: number): Block {
  const cols = Array.from({ length: nc }, () => column(r, columnLength(r)));
  const colStart = new Uint32Array(nc + 1);
  for (let c = 0; c < nc; c++) colStart[c + 1] = (colStart[c] as number) + (cols[c] as { col: Column }).col.n;
  const nu = colStart[nc] as number;
  const place = Uint32Array.from({ length: nu }, (_, i) => i);
  for (let i = nu - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = place[i] as number;
    place[i] = place[j] as number;
    place[j] = t;
  }
  const vals = new Float64Array(nu);
  const valWords = new Uint32Array(vals.buffer);
  const order = new Uint32Array(nu);
  cols.forEach(({ col }, c) => {
    const words = new Uint32Array(col.values.buffer);
    for (let j = 0; j < col.n; j++) {
      const at = colStart[c] as number;
      const to = place[at + j] as number;
      order[at + j] = to;
      valWords[2 * to] = words[2 * j] as number; // bits, not numbers: NaN payloads kept
      valWords[2 * to + 1] = words[2 * j + 1] as number;
    }
  });
  return { vals, order, colStart, nc, shapes: cols.map((x) => x.shape) };
}

/**
 * A block of batches: path ids from a sparse set (up to ~10^6), batches that repeat the
 * previous one's list exactly (the batch list's "same" flag), nearly (one id changed), or
 * not; a path now and then twice in a batch; timestamps with irregular steps, repeats and
 * a step back; values decimal at each path's exponent, hostile now and then.
 */
export function batchBlock(r: Rand): FlatBatches & { values: Float64Array } {
  const paths = Array.from({ length: 1 + Math.floor(r() * (r() < 0.3 ? 3000 : 60)) }, () => Math.floor(r() * (r() < 0.5 ? 1e6 : 5000)));
  const kOf = new Map(paths.map((g) => [g, Math.floor(r() * 4)]));
  const nb = 1 + Math.floor(r() * 300);
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const bits: Column = new Column(nb * 200 + 1);
  let t = 1_700_000_000_000_000 + Math.floor(r() * 1e9);
  let prev: number[] = [];
  for (let i = 0; i < nb; i++) {
    t += pick(r, [0, 1, 1_000_000, 1_000_000, Math.floor(r() * 1e7), -5]);
    const x = r();
    let list: number[];
    if (x < 0.3 && prev.length > 0) list = prev;
    else if (x < 0.4 && prev.length > 0) list = prev.map((g, j) => (j === prev.length - 1 ? pick(r, paths) : g));
    else list = Array.from({ length: 1 + Math.floor(r() * Math.min(200, paths.length)) }, (_, j) => (r() < 0.8 ? (paths[j % paths.length] as number) : pick(r, paths)));
    ts.push(t);
    counts.push(list.length);
    for (const g of list) {
      ids.push(g);
      if (r() < 0.03) hostile(r, bits, kOf.get(g) as number);
      else bits.num(Math.floor(r() * 1e5) / 10 ** (kOf.get(g) as number));
    }
    prev = list;
  }
  const values = new Float64Array(ids.length);
  new Uint8Array(values.buffer).set(new Uint8Array(bits.values.buffer, 0, ids.length * 8));
  return { ts, counts, ids: Int32Array.from(ids), values, batchCount: nb, updateCount: ids.length };
}
