/**
 * Number columns: the smallest exact kind for a column of numbers (DECIMAL_K, PACKED, XOR,
 * FLOAT64; docs/format.md, "Column"), for columns.ts and for the payload encoder's blocks of
 * numbers (encodeNumberColumns: every column of a block, runs of one- and two-value columns
 * in one loop). Decimal scaling finds each column's smallest exact exponent (decimalExponent,
 * the last one found tried first: guessExponent); columns of three or more are scaled,
 * counted for the PACKED planner and sized in one pass (packed-plan.ts scaleCounted).
 * Pure; scratch typed arrays are reused.
 */
import type { Value } from '../../protocol/value.js';
import { putSvar, type ByteWriter } from './bytes.js';
import { encodeXorColumn, xorColumnBits } from './xor-float.js';
import { encodePacked } from './packed-int.js';
import { planPacked, scaleCounted, type PackedPlan } from './packed-plan.js';
import { ColumnKind, LITTLE_ENDIAN, POW10, VARINT_BYTES_MAX } from './column-kinds.js';
import { SHORT_SCALED_ABS_LIMIT, decimalExponent, exponentOf, exponentScaled, guessK, holdable, shortExponent } from './decimal-exponent.js';

// Number columns are copied here once, so that each candidate kind reads a typed array;
// `scaled` holds their scaled integers when the column is decimal.
let nums = new Float64Array(1024);
let scaled = new Float64Array(1024);
const plan: PackedPlan = { order: 0, width: 0, exceptions: 0, bytes: 0 };

function varintBytes(z: number): number {
  if (z < 0x80) return 1;
  if (z < 0x4000) return 2;
  if (z < 0x200000) return 3;
  if (z < 0x10000000) return 4;
  let n = 4;
  for (let x = Math.floor(z / 0x10000000); x > 0; x = Math.floor(x / 128)) n++;
  return n;
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

/**
 * A column of any values read through `order` as numbers: encoded and its kind returned
 * when every value is a number, else -1 with nothing written (the caller writes MSGPACK).
 */
export function encodeValueNumbers(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  const n = to - from;
  growNums(n);
  const ns = nums;
  for (let i = 0; i < n; i++) {
    const v = vals[order[from + i] as number];
    if (typeof v !== 'number') return -1;
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
