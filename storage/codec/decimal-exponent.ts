/**
 * The decimal exponent of a number: the smallest k <= 9 at which v x 10^k rounds to an
 * integer that divides back to v exactly (docs/format.md, "Column": DECIMAL_K and PACKED
 * carry scaled integers), with the scaled integer (exponentScaled). The last exponent found
 * is tried first (guessExponent); only speed depends on it, never the answer. Pure.
 */
import { DECIMAL_EXPONENT_MAX, POW10 } from './column-kinds.js';

/** Scaled integers stay within 2^51 so that their deltas stay exact within 2^52. */
const SCALED_ABS_MAX = 2 ** 51;

/** Exponents tried before decimalExponent's k = 9 rejection test: most decimals have so few. */
const FEW_DECIMALS = 3;
/** The scaled value of the last exponent found (after decimalExponent or guessExponent returned k >= 1, shortExponent k >= 0). */
export let exponentScaled = 0;

export function decimalExponent(v: number): number {
  if (Number.isInteger(v)) return Math.abs(v) <= SCALED_ABS_MAX && !Object.is(v, -0) ? 0 : -1;
  if (v !== v || v === Infinity || v === -Infinity) return -1;
  // Values of a few decimals first: below 2e6, one exact at some k <= 9 also passes the
  // k = 9 test below (v x 10^9 is within 0.35 of the integer r x 10^(9 - k), < 2^51), so
  // trying them before it gives the same answer with one test fewer.
  for (let k = 1; k <= FEW_DECIMALS; k++) {
    const p = POW10[k] as number;
    const r = Math.round(v * p);
    if (r / p === v) return exponentFound(r, k);
  }
  // Fast rejection of arbitrary doubles: below ~2e6, a value exact at some k <= 9 also
  // round-trips at k = 9 (the scaled product stays far under 2^52), so one test suffices.
  if (Math.abs(v) < 2e6) {
    const p9 = POW10[DECIMAL_EXPONENT_MAX] as number;
    if (Math.round(v * p9) / p9 !== v) return -1;
  }
  for (let k = FEW_DECIMALS + 1; k <= DECIMAL_EXPONENT_MAX; k++) {
    const p = POW10[k] as number;
    const r = Math.round(v * p);
    if (r / p === v) return exponentFound(r, k);
  }
  return -1;
}

function exponentFound(r: number, k: number): number {
  exponentScaled = r;
  return Math.abs(r) <= SCALED_ABS_MAX ? k : -1;
}

/** A scaled integer DECIMAL can hold: within SCALED_ABS_MAX and not -0 (nor ±Inf, NaN). */
export function holdable(s: number): boolean {
  return Math.abs(s) <= SCALED_ABS_MAX && !(s === 0 && 1 / s < 0);
}

/** Short columns' scaled values are checked against this bound (see shortColumns). */
export const SHORT_SCALED_ABS_LIMIT = 2 ** 50;
/** The exponent of the last decimal found by decimalExponent: the first one tried for the next. */
export let guessK = 0;
/**
 * Values found below guessK by descending (guessExponent) since its last plain hit there:
 * after this many the guess itself moves down (data of fewer places than the guess costs a
 * multiplication more each). Only speed depends on the guess, never the answer.
 */
const GUESS_DESCENTS_MAX = 16;
let descents = 0;

/**
 * scaleDecimal's exponent for a column's first value (exponentScaled its scaled value): 0
 * for an integer within range (not -0), else decimalExponent's answer (-1: not decimal).
 */
export function shortExponent(v: number): number {
  const k = guessExponent(v);
  if (k > 0) return k;
  // floor(v) === v is Math.round(v) === v (and cheaper).
  const s = Math.floor(v);
  if (s === v) {
    exponentScaled = s;
    return holdable(s) ? 0 : -1; // decimalExponent of an integer out of range (or -0) is -1 too
  }
  const e = decimalExponent(v);
  if (e > 0) guessK = e;
  return e;
}

/**
 * decimalExponent's answer found from the guess (the last exponent decimalExponent found),
 * with exponentScaled, or 0 when the guess does not tell. r = round(v x 10^k), exact
 * (r / 10^k === v), |r| < 2^50 and not a multiple of 10 is decimalExponent's answer, its
 * smallest exact exponent: were v exact at some j < k (or an integer), v x 10^k would be
 * within 0.3 of r_j x 10^(k - j) (v's rounding and the product's each err by at most 2^-52
 * of it), so r would be that multiple of 10. r x 0.1 is an integer exactly when r is a
 * multiple of 10 (|r| < 2^50; r % 10 of a double is a call to fmod), and is then r / 10
 * exactly; r / 10^k and (r / 10) / 10^(k - 1) are the same number, rounded the same, so v is
 * exact at k - 1 too, and the test goes on there (a two-place guess for a one-place value
 * costs a multiplication, not decimalExponent's divisions). Down to k = 0, v is an integer:
 * 0, for the caller's integer test. floor(x + 0.5) is Math.round(x) here (and cheaper): an
 * exact r is within 1/4 of x.
 */
function guessExponent(v: number): number {
  const gk = guessK;
  if (gk === 0) return 0;
  const pg = POW10[gk] as number;
  let r = Math.floor(v * pg + 0.5);
  if (!(r / pg === v && r < SHORT_SCALED_ABS_LIMIT && r > -SHORT_SCALED_ABS_LIMIT)) return 0;
  let k = gk;
  let q = r * 0.1;
  while (q === Math.floor(q)) {
    if (k === 1) return 0;
    k--;
    r = q;
    q = r * 0.1;
  }
  exponentScaled = r;
  if (k === gk) descents = 0;
  else if (++descents >= GUESS_DESCENTS_MAX) {
    guessK = k;
    descents = 0;
  }
  return k;
}

/** decimalExponent(v) (and its exponentScaled), the last exponent found tried first (guessExponent). */
export function exponentOf(v: number): number {
  const g = guessExponent(v);
  if (g > 0) return g;
  const k = decimalExponent(v);
  if (k > 0) guessK = k;
  return k;
}
