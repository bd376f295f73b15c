/**
 * Reading a PACKED column (packed-int.ts describes the kind): residuals unpacked, exceptions
 * patched in, integrated back to scaled integers and divided to numbers, refusing anything
 * out of range so that damage never yields an inexact number.
 */
import type { ByteReader } from './bytes.js';
import { BitReader } from './bits.js';
import { EXCEPTIONS_FLAG, FAST_WIDTH_MAX, POW2, SCALED_ABS_LIMIT, WIDTH_MAX, firstAbs } from './packed-layout.js';

const bitReader = new BitReader();

/**
 * Reads a PACKED body of the given order, n values, into out[from, from + n) divided by
 * `divisor` (10^k) (`scaled`, once its scratch, is no longer used). Fails on anything out
 * of range, so damage never yields an inexact number.
 */
export function decodePacked(r: ByteReader, scaled: Float64Array, n: number, order: number, out: unknown[], from: number, divisor: number): void {
  if (numbers.length < n) numbers = new Float64Array(Math.max(n, numbers.length * 2));
  void scaled;
  decodePackedF64(r, n, order, numbers, 0, divisor);
  for (let i = 0; i < n; i++) out[from + i] = numbers[i];
}
/** decodePacked's integrated numbers before they are copied out (grown as needed). */
let numbers = new Float64Array(1024);

/** The first values of a PACKED body, before its residuals (readPackedResiduals fills it). */
export interface PackedHead {
  s0: number;
  d0: number;
}

/**
 * Reads a PACKED body up to its integration: the first values into `head`, the zigzagged
 * residuals (exceptions patched in) into scaled[order, n). The one reader of the layout:
 * decodePacked and the typed-array readers (integratePackedF64) share it.
 */
export function readPackedResiduals(r: ByteReader, scaled: Float64Array, n: number, order: number, head: PackedHead): void {
  if (order > 2 || order > n) r.fail('packed order out of range');
  const m = n - order;
  head.s0 = order >= 1 ? r.svar() : 0;
  head.d0 = order === 2 ? r.svar() : 0;
  const widthByte = r.u8();
  const width = widthByte & ~EXCEPTIONS_FLAG;
  if (width > WIDTH_MAX) r.fail('packed width out of range');
  const exceptions = widthByte & EXCEPTIONS_FLAG ? r.uvar() : 0;
  if (exceptions > m) r.fail('more packed exceptions than values');
  if (width <= FAST_WIDTH_MAX) unpackNarrow(r, scaled, order, m, width);
  else {
    const br = bitReader;
    br.start(r, Math.ceil((m * width) / 8));
    for (let j = 0; j < m; j++) scaled[j + order] = br.read(width);
    br.finish();
  }
  const limit = POW2[width] as number;
  let at = order - 1;
  for (let e = 0; e < exceptions; e++) {
    at += r.uvar() + 1;
    const high = r.uvar();
    if (at >= n || high === 0) r.fail('packed exception out of range');
    scaled[at] = (scaled[at] as number) + high * limit;
  }
}

/**
 * Un-zigzags the residuals in scaled[order, n) and integrates them `order` times into
 * nums[from, from + n) divided by `divisor` (decodePacked copies them into its Value array;
 * readers that fold numbers keep them unboxed, storage/column-numbers.ts).
 */
export function integratePackedF64(r: ByteReader, scaled: Float64Array, n: number, order: number, head: PackedHead, nums: Float64Array, from: number, divisor: number): void {
  const s0 = head.s0;
  const d0 = head.d0;
  let maxAbs = firstAbs(s0, d0, order);
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

/** decodePackedF64's residuals when it hands a column to readPackedResiduals (grown as needed). */
let residScratch = new Float64Array(1024);
const fusedHead: PackedHead = { s0: 0, d0: 0 };

/**
 * readPackedResiduals then integratePackedF64 into nums[from, from + n): the same numbers
 * and the same refusals, in one pass for the usual body (width <= 24, no exceptions: each
 * residual unpacked, un-zigzagged and integrated as it is read, no scratch array).
 */
export function decodePackedF64(r: ByteReader, n: number, order: number, nums: Float64Array, from: number, divisor: number): void {
  if (order > 2 || order > n) r.fail('packed order out of range');
  const start = r.pos;
  const s0 = order >= 1 ? r.svar() : 0;
  const d0 = order === 2 ? r.svar() : 0;
  const width = r.u8();
  if (width > FAST_WIDTH_MAX) {
    // Exceptions (flag 0x80) or wide residuals: the general reader, from the body's start.
    r.pos = start;
    if (residScratch.length < n) residScratch = new Float64Array(Math.max(n, residScratch.length * 2));
    readPackedResiduals(r, residScratch, n, order, fusedHead);
    integratePackedF64(r, residScratch, n, order, fusedHead, nums, from, divisor);
    return;
  }
  const m = n - order;
  const bytes = Math.ceil((m * width) / 8);
  if (r.pos + bytes > r.end) r.fail('truncated packed bits');
  const b = r.buf;
  let p = r.pos;
  let buf = 0;
  let bits = 0;
  const mask = (1 << width) - 1;
  let maxAbs = firstAbs(s0, d0, order);
  let prev = order === 2 ? s0 + d0 : s0;
  let delta = d0;
  if (order >= 1) nums[from] = s0 / divisor;
  if (order === 2) nums[from + 1] = (s0 + d0) / divisor;
  for (let i = from + order; i < from + n; i++) {
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
  if (buf !== 0) r.fail('packed padding is not zero');
  r.pos = p;
  if (!(maxAbs <= SCALED_ABS_LIMIT)) r.fail('packed value out of range');
}

/**
 * Unpacks m residuals of width <= 24 into scaled[at, at + m) with int32 shifts: the bit
 * buffer never holds more than width - 1 + 8 <= 31 bits.
 */
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

/** Moves past a PACKED body of `n` values. */
export function skipPacked(r: ByteReader, n: number, order: number): void {
  if (order > 2 || order > n) r.fail('packed order out of range');
  if (order >= 1) r.uvar();
  if (order === 2) r.uvar();
  const widthByte = r.u8();
  const width = widthByte & ~EXCEPTIONS_FLAG;
  if (width > WIDTH_MAX) r.fail('packed width out of range');
  const exceptions = widthByte & EXCEPTIONS_FLAG ? r.uvar() : 0;
  if (exceptions > n) r.fail('more packed exceptions than values');
  r.bytes(Math.ceil(((n - order) * width) / 8));
  for (let e = 0; e < 2 * exceptions; e++) r.uvar();
}
