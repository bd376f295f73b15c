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
import { ByteWriter } from './bytes.js';
import { BitWriter } from './bits.js';
import { BITLEN_SLOTS, EXCEPTIONS_FLAG, FAST_WIDTH_MAX, ORDER0_FIRST_ABS_MAX, RESIDUAL_ABS_MAX, SHORT_COLUMN_VALUES, TWO_32, WIDTH_MAX } from './packed-layout.js';


// Histograms of residual bit lengths at order 0, 1, 2 (all zero between calls).
const h0 = new Uint32Array(BITLEN_SLOTS);
const h1 = new Uint32Array(BITLEN_SLOTS);
const h2 = new Uint32Array(BITLEN_SLOTS);
let resid = new Float64Array(1024);
const bitWriter = new BitWriter(new ByteWriter(8)); // pointed at the column's writer by reset()

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

/** Columns up to this many values are planned in int32 arithmetic (m x 54 + 7 < 2^31). */
const INT32_PLAN_VALUES_MAX = 1 << 25;

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
  if (n < SHORT_COLUMN_VALUES && planShort(scaled, n, plan)) return;
  // Order 0 (the levels themselves) wins only for columns that sit near zero (sparse error
  // counts); for the rest, skipping its histogram saves a third of the planning.
  const tryOrder0 = Math.abs(scaled[0] as number) < ORDER0_FIRST_ABS_MAX;
  let max0 = 0;
  let max1 = 0;
  let max2 = 0;
  let order2Ok = true;
  const maxes = histogramsSmall(scaled, n, tryOrder0);
  if (maxes >= 0) {
    max0 = maxes & 0xff;
    max1 = (maxes >>> 8) & 0xff;
    max2 = maxes >>> 16;
  } else {
    const m = histogramsWide(scaled, n, tryOrder0);
    max0 = m & 0xff;
    max1 = (m >>> 8) & 0xff;
    max2 = (m >>> 16) & 0xff;
    order2Ok = m < 1 << 24;
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
 * planPacked of a column of fewer than SHORT_COLUMN_VALUES values whose scaled values are all
 * below SMALL_ABS_LIMIT and whose residuals fit WIDTH_MAX bits (returns false, nothing
 * planned, otherwise). Such a column tries one width an order, its widest residual's, with
 * no exceptions (planWidth), so the largest bit lengths are all it needs: no histograms.
 * Orders are tried as planPacked does (0 only near zero, a strictly smaller size wins).
 */
function planShort(scaled: Float64Array, n: number, plan: PackedPlan): boolean {
  let max0 = 0;
  let max1 = 0;
  let max2 = 0;
  let prev = 0;
  let prevDelta = 0;
  for (let i = 0; i < n; i++) {
    const v = scaled[i] as number;
    if (!(v < SMALL_ABS_LIMIT && v > -SMALL_ABS_LIMIT)) return false;
    const s = v | 0;
    const b0 = 32 - Math.clz32((s << 1) ^ (s >> 31));
    if (b0 > max0) max0 = b0;
    const d = (s - prev) | 0;
    if (i >= 1) {
      const b1 = 32 - Math.clz32((d << 1) ^ (d >> 31));
      if (b1 > max1) max1 = b1;
    }
    if (i >= 2) {
      const r = (d - prevDelta) | 0;
      const b2 = 32 - Math.clz32((r << 1) ^ (r >> 31));
      if (b2 > max2) max2 = b2;
    }
    prev = s;
    prevDelta = d;
  }
  // Below 2^28, residuals take at most 31 bits: never past WIDTH_MAX.
  const s0 = scaled[0] as number;
  plan.bytes = Infinity;
  for (let order = Math.abs(s0) < ORDER0_FIRST_ABS_MAX ? 0 : 1; order <= 2 && order <= n; order++) {
    let head = 2;
    if (order >= 1) head += varintBytes(zigzag(s0));
    if (order === 2) head += varintBytes(zigzag((scaled[1] as number) - s0));
    const width = order === 0 ? max0 : order === 1 ? max1 : max2;
    const bytes = head + (((n - order) * width + 7) >> 3);
    if (bytes < plan.bytes) {
      plan.order = order;
      plan.width = width;
      plan.exceptions = 0;
      plan.bytes = bytes;
    }
  }
  return true;
}

/** Scaled values below this in magnitude have deltas and second differences within int32. */
const SMALL_ABS_LIMIT = 1 << 28;

/**
 * The histograms of residual bit lengths (h0 if tryOrder0, h1, h2) of scaled[0, n) in int32
 * arithmetic, for columns whose values are all below SMALL_ABS_LIMIT (most): the largest
 * bit lengths packed as max0 | max1 << 8 | max2 << 16. At the first larger value, the
 * histograms are cleared and -1 returned (histogramsWide then counts in doubles).
 */
function histogramsSmall(scaled: Float64Array, n: number, tryOrder0: boolean): number {
  let prev = 0;
  let prevDelta = 0;
  let max0 = 0;
  let max1 = 0;
  let max2 = 0;
  for (let i = 0; i < n; i++) {
    const v = scaled[i] as number;
    if (!(v < SMALL_ABS_LIMIT && v > -SMALL_ABS_LIMIT)) {
      h0.fill(0);
      h1.fill(0);
      h2.fill(0);
      return -1;
    }
    const s = v | 0;
    if (tryOrder0) {
      const b0 = 32 - Math.clz32((s << 1) ^ (s >> 31));
      h0[b0] = (h0[b0] as number) + 1;
      if (b0 > max0) max0 = b0;
    }
    const d = (s - prev) | 0;
    if (i >= 1) {
      const b1 = 32 - Math.clz32((d << 1) ^ (d >> 31));
      h1[b1] = (h1[b1] as number) + 1;
      if (b1 > max1) max1 = b1;
    }
    if (i >= 2) {
      const r = (d - prevDelta) | 0;
      const b2 = 32 - Math.clz32((r << 1) ^ (r >> 31));
      h2[b2] = (h2[b2] as number) + 1;
      if (b2 > max2) max2 = b2;
    }
    prev = s;
    prevDelta = d;
  }
  return max0 | (max1 << 8) | (max2 << 16);
}

/**
 * histogramsSmall in doubles, for any column: max0 | max1 << 8 | max2 << 16, plus 1 << 24
 * when a second difference is past RESIDUAL_ABS_MAX (order 2 then cannot be planned).
 */
function histogramsWide(scaled: Float64Array, n: number, tryOrder0: boolean): number {
  let order2Ok = true;
  let prev = 0;
  let prevDelta = 0;
  let max0 = 0;
  let max1 = 0;
  let max2 = 0;
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
  return max0 | (max1 << 8) | (max2 << 16) | (order2Ok ? 0 : 1 << 24);
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
  // Sizes in int32 arithmetic where they fit (m x 54 < 2^31): ceil(x / 7) as
  // ((x + 6) / 7) | 0 and ceil(x / 8) as (x + 7) >> 3, the same for the non-negative x here
  // (an exception's len exceeds width). A division of doubles and Math.ceil cost more.
  const int32 = m <= INT32_PLAN_VALUES_MAX;
  for (let width = Math.min(maxLen, WIDTH_MAX); width >= minWidth; width--) {
    const x = lenSum - width * count + 3 * count;
    const exceptionBytes = count === 0 ? 0 : 1 + count + (int32 ? ((x + 6) / 7) | 0 : Math.ceil(x / 7));
    const bytes = head + (int32 ? (m * width + 7) >> 3 : Math.ceil((m * width) / 8)) + exceptionBytes;
    if (bytes < plan.bytes) {
      plan.order = order;
      plan.width = width;
      plan.exceptions = count;
      plan.bytes = bytes;
    }
    count += h[width] as number;
    lenSum += (h[width] as number) * width;
  }
  for (let len = 0; len <= maxLen; len++) h[len] = 0; // a loop: fill() is a call, for a few slots
}

/** Writes the PACKED body (after the kind byte, which carries order and k) of scaled[0, n). */
export function encodePacked(w: ByteWriter, scaled: Float64Array, n: number, plan: PackedPlan): void {
  const { order, width } = plan;
  const m = n - order;
  if (order >= 1) w.svar(scaled[0] as number);
  if (order === 2) w.svar((scaled[1] as number) - (scaled[0] as number));
  const exceptions = plan.exceptions;
  if (exceptions === 0 && width <= FAST_WIDTH_MAX) {
    w.u8(width);
    return packResiduals(w, scaled, order, m, width);
  }
  const limit = 2 ** width;
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
 * packNarrow of the order-`order` residuals of scaled[0, m + order), computed as they are
 * packed, for a plan without exceptions: every zigzagged residual is below 2^width <= 2^24,
 * so each fits int32 once its difference (exact in doubles) is taken.
 */
function packResiduals(w: ByteWriter, scaled: Float64Array, order: number, m: number, width: number): void {
  w.ensure(Math.ceil((m * width) / 8));
  const b = w.buf;
  let p = w.pos;
  let buf = 0;
  let bits = 0;
  for (let j = 0; j < m; j++) {
    const s = scaled[j] as number;
    const r = (order === 0 ? s : order === 1 ? (scaled[j + 1] as number) - s : (scaled[j + 2] as number) - 2 * (scaled[j + 1] as number) + s) | 0;
    buf = (buf << width) | ((r << 1) ^ (r >> 31));
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
