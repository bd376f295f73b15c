/**
 * The trigonometric and hyperbolic functions as Prometheus computes them: Go's math package
 * (the Cephes polynomials for sin, cos, tan and atan, FreeBSD msun's for log1p, asinh, acosh
 * and atanh; pure Go on amd64, no fused multiply-add), operation for operation, so that an
 * answer is Prometheus' to the bit where JavaScript's Math differs in the last bits, and where
 * it differs by more: `cosh(710)` and `sinh(710)` are +Inf in Prometheus (Go's amd64 Exp
 * overflows from about 709.436), 1.117e308 in JavaScript. sinh, cosh and tanh call Go's
 * amd64 Exp (goexp.ts, on this host's path). Pure.
 */
import { goExp, goLog } from './gomath.js';

const HALF_PI = Math.PI / 2;
const QUARTER_PI = Math.PI / 4;
/**
 * 4/π and 3π/4 rounded once, as Go's exact constant arithmetic gives them (0x3ff45f306dc9c883,
 * 0x4002d97c7f3321d2); computing them from Math.PI rounds twice yet lands on the same
 * doubles (test/promql-goexp.test.ts checks the bits).
 */
export const FOUR_OVER_PI = 4 / Math.PI;
export const THREE_QUARTER_PI = (3 * Math.PI) / 4;

// π/4 in three parts whose products with an integer below 2^30 are exact (Cody and Waite).
const PI4_A = 0.7853981256484985;
const PI4_B = 3.774894707930798e-8;
const PI4_C = 2.6951514290790595e-15;
/** From here on the three-part reduction loses bits: Payne and Hanek's reduction takes over. */
const REDUCE_FROM = 2 ** 29;

const SIN = [1.5896230157654656e-10, -2.5050747762857807e-8, 2.7557313621385722e-6, -0.0001984126982958954, 0.008333333333322118, -0.1666666666666663] as const;
const COS = [-1.1358536521387682e-11, 2.087570084197473e-9, -2.755731417929674e-7, 2.4801587288851704e-5, -0.0013888888888873056, 0.041666666666666595] as const;

/** 4/π in binary, 64 bits a word after a leading 1: enough bits for the largest exponent. */
const FOUR_OVER_PI_WORDS = [
  0x0000000000000001n, 0x45f306dc9c882a53n, 0xf84eafa3ea69bb81n, 0xb6c52b3278872083n, 0xfca2c757bd778ac3n,
  0x6e48dc74849ba5c0n, 0x0c925dd413a32439n, 0xfc3bd63962534e7dn, 0xd1046bea5d768909n, 0xd338e04d68befc82n,
  0x7323ac7306a673e9n, 0x3908bf177bf25076n, 0x3ff12fffbc0b301fn, 0xde5e2316b414da3en, 0xda6cfd9e4f96136en,
  0x9e8c7ecd3cbfd45an, 0xea4f758fd7cbe2f6n, 0x7a0e73ef14a525d4n, 0xd7f6bf623f1aba10n, 0xac06608df8f6d757n,
];
const U64 = (1n << 64n) - 1n;
/** Go's shifts of a uint64: by 64 or more (or by a negative count made a huge uint) is 0. */
const shiftLeft = (a: bigint, n: number): bigint => (n < 0 || n >= 64 ? 0n : (a << BigInt(n)) & U64);
const shiftRight = (a: bigint, n: number): bigint => (n < 0 || n >= 64 ? 0n : a >> BigInt(n));
const view = new DataView(new ArrayBuffer(8));

/**
 * Payne-Hanek reduction of x ≥ 2^29 by π/4: the octant (0..7, mapped to an even one) and
 * the remainder in radians, from x's 53-bit integer times the three 64-bit words of 4/π
 * that line up with its exponent, keeping the product's top 128 bits (Go's trigReduce).
 */
function payneHanek(x: number): [number, number] {
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn) - 1023 - 52;
  const mant = (bits & 0xfffffffffffffn) | (1n << 52n);
  const digit = Math.floor((exp + 61) / 64);
  const shift = (exp + 61) % 64;
  const word = (i: number): bigint => FOUR_OVER_PI_WORDS[i] ?? 0n;
  const join = (i: number): bigint => shiftLeft(word(i), shift) | shiftRight(word(i + 1), 64 - shift);
  const z0 = join(digit);
  const z1 = join(digit + 1);
  const z2 = join(digit + 2);
  const p2hi = (z2 * mant) >> 64n;
  const p1 = z1 * mant;
  const lowSum = (p1 & U64) + p2hi;
  const lo = lowSum & U64;
  let hi = ((z0 * mant) + (p1 >> 64n) + (lowSum >> 64n)) & U64;
  let j = Number(hi >> 61n);
  hi = ((hi << 3n) | (lo >> 61n)) & U64;
  // The fraction's leading one, then its 52 bits below it, as a float in [0, 1).
  const lz = hi === 0n ? 64 : 64 - hi.toString(2).length;
  const e = BigInt(1023 - (lz + 1));
  hi = (shiftLeft(hi, lz + 1) | shiftRight(lo, 64 - (lz + 1))) >> 12n;
  view.setBigUint64(0, hi | (e << 52n));
  let z = view.getFloat64(0);
  if ((j & 1) === 1) {
    j = (j + 1) & 7;
    z--;
  }
  return [j, z * QUARTER_PI];
}

/** The octant of |x| (even) and x's remainder against it, by Cody-Waite below 2^29. */
function reduce(x: number): [number, number] {
  if (x >= REDUCE_FROM) return payneHanek(x);
  let j = Math.trunc(x * FOUR_OVER_PI);
  let y = j;
  if ((j & 1) === 1) {
    j++;
    y++;
  }
  return [j & 7, ((x - y * PI4_A) - y * PI4_B) - y * PI4_C];
}

const sinPoly = (z: number, zz: number): number => z + z * zz * ((((((SIN[0] * zz) + SIN[1]) * zz + SIN[2]) * zz + SIN[3]) * zz + SIN[4]) * zz + SIN[5]);
const cosPoly = (zz: number): number => 1.0 - 0.5 * zz + zz * zz * ((((((COS[0] * zz) + COS[1]) * zz + COS[2]) * zz + COS[3]) * zz + COS[4]) * zz + COS[5]);

export function goSin(x: number): number {
  if (x === 0 || Number.isNaN(x)) return x;
  if (!Number.isFinite(x)) return NaN;
  let negative = x < 0;
  const [j0, z] = reduce(Math.abs(x));
  let j = j0;
  if (j > 3) {
    negative = !negative;
    j -= 4;
  }
  const zz = z * z;
  const y = j === 1 || j === 2 ? cosPoly(zz) : sinPoly(z, zz);
  return negative ? -y : y;
}

export function goCos(x: number): number {
  if (!Number.isFinite(x)) return NaN;
  let negative = false;
  const [j0, z] = reduce(Math.abs(x));
  let j = j0;
  if (j > 3) {
    j -= 4;
    negative = !negative;
  }
  if (j > 1) negative = !negative;
  const zz = z * z;
  const y = j === 1 || j === 2 ? sinPoly(z, zz) : cosPoly(zz);
  return negative ? -y : y;
}

const TAN_P = [-13093.693918138379, 1153516.6483858742, -17956525.197648488] as const;
const TAN_Q = [13681.296347069296, -1320892.3444021097, 25008380.18233579, -53869575.592945464] as const;

export function goTan(x: number): number {
  if (x === 0 || Number.isNaN(x)) return x;
  if (!Number.isFinite(x)) return NaN;
  const [j, z] = reduce(Math.abs(x));
  const zz = z * z;
  let y = zz > 1e-14 ? z + z * (zz * (((TAN_P[0] * zz) + TAN_P[1]) * zz + TAN_P[2]) / ((((zz + TAN_Q[0]) * zz + TAN_Q[1]) * zz + TAN_Q[2]) * zz + TAN_Q[3])) : z;
  if ((j & 2) === 2) y = -1 / y;
  return x < 0 ? -y : y;
}

/** atan on [0, 0.66]: x + x·z·P(z)/Q(z), z = x². */
function atanKernel(x: number): number {
  const z = x * x;
  const r = z * ((((-0.8750608600031904 * z + -16.157537187333652) * z + -75.00855792314705) * z + -122.88666844901361) * z + -64.85021904942025)
    / (((((z + 24.858464901423062) * z + 165.02700983169885) * z + 432.88106049129027) * z + 485.3903996359137) * z + 194.5506571482614);
  return x * r + x;
}

/** π/2 = HALF_PI + this, the bits a double of π/2 leaves out. */
const HALF_PI_REST = 6.123233995736766e-17;
/** tan(3π/8). */
const TAN_3PI_8 = 2.414213562373095;

/** atan of x ≥ 0, brought into [0, 0.66] by one of two identities. */
function atanPositive(x: number): number {
  if (x <= 0.66) return atanKernel(x);
  if (x > TAN_3PI_8) return HALF_PI - atanKernel(1 / x) + HALF_PI_REST;
  return QUARTER_PI + atanKernel((x - 1) / (x + 1)) + 0.5 * HALF_PI_REST;
}

export function goAtan(x: number): number {
  if (x === 0) return x;
  return x > 0 ? atanPositive(x) : -atanPositive(-x);
}

export function goAsin(x: number): number {
  if (x === 0) return x;
  const a = Math.abs(x);
  if (a > 1) return NaN;
  const root = Math.sqrt(1 - a * a);
  const y = a > 0.7 ? HALF_PI - atanPositive(root / a) : atanPositive(a / root);
  return x < 0 ? -y : y;
}

export function goAcos(x: number): number {
  return HALF_PI - goAsin(x);
}

const signed = (magnitude: number, sign: number): number => (sign < 0 || Object.is(sign, -0) ? -magnitude : magnitude);

/** Go's math.Atan2(y, x): the special cases first, in Go's order, then atan(y/x) moved into x's half-plane. */
export function goAtan2(y: number, x: number): number {
  if (Number.isNaN(y) || Number.isNaN(x)) return NaN;
  if (y === 0) return x >= 0 && !Object.is(x, -0) ? signed(0, y) : signed(Math.PI, y);
  if (x === 0) return signed(HALF_PI, y);
  if (x === Infinity) return signed(Number.isFinite(y) ? 0 : QUARTER_PI, y);
  if (x === -Infinity) return signed(Number.isFinite(y) ? Math.PI : THREE_QUARTER_PI, y);
  if (!Number.isFinite(y)) return signed(HALF_PI, y);
  const q = goAtan(y / x);
  if (x < 0) return q <= 0 ? q + Math.PI : q - Math.PI;
  return q;
}

// Where a sign is taken off and put back, -0 stays -0 as in Go (x = -x), and Math.abs would make it +0.

export function goSinh(x: number): number {
  const a = x < 0 ? -x : x;
  let y: number;
  if (a > 21) y = goExp(a) * 0.5;
  else if (a > 0.5) {
    const ex = goExp(a);
    y = (ex - 1 / ex) * 0.5;
  }
  else {
    // Hart and Cheney's 2029, an odd rational function.
    const sq = a * a;
    y = (((-26.30563213397497 * sq + -2894.211355989564) * sq + -89912.72022039509) * sq + -630767.3640497717) * a;
    y = y / (((sq + -173.6789535582337) * sq + 15215.17378790019) * sq + -630767.3640497717);
  }
  return x < 0 ? -y : y;
}

export function goCosh(x: number): number {
  const a = Math.abs(x);
  if (a > 21) return goExp(a) * 0.5;
  const ex = goExp(a);
  return (ex + 1 / ex) * 0.5;
}

/** log(2^127): past half of it tanh is ±1. */
const MAXLOG = 88.02969193111305;

export function goTanh(x: number): number {
  const a = Math.abs(x);
  if (a > 0.5 * MAXLOG) return x < 0 ? -1 : 1;
  if (a >= 0.625) {
    const s = goExp(2 * a);
    const z = 1 - 2 / (s + 1);
    return x < 0 ? -z : z;
  }
  if (x === 0) return x;
  const s = x * x;
  return x + x * s * ((-0.9643991794250523 * s + -99.28772310019185) * s + -1614.6876844170845) / (((s + 112.81167849163293) * s + 2235.4883906010045) * s + 4844.063053251255);
}

const LN2 = 0.6931471805599453;
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
const LP = [0.6666666666666735, 0.3999999999940942, 0.2857142874366239, 0.22222198432149784, 0.1818357216161805, 0.15313837699209373, 0.14798198605116586] as const;

/** Go's math.Log1p (FreeBSD's s_log1p): 1+x = 2^k·(1+f) with a correction for the rounding of 1+x, then log(1+f) by its series in s = f/(2+f). */
export function goLog1p(x: number): number {
  if (x < -1 || Number.isNaN(x)) return NaN;
  if (x === -1) return -Infinity;
  if (x === Infinity) return Infinity;
  const a = Math.abs(x);
  let f = 0;
  let iu = 0n;
  let k = 1;
  if (a < 0.41421356237309503) {
    if (a < 2 ** -29) return a < 2 ** -54 ? x : x - x * x * 0.5;
    if (x > -0.2928932188134525) {
      k = 0;
      f = x;
      iu = 1n;
    }
  }
  let c = 0;
  if (k !== 0) {
    let u: number;
    if (a < 2 ** 53) {
      u = 1.0 + x;
      view.setFloat64(0, u);
      iu = view.getBigUint64(0);
      k = Number(iu >> 52n) - 1023;
      c = k > 0 ? 1.0 - (u - x) : x - (u - 1.0);
      c /= u;
    } else {
      u = x;
      view.setFloat64(0, u);
      iu = view.getBigUint64(0);
      k = Number(iu >> 52n) - 1023;
      c = 0;
    }
    iu &= 0x000fffffffffffffn;
    if (iu < 0x0006a09e667f3bcdn) {
      view.setBigUint64(0, iu | 0x3ff0000000000000n);
    } else {
      k++;
      view.setBigUint64(0, iu | 0x3fe0000000000000n);
      iu = (0x0010000000000000n - iu) >> 2n;
    }
    u = view.getFloat64(0);
    f = u - 1.0;
  }
  const hfsq = 0.5 * f * f;
  if (iu === 0n) {
    if (f === 0) {
      if (k === 0) return 0;
      c += k * LN2_LO;
      return k * LN2_HI + c;
    }
    const r = hfsq * (1.0 - 0.6666666666666666 * f);
    if (k === 0) return f - r;
    return k * LN2_HI - ((r - (k * LN2_LO + c)) - f);
  }
  const s = f / (2.0 + f);
  const z = s * s;
  const r = z * (LP[0] + z * (LP[1] + z * (LP[2] + z * (LP[3] + z * (LP[4] + z * (LP[5] + z * LP[6]))))));
  if (k === 0) return f - (hfsq - s * (hfsq + r));
  return k * LN2_HI - ((hfsq - (s * (hfsq + r) + (k * LN2_LO + c))) - f);
}

export function goAsinh(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = x < 0 ? -x : x;
  let y: number;
  if (a > 2 ** 28) y = goLog(a) + LN2;
  else if (a > 2) y = goLog(2 * a + 1 / (Math.sqrt(a * a + 1) + a));
  else if (a < 2 ** -28) y = a;
  else y = goLog1p(a + a * a / (1 + Math.sqrt(1 + a * a)));
  return x < 0 ? -y : y;
}

export function goAcosh(x: number): number {
  if (x < 1 || Number.isNaN(x)) return NaN;
  if (x === 1) return 0;
  if (x >= 2 ** 28) return goLog(x) + LN2;
  if (x > 2) return goLog(2 * x - 1 / (x + Math.sqrt(x * x - 1)));
  const t = x - 1;
  return goLog1p(t + Math.sqrt(2 * t + t * t));
}

export function goAtanh(x: number): number {
  if (x < -1 || x > 1 || Number.isNaN(x)) return NaN;
  if (x === 1) return Infinity;
  if (x === -1) return -Infinity;
  const a = x < 0 ? -x : x;
  let y: number;
  if (a < 2 ** -28) y = a;
  else if (a < 0.5) {
    const d = a + a;
    y = 0.5 * goLog1p(d + d * a / (1 - a));
  } else y = 0.5 * goLog1p((a + a) / (1 - a));
  return x < 0 ? -y : y;
}
