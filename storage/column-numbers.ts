/**
 * Decimal columns (DECIMAL, DECIMAL_K, PACKED; docs/format.md "Column") decoded straight
 * into a Float64Array, for readers that fold numbers and want no Value array (storage/
 * column-block.ts). The numbers are the ones storage/codec decodes, bit for bit: the
 * arithmetic below is the codec's (columns.ts decodeDecimal, packed-int.ts decodePacked),
 * with its checks, writing into typed arrays instead of a Value array.
 */
import type { ByteReader } from './codec/bytes.js';
import { BitReader } from './codec/bits.js';
import { ColumnKind } from './codec/columns.js';

const DECIMAL_EXPONENT_MAX = 9;
const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, k) => 10 ** k);
const PACKED_END = ColumnKind.PACKED + 3 * 16;
const PACKED_WIDTH_MAX = 32;
const PACKED_FAST_WIDTH_MAX = 24;
const PACKED_EXCEPTIONS_FLAG = 0x80;
const SCALED_ABS_LIMIT = 2 ** 51;

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
  private readonly bits = new BitReader();
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

  /** codec/packed-int.ts decodePacked, into nums. */
  private decodePacked(r: ByteReader, nums: Float64Array, from: number, n: number, order: number, divisor: number): void {
    if (order > 2 || order > n) r.fail('packed order out of range');
    const m = n - order;
    let s0 = 0;
    let d0 = 0;
    if (order >= 1) s0 = svar(r);
    if (order === 2) d0 = svar(r);
    const widthByte = r.u8();
    const width = widthByte & ~PACKED_EXCEPTIONS_FLAG;
    if (width > PACKED_WIDTH_MAX) r.fail('packed width out of range');
    const exceptions = widthByte & PACKED_EXCEPTIONS_FLAG ? r.uvar() : 0;
    if (exceptions > m) r.fail('more packed exceptions than values');
    if (this.scaled.length < n) this.scaled = new Float64Array(Math.max(n, this.scaled.length * 2));
    const scaled = this.scaled;
    if (width <= PACKED_FAST_WIDTH_MAX) unpackNarrow(r, scaled, order, m, width);
    else {
      const br = this.bits;
      br.start(r, Math.ceil((m * width) / 8));
      for (let j = 0; j < m; j++) scaled[j + order] = br.read(width);
      br.finish();
    }
    const limit = 2 ** width;
    let at = order - 1;
    for (let e = 0; e < exceptions; e++) {
      at += r.uvar() + 1;
      const high = r.uvar();
      if (at >= n || high === 0) r.fail('packed exception out of range');
      scaled[at] = (scaled[at] as number) + high * limit;
    }
    integrate(r, scaled, n, order, s0, d0, nums, from, divisor);
  }
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

/** codec/packed-int.ts integrate: un-zigzags scaled[order, n) and integrates it `order` times into nums. */
function integrate(r: ByteReader, scaled: Float64Array, n: number, order: number, s0: number, d0: number, nums: Float64Array, from: number, divisor: number): void {
  let maxAbs = Math.abs(s0) + Math.abs(d0);
  if (order >= 1) nums[from] = s0 / divisor;
  if (order === 2) nums[from + 1] = (s0 + d0) / divisor;
  let prev = order === 2 ? s0 + d0 : s0;
  let delta = d0;
  for (let i = order; i < n; i++) {
    const z = scaled[i] as number;
    const v = z < 0x80000000 ? (z >>> 1) ^ -(z & 1) : z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    let s: number;
    if (order === 1) s = prev + v;
    else if (order === 2) s = prev + (delta += v);
    else s = v;
    const abs = s < 0 ? -s : s;
    if (abs > maxAbs) maxAbs = abs;
    nums[from + i] = s / divisor;
    prev = s;
  }
  if (!(maxAbs <= SCALED_ABS_LIMIT)) r.fail('packed value out of range');
}

/** codec/packed-int.ts unpackNarrow: m residuals of width <= 24 into scaled[at, at + m). */
function unpackNarrow(r: ByteReader, scaled: Float64Array, at: number, m: number, width: number): void {
  const bytes = Math.ceil((m * width) / 8);
  if (r.pos + bytes > r.end) r.fail('truncated packed bits');
  const b = r.buf;
  let p = r.pos;
  let buf = 0;
  let bits = 0;
  const mask = (1 << width) - 1;
  for (let j = 0; j < m; j++) {
    while (bits < width) {
      buf = (buf << 8) | (b[p++] as number);
      bits += 8;
    }
    bits -= width;
    scaled[at + j] = (buf >>> bits) & mask;
    buf &= (1 << bits) - 1;
  }
  if (buf !== 0) r.fail('packed padding is not zero');
  r.pos = p;
}
