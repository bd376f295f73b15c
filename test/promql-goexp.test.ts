/**
 * Go's amd64 Exp ported (server/promql/goexp.ts): the exact fused multiply-add under its
 * fused path is checked against exact rational arithmetic (BigInt) on seeded random operands,
 * cancellation and signed zeros included; both paths keep Go's special cases and overflow
 * bound, stay within one unit in the last place of the true e^x, and differ from each other
 * where fusing changes a rounding; gotrig.ts's constants are the doubles Go's constant
 * arithmetic gives. That each path is Go's to the bit is checked against the
 * real Prometheus in test/promql-diff-edges.test.ts (this host's path).
 */
import { describe, expect, it } from 'vitest';
import { fma, goExpFma, goExpSse } from '../server/promql/goexp.js';
import { FOUR_OVER_PI, THREE_QUARTER_PI } from '../server/promql/gotrig.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const view = new DataView(new ArrayBuffer(8));

/** A finite double as m × 2^e with integer m. */
function parts(v: number): [bigint, bigint] {
  view.setFloat64(0, v);
  const bits = view.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  if (e !== 0) m |= 1n << 52n;
  return [bits >> 63n === 1n ? -m : m, BigInt((e === 0 ? 1 : e) - 1075)];
}

/** a × b + c computed exactly, rounded once to the nearest double (ties to even); a zero keeps IEEE's sign rule. */
function exactFma(a: number, b: number, c: number): number {
  const [am, ae] = parts(a);
  const [bm, be] = parts(b);
  const [cm, ce] = parts(c);
  const pe = ae + be;
  const e0 = pe < ce ? pe : ce;
  const sum = am * bm * (1n << (pe - e0)) + cm * (1n << (ce - e0));
  if (sum === 0n) return a * b + c; // an exact zero: its sign is IEEE's, as the hardware gives it
  let n = sum < 0n ? -sum : sum;
  let e = e0;
  let shift = BigInt(n.toString(2).length) - 53n;
  if (e + shift < -1074n) shift = -1074n - e;
  if (shift > 0n) {
    const rem = n & ((1n << shift) - 1n);
    const half = 1n << (shift - 1n);
    n >>= shift;
    e += shift;
    if (rem > half || (rem === half && (n & 1n) === 1n)) n += 1n;
  }
  const v = Number(n) * 2 ** Number(e);
  return sum < 0n ? -v : v;
}

describe("Go's amd64 Exp, both paths, and the fused multiply-add under one", () => {
  it('rounds a × b + c once, as exact arithmetic rounds it, for random operands and cancellations', () => {
    const seed = scheduleSeed('GOEXP_FMA_SEED', 'promql-goexp fma');
    const r = rng(seed);
    // 53 random bits of mantissa (rng gives 32 a draw), times a random power of two.
    const any = (): number => ((r() - 0.5) + (r() - 0.5) * 2 ** -31) * 2 ** Math.floor(r() * 60 - 30);
    const wrong: string[] = [];
    let inexact = 0;
    const ulpOf = (v: number): number => {
      view.setFloat64(0, Math.abs(v));
      view.setBigUint64(0, view.getBigUint64(0) ^ 1n);
      return Math.abs(view.getFloat64(0) - Math.abs(v));
    };
    for (let i = 0; i < 100_000; i++) {
      let a = any();
      let b = i % 7 === 0 ? -any() : any();
      // A third of the time c nearly cancels the product: the product's low half decides the result.
      let c = i % 3 === 0 ? -(a * b) * (1 + (r() - 0.5) * 2 ** -40) : i % 11 === 0 ? -0 : any();
      if (i % 5 === 1) {
        // A product just off half a unit of c's last place: c + a·b is a tie once a·b is rounded,
        // and rounding twice (the product, then the sum) breaks it the wrong way half the time.
        c = any();
        const h = ulpOf(c) / 2;
        const off = 2 ** -(20 + Math.floor(r() * 30));
        a = 1 + off;
        b = (r() < 0.5 ? h : -h) * (r() < 0.5 ? 1 - off : 1 + off);
      }
      const got = fma(a, b, c);
      const want = exactFma(a, b, c);
      if (!Object.is(got, want)) wrong.push(`fma(${a}, ${b}, ${c}) = ${got}, exactly ${want}`);
      if (got !== a * b + c) inexact++;
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    // The check means something: fusing changed the result of many of these.
    expect(inexact).toBeGreaterThan(10_000);
  });

  it("has the constants Go's exact constant arithmetic gives gotrig.ts (4/π, 3π/4 rounded once)", () => {
    // The correctly rounded doubles (from 300-bit arithmetic): Math.PI's twice-rounded quotients must land on them.
    const bits = (v: number): string => {
      view.setFloat64(0, v);
      return view.getBigUint64(0).toString(16);
    };
    expect(bits(FOUR_OVER_PI)).toBe('3ff45f306dc9c883');
    expect(bits(THREE_QUARTER_PI)).toBe('4002d97c7f3321d2');
  });

  it("keeps Go's special cases, overflow and underflow bounds, on both paths", () => {
    for (const exp of [goExpSse, goExpFma]) {
      expect(exp(NaN)).toBeNaN();
      expect(exp(Infinity)).toBe(Infinity);
      expect(exp(-Infinity)).toBe(0);
      expect(exp(0)).toBe(1);
      expect(exp(-0)).toBe(1);
      expect(exp(1)).toBe(Math.E);
      // k = round(x·log2 e) reaches 1024 from about 709.436: +Inf where e^x is still finite.
      expect(exp(709.43)).toBeLessThan(Infinity);
      expect(exp(709.44)).toBe(Infinity);
      expect(exp(709.78)).toBe(Infinity);
      expect(exp(-745.2)).toBe(0);
      expect(exp(-745)).toBeGreaterThan(0);
      expect(exp(-708.5)).toBeGreaterThan(0);
      expect(exp(-1e300)).toBe(0);
    }
  });

  it('stays within one unit in the last place of e^x, and the two paths differ where fusing rounds otherwise', () => {
    const seed = scheduleSeed('GOEXP_PATHS_SEED', 'promql-goexp paths');
    const r = rng(seed);
    let differ = 0;
    const far: string[] = [];
    const ulp = (v: number): number => {
      view.setFloat64(0, v);
      view.setBigUint64(0, view.getBigUint64(0) + 1n);
      return view.getFloat64(0) - v;
    };
    for (let i = 0; i < 50_000; i++) {
      const x = (r() - 0.5) * (i % 2 === 0 ? 10 : 1400);
      const sse = goExpSse(x);
      const fused = goExpFma(x);
      if (sse !== fused) differ++;
      const js = Math.exp(x);
      if (js === 0 || !Number.isFinite(js)) continue;
      for (const [name, v] of [['sse', sse], ['fma', fused]] as const) {
        if (Math.abs(v - js) > 2 * ulp(Math.abs(js))) far.push(`${name} exp(${x}) = ${v}, Math.exp ${js}`);
      }
    }
    expect(far.slice(0, 10)).toEqual([]);
    expect(differ).toBeGreaterThan(500);
  });
});
