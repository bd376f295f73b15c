/**
 * Decimal columns (DECIMAL, DECIMAL_K, PACKED; docs/format.md "Column") decoded straight
 * into a Float64Array, for readers that fold numbers and want no Value array (storage/
 * column-block.ts). The numbers are the ones storage/codec decodes, bit for bit: the
 * PACKED layout is read by the codec's own function (packed-int.ts decodePackedF64);
 * DECIMAL's sum is the codec's (columns.ts decodeDecimal), with its
 * checks, writing into typed arrays instead of a Value array.
 */
import type { ByteReader } from './codec/bytes.js';
import { decodePackedF64, integratePackedF64, readPackedResiduals, type PackedHead } from './codec/packed-int.js';
import { EXCEPTIONS_FLAG, FAST_WIDTH_MAX, SCALED_ABS_LIMIT, firstAbs } from './codec/packed-layout.js';
import { ColumnKind, decodeColumnBodyF64, skipColumnBody } from './codec/columns.js';

const DECIMAL_EXPONENT_MAX = 9;
const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, k) => 10 ** k);
const PACKED_END = ColumnKind.PACKED + 3 * 16;

/**
 * r.svar() with one- and two-byte varints (most of a block's) read here: small enough to
 * be inlined into the loops, where a call per value costs more than the value.
 */
export function svar(r: ByteReader): number {
  const b = r.buf;
  const p = r.pos;
  if (p + 1 < r.end) {
    const b0 = b[p] as number;
    if (b0 < 0x80) {
      r.pos = p + 1;
      return (b0 >>> 1) ^ -(b0 & 1);
    }
    const b1 = b[p + 1] as number;
    if (b1 < 0x80) {
      r.pos = p + 2;
      const z = (b0 & 0x7f) | (b1 << 7);
      return (z >>> 1) ^ -(z & 1);
    }
  }
  return r.svar();
}

/** Reads decimal columns. */
export class DecimalColumns {
  /** Decodes the body of a column of kind `kind` into nums[from, from + n) if it is decimal; false (nothing read) otherwise. */
  read(r: ByteReader, kind: number, nums: Float64Array, from: number, n: number): boolean {
    if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
      decodeDecimal(r, nums, from, n, kind - ColumnKind.DECIMAL_K);
      return true;
    }
    if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
      const k = kind & 0x0f;
      if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
      decodePackedF64(r, n, (kind - ColumnKind.PACKED) >> 4, nums, from, POW10[k] as number);
      return true;
    }
    if (kind === ColumnKind.DECIMAL) {
      const k = r.u8();
      if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
      decodeDecimal(r, nums, from, n, k);
      return true;
    }
    return false;
  }

  /**
   * As read, for the column's values [skip, need) only (need <= n): they go to
   * nums[from + skip, from + need) (slots before may hold anything), and r moves past the
   * rest of the body by its extent, as a skipped column's (storage/column-block.ts: a state
   * needs a column's latest value before its position's batch, and that batch's). The
   * values read are the full read's, checked as it checks them; the rest is not decoded
   * (PACKED of order 0 reads only those values), so a refusal there (a PACKED value out of
   * range, non-zero padding) is not seen, as for a skipped column. False (nothing read)
   * for kinds that are not decimal.
   */
  readPrefix(r: ByteReader, kind: number, nums: Float64Array, from: number, n: number, need: number, skip = 0): boolean {
    if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
      decodeDecimal(r, nums, from, need, kind - ColumnKind.DECIMAL_K);
      skipColumnBody(ColumnKind.DECIMAL_K, r, n - need);
      return true;
    }
    if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
      const k = kind & 0x0f;
      if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
      decodePackedPrefixF64(r, n, (kind - ColumnKind.PACKED) >> 4, nums, from, POW10[k] as number, need, skip);
      return true;
    }
    if (kind === ColumnKind.DECIMAL) {
      const k = r.u8();
      if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
      decodeDecimal(r, nums, from, need, k);
      // The exponent is read: the rest is DECIMAL_K's body.
      skipColumnBody(ColumnKind.DECIMAL_K, r, n - need);
      return true;
    }
    return false;
  }
}

/** The general PACKED reader's residuals (grown as needed) and first values. */
let residScratch = new Float64Array(1024);
const prefixHead: PackedHead = { s0: 0, d0: 0 };

/**
 * The first `need` of a PACKED body's n values into nums[from, from + need) (the first
 * `order` are written whatever `need`: the column has room for them), r past the whole
 * body. The usual body (width <= 24, no exceptions) is codec/packed-int-decode.ts
 * decodePackedF64's fused loop stopped at `need`, then a jump over the rest of the bits;
 * one with exceptions is readPackedResiduals stopped at `need` (packedPrefixResiduals);
 * wide residuals (> 24 bits, rare) go through the codec's own readers (all residuals read,
 * the first `need` integrated). Same arithmetic, so the same numbers bit for bit
 * (test/column-prefix.test.ts compares them).
 */
export function decodePackedPrefixF64(r: ByteReader, n: number, order: number, nums: Float64Array, from: number, divisor: number, need: number, skip = 0): void {
  if (order > 2 || order > n) r.fail('packed order out of range');
  const start = r.pos;
  const s0 = order >= 1 ? r.svar() : 0;
  const d0 = order === 2 ? r.svar() : 0;
  const width = r.u8();
  if (width > FAST_WIDTH_MAX) {
    if (residScratch.length < n) residScratch = new Float64Array(Math.max(n, residScratch.length * 2));
    prefixHead.s0 = s0;
    prefixHead.d0 = d0;
    const end = Math.max(need, order);
    if ((width & ~EXCEPTIONS_FLAG) <= FAST_WIDTH_MAX) packedPrefixResiduals(r, residScratch, n, order, width & ~EXCEPTIONS_FLAG, end);
    else {
      r.pos = start;
      readPackedResiduals(r, residScratch, n, order, prefixHead);
    }
    integratePackedF64(r, residScratch, end, order, prefixHead, nums, from, divisor);
    return;
  }
  const bytes = Math.ceil(((n - order) * width) / 8);
  const bitsAt = r.pos;
  if (bitsAt + bytes > r.end) r.fail('truncated packed bits');
  if (order === 0) {
    packedOrder0(r, nums, from, divisor, width, bitsAt + bytes, skip, need);
    return;
  }
  const b = r.buf;
  let p = bitsAt;
  let buf = 0;
  let bits = 0;
  const mask = (1 << width) - 1;
  let maxAbs = firstAbs(s0, d0, order);
  let prev = order === 2 ? s0 + d0 : s0;
  let delta = d0;
  if (order >= 1) nums[from] = s0 / divisor;
  if (order === 2) nums[from + 1] = (s0 + d0) / divisor;
  // Values before `skip` are summed, not stored: a loop of its own (a test in one loop
  // costs more than the stores it saves).
  const lo = Math.max(from + order, from + skip);
  for (let i = from + order; i < lo; i++) {
    while (bits < width) {
      buf = (buf << 8) | (b[p++] as number);
      bits += 8;
    }
    bits -= width;
    const z = (buf >>> bits) & mask;
    buf &= (1 << bits) - 1;
    const v = (z >>> 1) ^ -(z & 1);
    let s: number;
    if (order === 1) s = prev + v;
    else s = prev + (delta += v);
    const abs = s < 0 ? -s : s;
    if (abs > maxAbs) maxAbs = abs;
    prev = s;
  }
  for (let i = lo; i < from + need; i++) {
    while (bits < width) {
      buf = (buf << 8) | (b[p++] as number);
      bits += 8;
    }
    bits -= width;
    const z = (buf >>> bits) & mask;
    buf &= (1 << bits) - 1;
    const v = (z >>> 1) ^ -(z & 1);
    let s: number;
    if (order === 1) s = prev + v;
    else if (order === 2) s = prev + (delta += v);
    else s = v;
    const abs = s < 0 ? -s : s;
    if (abs > maxAbs) maxAbs = abs;
    nums[i] = s / divisor;
    prev = s;
  }
  r.pos = bitsAt + bytes;
  if (!(maxAbs <= SCALED_ABS_LIMIT)) r.fail('packed value out of range');
}

/**
 * Values [skip, need) of an order-0 PACKED body with no exceptions and residuals of at most
 * 24 bits (bits from `bitsAt`, ending at `bitsEnd`): each is its own residual, read where
 * it is (bits are packed high bit first, value after value), none before it.
 */
function packedOrder0(r: ByteReader, nums: Float64Array, from: number, divisor: number, width: number, bitsEnd: number, skip: number, need: number): void {
  const bitsAt = r.pos;
  const b = r.buf;
  const mask = (1 << width) - 1;
  let maxAbs = 0;
  for (let i = skip; i < need; i++) {
    const bit = i * width;
    const p = bitsAt + (bit >>> 3);
    // Four bytes from p hold the value (at most 7 + 24 bits); those past the body read as 0
    // (all of them for width 0, whose values are all 0).
    const w = (((p < bitsEnd ? (b[p] as number) : 0) << 24) | ((p + 1 < bitsEnd ? (b[p + 1] as number) : 0) << 16) | ((p + 2 < bitsEnd ? (b[p + 2] as number) : 0) << 8) | (p + 3 < bitsEnd ? (b[p + 3] as number) : 0)) >>> 0;
    const z = (w >>> (32 - (bit & 7) - width)) & mask;
    const s = (z >>> 1) ^ -(z & 1);
    const abs = s < 0 ? -s : s;
    if (abs > maxAbs) maxAbs = abs;
    nums[from + i] = s / divisor;
  }
  r.pos = bitsEnd;
  if (!(maxAbs <= SCALED_ABS_LIMIT)) r.fail('packed value out of range');
}

/**
 * codec/packed-int-decode.ts readPackedResiduals for a body with exceptions and residuals
 * of at most 24 bits, from its exception count on (r just past the width byte), filling
 * scaled[order, end) only: the first end - order residuals unpacked, the exceptions at
 * positions before `end` patched in, r past every bit and exception (each exception's
 * position checked as the codec checks it).
 */
function packedPrefixResiduals(r: ByteReader, scaled: Float64Array, n: number, order: number, width: number, end: number): void {
  const m = n - order;
  const exceptions = r.uvar();
  if (exceptions > m) r.fail('more packed exceptions than values');
  const bytes = Math.ceil((m * width) / 8);
  const bitsAt = r.pos;
  if (bitsAt + bytes > r.end) r.fail('truncated packed bits');
  const b = r.buf;
  let p = bitsAt;
  let buf = 0;
  let bits = 0;
  const mask = (1 << width) - 1;
  for (let i = order; i < end; i++) {
    while (bits < width) {
      buf = (buf << 8) | (b[p++] as number);
      bits += 8;
    }
    bits -= width;
    scaled[i] = (buf >>> bits) & mask;
    buf &= (1 << bits) - 1;
  }
  r.pos = bitsAt + bytes;
  const limit = 2 ** width;
  let at = order - 1;
  for (let e = 0; e < exceptions; e++) {
    at += r.uvar() + 1;
    const high = r.uvar();
    if (at >= n || high === 0) r.fail('packed exception out of range');
    if (at < end) scaled[at] = (scaled[at] as number) + high * limit;
  }
}

/**
 * Decodes the body of an XOR or FLOAT64 column into nums[from, from + n) as its bits (NaN
 * payloads kept: no value passes through a JS number), by the codec's own reader
 * (columns.ts decodeColumnBodyF64); false (nothing read) for other kinds.
 */
export function readFloatColumn(r: ByteReader, kind: number, nums: Float64Array, from: number, n: number): boolean {
  if (kind !== ColumnKind.XOR && kind !== ColumnKind.FLOAT64) return false;
  decodeColumnBodyF64(kind, r, nums, from, from + n);
  return true;
}

/** DECIMAL(_K) values: svar deltas of scaled integers, summed as the codec sums them. */
function decodeDecimal(r: ByteReader, nums: Float64Array, from: number, n: number, k: number): void {
    const p = POW10[k] as number;
    let acc = 0;
    for (let i = from; i < from + n; i++) {
      acc += svar(r);
      nums[i] = k === 0 ? acc : acc / p;
    }
  }
