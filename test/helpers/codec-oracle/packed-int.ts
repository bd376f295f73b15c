/**
 * The PACKED column kind: decimal numbers as scaled integers (as DECIMAL), predicted by
 * nothing, the previous value or the previous delta (order 0, 1, 2: levels, gauges,
 * counters), the zigzagged residuals bit-packed at one width chosen per column, with the
 * few that do not fit patched in afterwards (PFOR, Zukowski et al., 2006). A constant or
 * steadily growing column costs a handful of bytes; a gauge moving by +-15 costs 5 bits
 * per value instead of DECIMAL's byte. Layout in docs/format.md ("PACKED column").
 *
 * Works on the scaled integers in a Float64Array prepared by columns.ts; no allocation
 * per value (scratch typed arrays grow by doubling and are reused).
 */
import { ByteWriter, type ByteReader } from './bytes.js';
import { BitReader, BitWriter } from './bits.js';

/** Widest packed residual; wider ones are exceptions (their high bits follow as varints). */
const WIDTH_MAX = 32;
/** Columns with fewer residuals than this are planned without exceptions. */
const SHORT_COLUMN_VALUES = 16;
/** Order 0 is planned only for columns whose first scaled value is smaller than this. */
const ORDER0_FIRST_ABS_MAX = 1 << 12;
/** Widths up to this unpack with int32 shifts (unpackNarrow). */
const FAST_WIDTH_MAX = 24;
/** Set in the width byte when an exception count follows. */
const EXCEPTIONS_FLAG = 0x80;
/** Bit lengths of zigzagged residuals go up to 54 (|residual| <= 2^53). */
const BITLEN_SLOTS = 56;
const TWO_32 = 4294967296;
/** Order-2 residuals must stay within this for their zigzag to stay exact (< 2^53). */
const RESIDUAL_ABS_MAX = 2 ** 51;
/** Decoded scaled integers past this are corruption: the writer keeps them within 2^51. */
const SCALED_ABS_LIMIT = 2 ** 51;

// Histograms of residual bit lengths at order 0, 1, 2 (all zero between calls).
const h0 = new Uint32Array(BITLEN_SLOTS);
const h1 = new Uint32Array(BITLEN_SLOTS);
const h2 = new Uint32Array(BITLEN_SLOTS);
let resid = new Float64Array(1024);
const bitWriter = new BitWriter(new ByteWriter(8)); // pointed at the column's writer by reset()
const bitReader = new BitReader();

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function bitLength(z: number): number {
  return z < TWO_32 ? 32 - Math.clz32(z) : 64 - Math.clz32(Math.floor(z / TWO_32));
}

function varintBytes(z: number): number {
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/** The plan for one column: order, width, how many residuals are wider, and its size (kind byte included). */
export interface PackedPlan {
  order: number;
  width: number;
  exceptions: number;
  bytes: number;
}

/**
 * Picks order and width for scaled[0, n) into `plan`, with the PACKED size (kind byte
 * included; exceptions counted with one gap byte each, which is exact up to gaps of 127).
 */
export function planPacked(scaled: Float64Array, n: number, plan: PackedPlan): void {
  let order2Ok = true;
  let prev = 0;
  let prevDelta = 0;
  let max0 = 0;
  let max1 = 0;
  let max2 = 0;
  // Order 0 (the levels themselves) wins only for columns that sit near zero (sparse error
  // counts); for the rest, skipping its histogram saves a third of the planning.
  const tryOrder0 = Math.abs(scaled[0] as number) < ORDER0_FIRST_ABS_MAX;
  for (let i = 0; i < n; i++) {
    const s = scaled[i] as number;
    if (tryOrder0) {
      const b0 = bitLength(zigzag(s));
      h0[b0] = (h0[b0] as number) + 1;
      if (b0 > max0) max0 = b0;
    }
    const d = s - prev;
    if (i >= 1) {
      const b1 = bitLength(zigzag(d));
      h1[b1] = (h1[b1] as number) + 1;
      if (b1 > max1) max1 = b1;
    }
    if (i >= 2 && order2Ok) {
      const r = d - prevDelta;
      if (Math.abs(r) > RESIDUAL_ABS_MAX) order2Ok = false;
      const b2 = bitLength(zigzag(r));
      h2[b2] = (h2[b2] as number) + 1;
      if (b2 > max2) max2 = b2;
    }
    prev = s;
    prevDelta = d;
  }
  plan.bytes = Infinity;
  if (!order2Ok) h2.fill(0);
  for (let order = tryOrder0 ? 0 : 1; order <= 2 && order <= n; order++) {
    if (order === 2 && !order2Ok) break;
    let head = 2; // kind (carrying order and k), width
    if (order >= 1) head += varintBytes(zigzag(scaled[0] as number));
    if (order === 2) head += varintBytes(zigzag((scaled[1] as number) - (scaled[0] as number)));
    planWidth(order === 0 ? h0 : order === 1 ? h1 : h2, order === 0 ? max0 : order === 1 ? max1 : max2, n - order, head, order, plan);
  }
}

/**
 * Tries every width from the widest residual down, keeping the count and total bit length
 * of the residuals wider than it (the exceptions) as running sums: O(54) per order. An
 * exception costs a gap byte and its high bits as a varint (about (len - width + 3) / 7).
 */
function planWidth(h: Uint32Array, maxLen: number, m: number, head: number, order: number, plan: PackedPlan): void {
  let count = 0;
  let lenSum = 0;
  for (let len = maxLen; len > WIDTH_MAX; len--) {
    count += h[len] as number;
    lenSum += (h[len] as number) * len;
  }
  // A short column has too few values for exceptions to pay: it tries the full width only.
  const minWidth = m < SHORT_COLUMN_VALUES ? Math.min(maxLen, WIDTH_MAX) : 0;
  for (let width = Math.min(maxLen, WIDTH_MAX); width >= minWidth; width--) {
    const exceptionBytes = count === 0 ? 0 : 1 + count + Math.ceil((lenSum - width * count + 3 * count) / 7);
    const bytes = head + Math.ceil((m * width) / 8) + exceptionBytes;
    if (bytes < plan.bytes) {
      plan.order = order;
      plan.width = width;
      plan.exceptions = count;
      plan.bytes = bytes;
    }
    count += h[width] as number;
    lenSum += (h[width] as number) * width;
  }
  h.fill(0, 0, maxLen + 1);
}

/** Writes the PACKED body (after the kind byte, which carries order and k) of scaled[0, n). */
export function encodePacked(w: ByteWriter, scaled: Float64Array, n: number, plan: PackedPlan): void {
  const { order, width } = plan;
  const m = n - order;
  if (order >= 1) w.svar(scaled[0] as number);
  if (order === 2) w.svar((scaled[1] as number) - (scaled[0] as number));
  const limit = 2 ** width;
  const exceptions = plan.exceptions;
  if (resid.length < m) resid = new Float64Array(Math.max(m, resid.length * 2));
  if (order === 0) for (let j = 0; j < m; j++) resid[j] = zigzag(scaled[j] as number);
  else if (order === 1) for (let j = 0; j < m; j++) resid[j] = zigzag((scaled[j + 1] as number) - (scaled[j] as number));
  else for (let j = 0; j < m; j++) resid[j] = zigzag((scaled[j + 2] as number) - 2 * (scaled[j + 1] as number) + (scaled[j] as number));
  w.u8(width | (exceptions > 0 ? EXCEPTIONS_FLAG : 0));
  if (exceptions > 0) w.uvar(exceptions);
  if (width <= FAST_WIDTH_MAX) packNarrow(w, m, width);
  else {
    const bw = bitWriter;
    bw.reset(w);
    for (let j = 0; j < m; j++) bw.write((resid[j] as number) % limit, width);
    bw.flush();
  }
  let prev = -1;
  for (let j = 0; j < m && exceptions > 0; j++) {
    const z = resid[j] as number;
    if (z < limit) continue;
    w.uvar(j - prev - 1);
    w.uvar(Math.floor(z / limit));
    prev = j;
  }
}

/**
 * Reads a PACKED body of the given order, n values, into out[from, from + n) divided by
 * `divisor` (10^k), using `scaled` (sized by the caller) as scratch. Fails on anything out
 * of range, so damage never yields an inexact number.
 */
export function decodePacked(r: ByteReader, scaled: Float64Array, n: number, order: number, out: unknown[], from: number, divisor: number): void {
  readPackedResiduals(r, scaled, n, order, packedHead);
  if (numbers.length < n) numbers = new Float64Array(Math.max(n, numbers.length * 2));
  integratePackedF64(r, scaled, n, order, packedHead, numbers, 0, divisor);
  for (let i = 0; i < n; i++) out[from + i] = numbers[i];
}
/** decodePacked's integrated numbers before they are copied out (grown as needed). */
let numbers = new Float64Array(1024);

/** The first values of a PACKED body, before its residuals (readPackedResiduals fills it). */
export interface PackedHead {
  s0: number;
  d0: number;
}
const packedHead: PackedHead = { s0: 0, d0: 0 };

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
  const limit = 2 ** width;
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

/** Packs the low `width` (<= 24) bits of resid[0, m), the mirror of unpackNarrow. */
function packNarrow(w: ByteWriter, m: number, width: number): void {
  const bytes = Math.ceil((m * width) / 8);
  w.ensure(bytes);
  const b = w.buf;
  let p = w.pos;
  let buf = 0;
  let bits = 0;
  const mask = (1 << width) - 1;
  for (let j = 0; j < m; j++) {
    const z = resid[j] as number;
    buf = (buf << width) | ((z < 0x80000000 ? z : z % 0x80000000) & mask);
    bits += width;
    while (bits >= 8) {
      bits -= 8;
      b[p++] = buf >>> bits;
      buf &= (1 << bits) - 1;
    }
  }
  if (bits > 0) b[p++] = buf << (8 - bits);
  w.pos = p;
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

/**
 * Mended after the freeze (as storage/codec/packed-layout.ts firstAbs): the bound check
 * started from |s0| + |d0|, which refused columns the writer made (s0 near 2^51, then a
 * small value), so the oracle refused what it should read.
 */
function firstAbs(s0: number, d0: number, order: number): number {
  const a = Math.abs(s0);
  return order === 2 ? Math.max(a, Math.abs(s0 + d0)) : a;
}
