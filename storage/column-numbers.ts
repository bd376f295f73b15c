/**
 * Decimal columns (DECIMAL, DECIMAL_K, PACKED; docs/format.md "Column") decoded straight
 * into a Float64Array, for readers that fold numbers and want no Value array (storage/
 * column-block.ts). The numbers are the ones storage/codec decodes, bit for bit: the
 * PACKED layout is read by the codec's own function (packed-int.ts decodePackedF64);
 * DECIMAL's sum is the codec's (columns.ts decodeDecimal), with its
 * checks, writing into typed arrays instead of a Value array.
 */
import type { ByteReader } from './codec/bytes.js';
import { decodePackedF64 } from './codec/packed-int.js';
import { decodePackedPrefixF64 } from './packed-prefix.js';
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
