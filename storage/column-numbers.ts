/**
 * Decimal columns (DECIMAL, DECIMAL_K, PACKED; docs/format.md "Column") decoded straight
 * into a Float64Array, for readers that fold numbers and want no Value array (storage/
 * column-block.ts). The numbers are the ones storage/codec decodes, bit for bit: the
 * PACKED layout is read by the codec's own functions (packed-int.ts readPackedResiduals,
 * integratePackedF64); DECIMAL's sum is the codec's (columns.ts decodeDecimal), with its
 * checks, writing into typed arrays instead of a Value array.
 */
import type { ByteReader } from './codec/bytes.js';
import { integratePackedF64, readPackedResiduals, type PackedHead } from './codec/packed-int.js';
import { ColumnKind } from './codec/columns.js';
import { decodeXorF64 } from './codec/xor-float.js';

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

/** Reads decimal columns; holds the scratch PACKED decoding needs (one per reader: not reentrant). */
export class DecimalColumns {
  private readonly head: PackedHead = { s0: 0, d0: 0 };
  private scaled = new Float64Array(1024);

  /** Decodes the body of a column of kind `kind` into nums[from, from + n) if it is decimal; false (nothing read) otherwise. */
  read(r: ByteReader, kind: number, nums: Float64Array, from: number, n: number): boolean {
    if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
      decodeDecimal(r, nums, from, n, kind - ColumnKind.DECIMAL_K);
      return true;
    }
    if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
      const k = kind & 0x0f;
      if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
      this.decodePacked(r, nums, from, n, (kind - ColumnKind.PACKED) >> 4, POW10[k] as number);
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

  /** codec/packed-int.ts's reader of the layout, integrated into nums. */
  private decodePacked(r: ByteReader, nums: Float64Array, from: number, n: number, order: number, divisor: number): void {
    if (this.scaled.length < n) this.scaled = new Float64Array(Math.max(n, this.scaled.length * 2));
    readPackedResiduals(r, this.scaled, n, order, this.head);
    integratePackedF64(r, this.scaled, n, order, this.head, nums, from, divisor);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/**
 * Decodes the body of an XOR or FLOAT64 column into nums[from, from + n) as its bits (NaN
 * payloads kept: no value passes through a JS number); false (nothing read) for other
 * kinds. XOR is read by the codec's own reader (xor-float.ts decodeXorF64); FLOAT64 is the
 * column's bytes, little-endian, copied (as codec columns.ts decodeColumnF64 copies them).
 */
export function readFloatColumn(r: ByteReader, kind: number, nums: Float64Array, from: number, n: number): boolean {
  if (kind === ColumnKind.XOR) {
    if (n > 0) decodeXorF64(r, nums, from, from + n);
    else if (r.uvar() !== 0) r.fail('empty xor column with bits');
    return true;
  }
  if (kind !== ColumnKind.FLOAT64) return false;
  const bytes = r.bytes(8 * n);
  if (LITTLE_ENDIAN) new Uint8Array(nums.buffer, nums.byteOffset + 8 * from, 8 * n).set(bytes);
  else for (let i = 0, at = r.pos - bytes.length; i < n; i++, at += 8) nums[from + i] = r.view.getFloat64(at, true);
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
