/**
 * Go's math functions whose results differ from JavaScript's, ported so that PromQL answers
 * are Prometheus' to the bit (test/promql-diff-edges.test.ts): `ln`, `log2` and `log10` are Go's
 * Log (its amd64 assembly, step for step), Log2 and Log10; `^` is Go's math.Pow (an integer
 * power by repeated squaring times Exp(yf * Log(x)), where V8's pow rounds once); `exp` is
 * Go's amd64 Exp on the path this host's CPU takes (goexp.ts). Pure but for that choice,
 * made once at start (host-fma.ts).
 */
import { goExpFma, goExpSse } from './goexp.js';
import { HOST_GO_EXP_FMA } from './host-fma.js';

const view = new DataView(new ArrayBuffer(8));

/** Go's math.Frexp: x = frac × 2^exp with |frac| in [0.5, 1); 0, ±Inf and NaN come back with exp 0. */
export function frexp(x: number): [number, number] {
  if (x === 0 || !Number.isFinite(x)) return [x, 0];
  let e = 0;
  let f = x;
  if (Math.abs(f) < 2.2250738585072014e-308) {
    f *= 2 ** 52;
    e = -52;
  }
  view.setFloat64(0, f);
  const hi = view.getUint32(0);
  e += ((hi >>> 20) & 0x7ff) - 1022;
  view.setUint32(0, (hi & 0x800fffff) | (1022 << 20));
  return [view.getFloat64(0), e];
}

/** Go's math.Ldexp: frac × 2^exp, rounded once (to a subnormal below 2^-1022). */
export function ldexp(frac: number, exp: number): number {
  if (frac === 0 || !Number.isFinite(frac)) return frac;
  const [f, e0] = frexp(frac);
  // frac = (2f) × 2^e with 2f in [1, 2).
  let e = e0 + exp - 1;
  if (e < -1075) return f < 0 ? -0 : 0;
  if (e > 1023) return f < 0 ? -Infinity : Infinity;
  let m = 1;
  if (e < -1022) {
    e += 53;
    m = 2 ** -53;
  }
  return m * (2 * f * 2 ** e);
}

const LN2_HI = 6.93147180369123816490e-01;
const LN2_LO = 1.90821492927058770002e-10;
const L1 = 6.666666666666735130e-01;
const L2 = 3.999999999940941908e-01;
const L3 = 2.857142874366239149e-01;
const L4 = 2.222219843214978396e-01;
const L5 = 1.818357216161805012e-01;
const L6 = 1.531383769920937332e-01;
const L7 = 1.479819860511658591e-01;

/**
 * Go's math.Log as amd64 builds run it (src/math/log_amd64.s): FreeBSD's reduction and
 * polynomial, operation for operation, with its fraction and exponent taken from the bits
 * without normalizing a subnormal (so ln(5e-324) is -709.09, ln(2^-1023), as Prometheus
 * answers). Every step is one IEEE operation, so the result is Prometheus' to the bit.
 */
export function goLog(x: number): number {
  if (x === 0) return -Infinity;
  if (Number.isNaN(x) || x < 0) return NaN;
  if (x === Infinity) return x;
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  let k = ((hi >>> 20) & 0x7ff) - 0x3fe;
  view.setUint32(0, (hi & 0x000fffff) | 0x3fe00000);
  let f1 = view.getFloat64(0);
  if (f1 < Math.SQRT1_2) {
    k -= 1;
    f1 *= 2;
  }
  const f = f1 - 1;
  const s = f / (2 + f);
  const s2 = s * s;
  const s4 = s2 * s2;
  const t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
  const t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
  const R = t1 + t2;
  const hfsq = 0.5 * f * f;
  return k * LN2_HI - ((hfsq - (s * (hfsq + R) + k * LN2_LO)) - f);
}

/** Go's math.Log2: Frexp (normalizing) and Log of the fraction. */
export function goLog2(x: number): number {
  const [f, e] = frexp(x);
  if (f === 0.5) return e - 1;
  return goLog(f) * Math.LOG2E + e;
}

/** Go's math.Log10: Log(x) times 1/Ln10 (a constant Go rounds once: LOG10E, not 1 / LN10). */
export function goLog10(x: number): number {
  return goLog(x) * Math.LOG10E;
}

/** Go's math.Pow, special cases first, in Go's order. */
export function goPow(x: number, y: number): number {
  if (y === 0 || x === 1) return 1;
  if (y === 1) return x;
  if (Number.isNaN(x) || Number.isNaN(y)) return NaN;
  if (x === 0) {
    if (y < 0) return isOddInt(y) ? 1 / x : Infinity;
    return isOddInt(y) ? x : 0;
  }
  if (!Number.isFinite(y)) {
    if (x === -1) return 1;
    return (Math.abs(x) < 1) === (y > 0) ? 0 : Infinity;
  }
  if (!Number.isFinite(x)) {
    if (x < 0) return goPow(1 / x, -y);
    return y < 0 ? 0 : Infinity;
  }
  if (y === 0.5) return Math.sqrt(x);
  if (y === -0.5) return 1 / Math.sqrt(x);
  let yi = Math.trunc(Math.abs(y));
  let yf = Math.abs(y) - yi;
  if (yf !== 0 && x < 0) return NaN;
  if (yi >= 2 ** 63) {
    if (x === -1) return 1;
    return (Math.abs(x) < 1) === (y > 0) ? 0 : Infinity;
  }
  let a1 = 1;
  let ae = 0;
  if (yf !== 0) {
    if (yf > 0.5) {
      yf--;
      yi++;
    }
    a1 = goExp(yf * goLog(x));
  }
  let [x1, xe] = frexp(x);
  // yi < 2^63 is an integer double: halving it and its parity are exact, as int64's.
  for (let i = yi; i !== 0; i = Math.floor(i / 2)) {
    if (xe < -(1 << 12) || 1 << 12 < xe) {
      ae += xe;
      break;
    }
    if (i % 2 === 1) {
      a1 *= x1;
      ae += xe;
    }
    x1 *= x1;
    xe <<= 1;
    if (x1 < 0.5) {
      x1 += x1;
      xe--;
    }
  }
  if (y < 0) {
    a1 = 1 / a1;
    ae = -ae;
  }
  return ldexp(a1, ae);
}

function isOddInt(y: number): boolean {
  if (Math.abs(y) >= 2 ** 53) return false;
  return Number.isInteger(y) && Math.abs(y % 2) === 1;
}

/** Go's math.Exp as Prometheus' amd64 build on this host computes it, to the bit (goexp.ts, host-fma.ts). */
export const goExp: (x: number) => number = HOST_GO_EXP_FMA ? goExpFma : goExpSse;

/** Go's math.Max: +Inf before NaN (Max(NaN, +Inf) is +Inf, where Math.max answers NaN), then NaN, then +0 over -0. */
export function goMax(x: number, y: number): number {
  if (x === Infinity || y === Infinity) return Infinity;
  return Math.max(x, y);
}

/** Go's math.Min: -Inf before NaN (Min(NaN, -Inf) is -Inf, where Math.min answers NaN), then NaN, then -0 under +0. */
export function goMin(x: number, y: number): number {
  if (x === -Infinity || y === -Infinity) return -Infinity;
  return Math.min(x, y);
}
