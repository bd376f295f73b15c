/**
 * One column of a batch payload: the values of one path within a block (docs/format.md,
 * "Column"). The writer picks the smallest kind that is exact; column-decode.ts reads every
 * kind ever written.
 */
import type { Value } from '../../protocol/value.js';
import { MsgpackWriter } from '../../protocol/value-msgpack.js';
import { putSvar, type ByteWriter } from './bytes.js';
import { encodeXorColumn, xorColumnBits } from './xor-float.js';
import { encodePacked } from './packed-int.js';
import { planPacked, scaleCounted, type PackedPlan } from './packed-plan.js';

import { ColumnKind, DECIMAL_EXPONENT_MAX, LITTLE_ENDIAN, POW10, VARINT_BYTES_MAX } from './column-kinds.js';

export { ColumnKind } from './column-kinds.js';
export { decodeColumn, decodeColumnBody, decodeColumnBodyF64, decodeColumnF64, skipColumn, skipColumnBody } from './column-decode.js';

/** Scaled integers stay within 2^51 so that their deltas stay exact within 2^52. */
const SCALED_ABS_MAX = 2 ** 51;

// Non-number columns hold values in the msgpack form of protocol/value-msgpack.ts, exact
// for every value (lone surrogates, `__proto__` keys, nested -0, bigints). Columns written
// by msgpackr before it decode the same way: standard msgpack, WTF-8 surrogates included.
const columnWriter = new MsgpackWriter();
// Number columns are copied here once, so that each candidate kind reads a typed array;
// `scaled` holds their scaled integers when the column is decimal.
let nums = new Float64Array(1024);
let scaled = new Float64Array(1024);
const plan: PackedPlan = { order: 0, width: 0, exceptions: 0, bytes: 0 };

/** Exponents tried before decimalExponent's k = 9 rejection test: most decimals have so few. */
const FEW_DECIMALS = 3;
/** The scaled value decimalExponent found its exponent with (valid when it returned k >= 1). */
let exponentScaled = 0;

function decimalExponent(v: number): number {
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

function varintBytes(z: number): number {
  if (z < 0x80) return 1;
  if (z < 0x4000) return 2;
  if (z < 0x200000) return 3;
  if (z < 0x10000000) return 4;
  let n = 4;
  for (let x = Math.floor(z / 0x10000000); x > 0; x = Math.floor(x / 128)) n++;
  return n;
}

/** A scaled integer DECIMAL can hold: within SCALED_ABS_MAX and not -0 (nor ±Inf, NaN). */
function holdable(s: number): boolean {
  return Math.abs(s) <= SCALED_ABS_MAX && !(s === 0 && 1 / s < 0);
}

/**
 * Scales nums[0, n) at exponent k into `scaled` and returns the DECIMAL_K size (kind byte
 * included), or -1 when a value does not round-trip there or is not holdable (a large
 * integer next to a fine decimal: 486164504320 x 10^9).
 */
function rescale(n: number, k: number): number {
  const p = POW10[k] as number;
  let bytes = 1;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = nums[i] as number;
    const s = Math.round(v * p);
    if (s / p !== v || !holdable(s)) return -1;
    scaled[i] = s;
    const d = s - prev;
    bytes += varintBytes(d >= 0 ? d * 2 : -d * 2 - 1);
    prev = s;
  }
  return bytes;
}

/** Writes scaled[0, n) as the body of DECIMAL_K + k (varint deltas). */
function writeDecimal(w: ByteWriter, n: number): void {
  w.ensure(VARINT_BYTES_MAX * n);
  const b = w.buf;
  let p = w.pos;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const s = scaled[i] as number;
    p = putSvar(b, p, s - prev);
    prev = s;
  }
  w.pos = p;
}

/** Writes vals[order[from]], ..., vals[order[to - 1]] as one column of the smallest exact kind. */
export function encodeColumn(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): void {
  w.u8(0);
  const at = w.pos - 1;
  const kind = encodeColumnBody(w, vals, order, from, to);
  w.buf[at] = kind;
}

/**
 * encodeColumn without the kind byte: writes the body and returns the kind (layout 2 keeps
 * kinds apart from bodies). A Float64Array of values takes the typed path (no type checks,
 * nothing boxed).
 */
export function encodeColumnBody(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  if (vals instanceof Float64Array) return encodeNumberColumnBody(w, vals, order, from, to);
  const n = to - from;
  growNums(n);
  const ns = nums;
  for (let i = 0; i < n; i++) {
    const v = vals[order[from + i] as number];
    if (typeof v !== 'number') return writeMsgpack(w, vals, order, from, to);
    ns[i] = v;
  }
  return encodeNums(w, n);
}

/** encodeColumnBody of numbers held in a Float64Array (the block builder's unboxed values). */
export function encodeNumberColumnBody(w: ByteWriter, vals: Float64Array, order: Uint32Array, from: number, to: number): number {
  const n = to - from;
  if (n <= 2 && n >= 1) {
    const kind = encodeShortDecimal(w, vals, order, from, n);
    if (kind >= 0) return kind;
  } else if (n >= 3) {
    const kind = encodeCounted(w, vals, order, from, n);
    if (kind >= 0) return kind;
  }
  growNums(n);
  const ns = nums;
  for (let i = 0; i < n; i++) ns[i] = vals[order[from + i] as number] as number;
  return encodeNums(w, n);
}

/**
 * encodeNums of a column of 3 or more numbers that are all decimal at the first one's
 * exponent, within scaleCounted's bound, with its scaling, planning and DECIMAL_K size in
 * one pass (packed-plan.ts scaleCounted) and nothing gathered first. Returns the kind, or
 * -1 with nothing written when the column needs encodeNums (a larger exponent later, not
 * decimal, values past the bound).
 */
function encodeCounted(w: ByteWriter, vals: Float64Array, order: Uint32Array, from: number, n: number): number {
  // scaleDecimal's first value: an integer within range at k = 0, else decimalExponent's.
  const v0 = vals[order[from] as number] as number;
  let k = shortExponent(v0);
  if (k < 0) return -1;
  let s0 = exponentScaled;
  growNums(n);
  let dec = scaleCounted(vals, order, from, n, k, s0, scaled, plan);
  while (dec < -1) {
    // scaleDecimal's value that is not exact at k: at its own exponent, when larger, every
    // value is scaled again (rescale: Math.round, holdable; the first here, the rest in the
    // next pass, whose test gives the same s or declines), else the column is not decimal.
    const e = exponentOf(vals[order[from - 1 - dec] as number] as number);
    if (e <= k) return -1;
    k = e;
    const p = POW10[k] as number;
    s0 = Math.round(v0 * p);
    if (!(s0 / p === v0 && holdable(s0))) return -1;
    dec = scaleCounted(vals, order, from, n, k, s0, scaled, plan);
  }
  if (dec < 0) return -1;
  if (plan.bytes >= dec) {
    writeDecimal(w, n);
    return ColumnKind.DECIMAL_K + k;
  }
  encodePacked(w, scaled, n, plan);
  return ColumnKind.PACKED + 16 * plan.order + k;
}

/**
 * A column of one or two numbers that scaleDecimal finds decimal at its first value's
 * exponent, written here as encodeNums would (DECIMAL_K: n < 3 never plans PACKED) without
 * its scratch copies (a block of many paths holds thousands of such columns). Returns the
 * kind, or -1 with nothing written when the column needs encodeNums.
 */
function encodeShortDecimal(w: ByteWriter, vals: Float64Array, order: Uint32Array, from: number, n: number): number {
  const v0 = vals[order[from] as number] as number;
  let k = 0;
  let s0 = Math.round(v0);
  if (s0 !== v0 || !holdable(s0)) {
    k = decimalExponent(v0);
    if (k <= 0) return -1;
    s0 = exponentScaled;
  }
  let s1 = 0;
  if (n === 2) {
    const v1 = vals[order[from + 1] as number] as number;
    if (k === 0) {
      s1 = Math.round(v1);
      if (s1 !== v1 || !holdable(s1)) return -1;
    } else {
      const p = POW10[k] as number;
      s1 = Math.round(v1 * p);
      if (s1 / p !== v1 || !holdable(s1)) return -1;
    }
  }
  w.ensure(2 * VARINT_BYTES_MAX);
  let at = putSvar(w.buf, w.pos, s0);
  if (n === 2) at = putSvar(w.buf, at, s1 - s0);
  w.pos = at;
  return ColumnKind.DECIMAL_K + k;
}

/**
 * Every column of a block of numbers (the block builder's Float64Array): column c is
 * vals[order[colStart[c]]], ..., vals[order[colStart[c + 1] - 1]]; its kind goes to
 * w.buf[kindsAt + c], its body after what `w` holds. Runs of short columns (1 or 2 values,
 * a block over many paths holds thousands) go through shortColumns, the rest one by one.
 */
export function encodeNumberColumns(w: ByteWriter, vals: Float64Array, order: Uint32Array, colStart: Uint32Array, nc: number, kindsAt: number): void {
  let c = 0;
  while (c < nc) {
    const from = colStart[c] as number;
    const to = colStart[c + 1] as number;
    if (to - from <= 2) {
      c = shortColumns(w, vals, order, colStart, c, nc, kindsAt);
      w.pos = shortColumnsEnd;
      continue;
    }
    const kind = encodeNumberColumnBody(w, vals, order, from, to);
    w.buf[kindsAt + c] = kind; // after the call: it may grow w.buf
    c++;
  }
}

/** Short columns' scaled values are checked against this bound (see shortColumns). */
const SHORT_SCALED_ABS_LIMIT = 2 ** 50;
/** The exponent of the last decimal found by decimalExponent: the first one tried for the next. */
let guessK = 0;
/**
 * Values found below guessK by descending (guessExponent) since its last plain hit there:
 * after this many the guess itself moves down (data of fewer places than the guess costs a
 * multiplication more each). Only speed depends on the guess, never the answer.
 */
const GUESS_DESCENTS_MAX = 16;
let descents = 0;

/**
 * Encodes columns c, c + 1, ... while they hold 1 or 2 numbers that are decimal at the first
 * value's exponent (or, for two, both at the second's, when larger), exactly as
 * encodeNumberColumnBody does, in one loop with the writer's buffer and position held
 * locally. Returns the first column not done (a longer one, or one that needs
 * encodeNumberColumnBody, which is done here). Why each test gives the general path's answer
 * is written beside it; test/codec-short-columns.test.ts and test/encode-identity.test.ts
 * compare both on hostile and random columns.
 */
function shortColumns(w: ByteWriter, vals: Float64Array, order: Uint32Array, colStart: Uint32Array, c: number, nc: number, kindsAt: number): number {
  let buf = w.buf;
  let p = w.pos;
  let gk = guessK;
  let pg = POW10[gk] as number;
  for (; c < nc; c++) {
    const from = colStart[c] as number;
    const n = (colStart[c + 1] as number) - from;
    if (n > 2) break;
    const v0 = vals[order[from] as number] as number;
    // scaleDecimal's first value: an integer within range at k = 0, else decimalExponent's;
    // the guess's plain hit (exact, not a multiple of 10: guessExponent) tried here first.
    let k = -1;
    let s0 = Math.floor(v0 * pg + 0.5);
    const q0 = s0 * 0.1;
    if (gk > 0 && s0 / pg === v0 && s0 < SHORT_SCALED_ABS_LIMIT && s0 > -SHORT_SCALED_ABS_LIMIT && q0 !== Math.floor(q0)) {
      k = gk;
    } else {
      k = shortExponent(v0);
      s0 = exponentScaled;
      gk = guessK;
      pg = POW10[gk] as number;
    }
    let s1 = 0;
    let ok = k >= 0;
    if (ok && n === 2) {
      const v1 = vals[order[from + 1] as number] as number;
      if (k === 0) {
        s1 = Math.floor(v1);
        ok = s1 === v1 && holdable(s1);
      } else {
        // Math.round as scaleDecimal when exact within 2^50; -0 is not holdable (0 / 10^k === -0).
        const pk = POW10[k] as number;
        s1 = Math.floor(v1 * pk + 0.5);
        ok = s1 / pk === v1 && s1 < SHORT_SCALED_ABS_LIMIT && s1 > -SHORT_SCALED_ABS_LIMIT && (s1 !== 0 || 1 / v1 > 0);
      }
      if (!ok) {
        // scaleDecimal's second value at a larger exponent: both rescaled there (rescale).
        const e = shortExponent(v1);
        if (e > k) {
          const pe = POW10[e] as number;
          s0 = Math.round(v0 * pe);
          s1 = Math.round(v1 * pe);
          ok = s0 / pe === v0 && holdable(s0) && s1 / pe === v1 && holdable(s1);
          k = e;
        }
      }
    }
    if (!ok) {
      // Not decimal at one exponent (XOR, FLOAT64), or a value past 2^50 here: the general
      // path (the same bytes).
      w.pos = p;
      const kind = encodeNumberColumnBody(w, vals, order, from, from + n);
      buf = w.buf; // grown, maybe
      buf[kindsAt + c] = kind;
      p = w.pos;
      continue;
    }
    if (p + 2 * VARINT_BYTES_MAX > buf.length) {
      w.pos = p;
      w.ensure(2 * VARINT_BYTES_MAX);
      buf = w.buf;
    }
    if (s0 < SMALL_SCALED_ABS_LIMIT && s0 > -SMALL_SCALED_ABS_LIMIT && s1 < SMALL_SCALED_ABS_LIMIT && s1 > -SMALL_SCALED_ABS_LIMIT) {
      p = putSvarSmall(buf, p, s0);
      if (n === 2) p = putSvarSmall(buf, p, s1 - s0);
    } else {
      p = putSvar(buf, p, s0);
      if (n === 2) p = putSvar(buf, p, s1 - s0);
    }
    buf[kindsAt + c] = ColumnKind.DECIMAL_K + k;
  }
  shortColumnsEnd = p;
  return c;
}

/**
 * Where shortColumns' last body ends (the caller sets the writer's position: a store to the
 * writer after the loop, which its first call's on-stack optimisation has not seen run,
 * would throw that code away at every later call that enters it).
 */
let shortColumnsEnd = 0;

/**
 * Scaled values within this bound, and their differences, zigzag below 2^21: putSvarSmall
 * writes them. (Two-place decimals up to ±5 242.88; most short columns.)
 */
const SMALL_SCALED_ABS_LIMIT = 1 << 19;

/**
 * putSvar of an integer within ±2^20 (zigzagged below 2^21: 1 to 3 varint bytes) without a
 * branch: three bytes are stored and the position moves by the varint's length (the bytes
 * past it are overwritten by what follows; the caller ensured room for 16). The branches of
 * putUvar on the length mispredict on columns of varied magnitudes: half the cost of a
 * mixed block's short columns.
 */
function putSvarSmall(buf: Uint8Array, p: number, s: number): number {
  const z = (s << 1) ^ (s >> 31);
  const more1 = (0x7f - z) >>> 31; // 1 when z >= 2^7: a second byte
  const more2 = (0x3fff - z) >>> 31; // 1 when z >= 2^14: a third
  buf[p] = (z & 0x7f) | (more1 << 7);
  buf[p + 1] = ((z >>> 7) & 0x7f) | (more2 << 7);
  buf[p + 2] = z >>> 14;
  return p + 1 + more1 + more2;
}

/**
 * scaleDecimal's exponent for a column's first value (exponentScaled its scaled value): 0
 * for an integer within range (not -0), else decimalExponent's answer (-1: not decimal).
 */
function shortExponent(v: number): number {
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
function exponentOf(v: number): number {
  const g = guessExponent(v);
  if (g > 0) return g;
  const k = decimalExponent(v);
  if (k > 0) guessK = k;
  return k;
}

function growNums(n: number): void {
  if (nums.length < n) {
    nums = new Float64Array(Math.max(n, nums.length * 2));
    scaled = new Float64Array(nums.length);
  }
}

/** Writes the body of nums[0, n) in the smallest exact kind and returns the kind. */
function encodeNums(w: ByteWriter, n: number): number {
  const dec = scaleDecimal(n);
  if (dec >= 0) {
    const k = decimalK;
    // Decimal columns: DECIMAL or PACKED, whichever is smaller (XOR rarely beats them and
    // would cost an encode per column).
    if (n >= 3) planPacked(scaled, n, plan);
    if (n < 3 || plan.bytes >= dec) {
      writeDecimal(w, n);
      return ColumnKind.DECIMAL_K + k;
    }
    encodePacked(w, scaled, n, plan);
    return ColumnKind.PACKED + 16 * plan.order + k;
  }
  const xorBytes = Math.ceil(xorColumnBits(nums, 0, n) / 8);
  if (varintBytes(xorBytes) + xorBytes < 8 * n) {
    encodeXorColumn(w, nums, 0, n);
    return ColumnKind.XOR;
  }
  w.ensure(8 * n);
  if (LITTLE_ENDIAN) w.buf.set(new Uint8Array(nums.buffer, 0, 8 * n), w.pos);
  else for (let i = 0; i < n; i++) w.view.setFloat64(w.pos + 8 * i, nums[i] as number, true);
  w.pos += 8 * n;
  return ColumnKind.FLOAT64;
}

/** The exponent scaleDecimal settled on (valid when it returned a size). */
let decimalK = 0;

/**
 * Scales nums[0, n) into `scaled` at the smallest exponent that keeps every value exact and
 * returns the DECIMAL_K size (kind byte included), or -1 when the column is not decimal.
 * Each value is scaled at the column's exponent so far; one that needs a larger exponent
 * rescales the values before it (at most 9 times a column).
 */
function scaleDecimal(n: number): number {
  const ns = nums;
  const sc = scaled;
  let k = 0;
  let p = 1;
  let dec = 1;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = ns[i] as number;
    let s: number;
    let exact: boolean;
    if (k === 0) {
      // v x 1 and s / 1 are v and s exactly: no division; Math.floor(v) === v is
      // Math.round(v) === v (and cheaper).
      s = Math.floor(v);
      exact = s === v && holdable(s);
    } else {
      // floor(x + 0.5) is Math.round(x) for an exact s within 2^50 (shortColumns says why;
      // -0 is not holdable); the rest are tried again as before, with Math.round.
      s = Math.floor(v * p + 0.5);
      exact = s / p === v && s < SHORT_SCALED_ABS_LIMIT && s > -SHORT_SCALED_ABS_LIMIT && (s !== 0 || 1 / v > 0);
      if (!exact) {
        s = Math.round(v * p);
        exact = s / p === v && holdable(s);
      }
    }
    if (!exact) {
      const e = exponentOf(v);
      if (e <= k) return -1; // not a decimal, or exact at k but out of range there
      k = e;
      p = POW10[k] as number;
      if (i === 0) {
        // rescale(1, k) would scale v at k again: decimalExponent's scaled value, holdable
        // (within range, and not -0: a scaled -0 is exact only for v = -0, an integer).
        const r = exponentScaled;
        sc[0] = r;
        dec = 1 + varintBytes(r >= 0 ? r * 2 : -r * 2 - 1);
      } else {
        dec = rescale(i + 1, k);
        if (dec < 0) return -1;
      }
      prev = sc[i] as number;
      continue;
    }
    sc[i] = s;
    const d = s - prev;
    dec += varintBytes(d >= 0 ? d * 2 : -d * 2 - 1);
    prev = s;
  }
  decimalK = k;
  return dec;
}

function writeMsgpack(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  const lenAt = w.pos;
  w.ensure(5);
  w.pos += 5; // fixed 5-byte varint slot for the byte length, patched below
  const begin = w.pos;
  columnWriter.reset();
  for (let i = from; i < to; i++) columnWriter.value(vals[order[i] as number] as Value);
  w.bytes(columnWriter.written());
  let len = w.pos - begin;
  for (let j = 0; j < 5; j++) {
    w.buf[lenAt + j] = (len & 0x7f) | (j < 4 ? 0x80 : 0);
    len >>>= 7;
  }
  return ColumnKind.MSGPACK;
}
