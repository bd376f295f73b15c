/**
 * Go's math.Exp as Prometheus' amd64 build runs it (src/math/exp_amd64.s, Shibata's method):
 * k = x·log2(e) rounded to the nearest integer (even on a tie), r = x - k·ln2 in two parts,
 * a degree-8 Taylor polynomial of r/16 squared up four times, then scaled by 2^k. Go picks
 * one of two paths by the CPU: with AVX and FMA every multiply-add is fused (one rounding),
 * without them each multiply and add rounds. Both are here, operation for operation, the
 * fused one on an exact fused multiply-add (fma below), so `exp`, `^` with a fractional
 * power, `sinh`, `cosh` and `tanh` are Prometheus' to the bit on a host like Prometheus'
 * (host-fma.ts says which path this host's Go would take). Pure.
 */

const LOG2E = 1.4426950408889634;
/** ln 2 in two parts: the upper one's product with any k here is exact. */
const LN2_UPPER = 0.693147180559663;
const LN2_LOWER = 2.8235290563031577e-13;
/** Past this, +Inf at once (the asm's first test). */
const OVERFLOW = 7.09782712893384e2;
/** 1/8!, 1/7!, ..., 1/3!, 1/2!, 1: the polynomial's coefficients, highest first. */
const TAYLOR = [2.48015873015873e-5, 1.984126984126984e-4, 1.388888888888889e-3, 8.333333333333333e-3, 4.1666666666666664e-2, 1.6666666666666666e-1, 0.5, 1.0] as const;

/** CVTSD2SL under the default rounding: to nearest, ties to even (out of int32's range: the "integer indefinite", -2^31). */
function roundToInt32(v: number): number {
  if (!(v > -2147483648.5 && v < 2147483647.5)) return -2147483648;
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1;
  return r;
}

/** fr × 2^k as the asm scales it: one multiply by 2^k, or below 2^-1022 by 2^(k+1022) then 2^-1022 (one rounding at the last). */
function scale(fr: number, k: number): number {
  const biased = k + 0x3ff;
  if (biased >= 0x7ff) return Infinity;
  if (biased > 0) return fr * pow2(k);
  if (biased < -52) return 0;
  return fr * pow2(k + 1022) * 2 ** -1022;
}

/** 2^e for an integer e in [-1022, 1023]: exact (a power of two is a double). */
const pow2 = (e: number): number => 2 ** e;

/** The special cases and k, shared by both paths; undefined when the polynomial is needed. */
function early(x: number): number | undefined {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === -Infinity) return 0;
  if (x > OVERFLOW) return Infinity;
  return undefined;
}

/** Go's amd64 Exp on a CPU without FMA (or AVX): every operation rounded. */
export function goExpSse(x: number): number {
  const special = early(x);
  if (special !== undefined) return special;
  const k = roundToInt32(LOG2E * x);
  if (k + 0x3ff < -52) return 0;
  let r = x - LN2_UPPER * k;
  r = r - LN2_LOWER * k;
  r *= 0.0625;
  let p: number = TAYLOR[0];
  for (let i = 1; i < TAYLOR.length; i++) p = p * r + (TAYLOR[i] as number);
  let e = r * p;
  for (let i = 0; i < 4; i++) e = e * (e + 2.0);
  return scale(e + 1.0, k);
}

/** Go's amd64 Exp on a CPU with AVX and FMA: its multiply-adds fused. */
export function goExpFma(x: number): number {
  const special = early(x);
  if (special !== undefined) return special;
  const k = roundToInt32(LOG2E * x);
  if (k + 0x3ff < -52) return 0;
  let r = fma(-k, LN2_UPPER, x);
  r = fma(-k, LN2_LOWER, r);
  r *= 0.0625;
  let p: number = TAYLOR[0];
  for (let i = 1; i < TAYLOR.length; i++) p = fma(p, r, TAYLOR[i] as number);
  let e = r * p;
  for (let i = 0; i < 3; i++) e = e * (e + 2.0);
  return scale(fma(e, e + 2.0, 1.0), k);
}

// ------------------------------------------------------------------ an exact fused multiply-add

const SPLITTER = 134217729; // 2^27 + 1

/** The rounding error of a × b (Dekker's product by Veltkamp's split): a·b = p + err exactly, short of overflow and underflow. */
function productError(a: number, b: number, p: number): number {
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/** The rounding error of a + b (Knuth's two-sum): a + b = s + err exactly. */
function sumError(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** Index of the low and high 32-bit halves of f64[0] on this host. */
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

/** a + b rounded to odd: when inexact, of the two neighbours of the exact sum, the one whose last bit is 1. */
function addRoundOdd(a: number, b: number): number {
  const s = a + b;
  const err = sumError(a, b, s);
  if (err === 0 || !Number.isFinite(s)) return s;
  f64[0] = s;
  const lo = u32[LO] as number;
  if ((lo & 1) === 1) return s;
  // s even: step one unit in the last place towards the exact sum (its magnitude grows when
  // err has s's sign). lo is even, so going up never carries; going down borrows at 0.
  if ((err > 0) === (s > 0)) u32[LO] = lo + 1;
  else if (lo !== 0) u32[LO] = lo - 1;
  else {
    u32[LO] = 0xffffffff;
    u32[HI] = (u32[HI] as number) - 1;
  }
  return f64[0] as number;
}

/**
 * a × b + c rounded once, as a fused multiply-add rounds (Boldo and Melquiond, "Emulation of
 * FMA and correctly rounded sums: proved algorithms using rounding to odd", 2008): the exact
 * product as two doubles, then their sum with c by two-sum and a round-to-odd addition, so
 * that the last rounding is the only one. Exact for the finite, unexceptional operands Exp
 * gives it (no product near overflow; one below 2^-969 may lose its error term, which is
 * then far under half a unit of c's last place).
 */
export function fma(a: number, b: number, c: number): number {
  const ph = a * b;
  if (!Number.isFinite(ph) || !Number.isFinite(c)) return ph + c;
  const pl = productError(a, b, ph);
  const th = c + ph;
  const tl = sumError(c, ph, th);
  return th + addRoundOdd(tl, pl);
}
