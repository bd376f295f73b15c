/**
 * The PACKED column's planner (packed-int.ts writes what it plans): the prediction order
 * and bit width that make a column of scaled decimals smallest, exceptions included, from
 * histograms of its residuals' bit lengths. Also the one pass that scales a decimal
 * column, counts those histograms and sums its DECIMAL_K size at once (scaleCounted), for
 * number-columns.ts. Pure; scratch histograms are reused (all zero between calls).
 */
import { BITLEN_SLOTS, ORDER0_FIRST_ABS_MAX, RESIDUAL_ABS_MAX, SHORT_COLUMN_VALUES, TWO_32, WIDTH_MAX } from './packed-layout.js';
import { POW10 } from './column-kinds.js';

// Histograms of residual bit lengths at order 0, 1, 2 (all zero between calls).
const h0 = new Uint32Array(BITLEN_SLOTS);
const h1 = new Uint32Array(BITLEN_SLOTS);
const h2 = new Uint32Array(BITLEN_SLOTS);

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
  const maxes = histogramsSmall(scaled, n, tryOrder0);
  planCounted(scaled, n, tryOrder0, maxes >= 0 ? maxes : histogramsWide(scaled, n, tryOrder0), plan);
}

/**
 * planPacked's choice once the histograms are counted: `maxes` the largest bit lengths
 * (max0 | max1 << 8 | max2 << 16, plus 1 << 24 when order 2 cannot be planned).
 */
function planCounted(scaled: Float64Array, n: number, tryOrder0: boolean, maxes: number, plan: PackedPlan): void {
  const max0 = maxes & 0xff;
  const max1 = (maxes >>> 8) & 0xff;
  const max2 = (maxes >>> 16) & 0xff;
  const order2Ok = maxes < 1 << 24;
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
  planFromMaxes(scaled, n, max0, max1, max2, plan);
  return true;
}

/** planShort's choice once the largest bit lengths are known. */
function planFromMaxes(scaled: Float64Array, n: number, max0: number, max1: number, max2: number, plan: PackedPlan): void {
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
  // (A choice of values computed either way, not a call on one branch: the first column of
  // 14 or 15 residuals would throw away the optimised code of every function it is inlined in.)
  const widest = maxLen < WIDTH_MAX ? maxLen : WIDTH_MAX;
  const minWidth = m < SHORT_COLUMN_VALUES ? widest : 0;
  // Sizes in int32 arithmetic where they fit (m x 54 < 2^31): ceil(x / 7) as
  // ((x + 6) / 7) | 0 and ceil(x / 8) as (x + 7) >> 3, the same for the non-negative x here
  // (an exception's len exceeds width). A division of doubles and Math.ceil cost more.
  const int32 = m <= INT32_PLAN_VALUES_MAX;
  for (let width = widest; width >= minWidth; width--) {
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


/** Varint bytes of a zigzagged value of bit length b (0..32). */
const VARINT_BYTES_OF_BITS = Uint8Array.from({ length: 33 }, (_, b) => Math.max(1, Math.ceil(b / 7)));

/**
 * number-columns.ts' scaleDecimal, planPacked and DECIMAL_K size of a column of n >= 3 numbers
 * vals[order[from]], ..., vals[order[from + n - 1]] in one pass, for the columns most are:
 * every value exact at the first one's exponent k (s0 its scaled value, found by the
 * caller as scaleDecimal finds it) and scaled within SMALL_ABS_LIMIT. Scales into
 * scaled[0, n), plans into `plan` as planPacked would, and returns the DECIMAL_K size
 * (kind byte included). With s0 past the limit returns -1; at a value i that is not such
 * (one needing a larger exponent, -0, a value past the limit), -1 - i, with nothing planned
 * and the histograms cleared: the caller then finds that value's exponent and scales again
 * from the first value at it, or takes scaleDecimal and planPacked, which answer from
 * scratch.
 *
 * Each value's test is scaleDecimal's at k (floor(x + 0.5) for Math.round(x), exact when
 * s / 10^k === v; at k = 0, 10^k = 1 and floor(v + 0.5) === v is floor(v) === v), within the
 * tighter bound; the counts are histogramsSmall's (planShort's maxima below
 * SHORT_COLUMN_VALUES values, where no histogram is kept), and the DECIMAL_K size is the sum
 * of the varint lengths of the zigzagged differences, read off their bit lengths.
 */
export function scaleCounted(vals: Float64Array, order: Uint32Array, from: number, n: number, k: number, s0: number, scaled: Float64Array, plan: PackedPlan): number {
  if (!(s0 < SMALL_ABS_LIMIT && s0 > -SMALL_ABS_LIMIT)) return -1;
  const p = POW10[k] as number;
  const counted = n >= SHORT_COLUMN_VALUES;
  const tryOrder0 = counted && s0 < ORDER0_FIRST_ABS_MAX && s0 > -ORDER0_FIRST_ABS_MAX;
  scaled[0] = s0;
  const first = s0 | 0;
  const b00 = 32 - Math.clz32((first << 1) ^ (first >> 31));
  let max0 = b00;
  let min0 = b00;
  let max1 = 0;
  let max2 = 0;
  let dec = 1 + (VARINT_BYTES_OF_BITS[b00] as number);
  let prev = first;
  let prevDelta = 0;
  for (let i = 1; i < n; i++) {
    const v = vals[order[from + i] as number] as number;
    const x = Math.floor(v * p + 0.5);
    if (!(x / p === v && x < SMALL_ABS_LIMIT && x > -SMALL_ABS_LIMIT && (x !== 0 || 1 / v > 0))) {
      if (counted) clearHistograms();
      return -1 - i;
    }
    scaled[i] = x;
    const s = x | 0;
    const d = (s - prev) | 0;
    const b1 = 32 - Math.clz32((d << 1) ^ (d >> 31));
    dec += VARINT_BYTES_OF_BITS[b1] as number;
    if (b1 > max1) max1 = b1;
    const b0 = 32 - Math.clz32((s << 1) ^ (s >> 31));
    if (b0 > max0) max0 = b0;
    if (b0 < min0) min0 = b0;
    let b2 = 0;
    if (i >= 2) {
      const r = (d - prevDelta) | 0;
      b2 = 32 - Math.clz32((r << 1) ^ (r >> 31));
      if (b2 > max2) max2 = b2;
    }
    if (counted) {
      h1[b1] = (h1[b1] as number) + 1;
      if (i >= 2) h2[b2] = (h2[b2] as number) + 1;
    }
    prev = s;
    prevDelta = d;
  }
  if (!counted) planFromMaxes(scaled, n, max0, max1, max2, plan);
  else {
    planCounted(scaled, n, false, (max1 << 8) | (max2 << 16), plan);
    if (tryOrder0 && order0Bound(n, min0) <= plan.bytes) planOrder0(scaled, n, max0, plan);
  }
  return dec;
}

/**
 * A lower bound of order 0's size for n >= SHORT_COLUMN_VALUES values whose shortest
 * zigzagged value has min0 bits: at a width of min0 or more, the packed bits alone; below,
 * every value is an exception (a count byte, a gap byte each, and at least 4 bits each:
 * planWidth's (len - width + 3) / 7 bytes).
 */
function order0Bound(n: number, min0: number): number {
  const packed = (n * min0 + 7) >> 3;
  const allExceptions = 1 + n + ((4 * n + 6) / 7 | 0);
  return 2 + (packed < allExceptions ? packed : allExceptions);
}

const plan0: PackedPlan = { order: 0, width: 0, exceptions: 0, bytes: 0 };

/**
 * Order 0 planned after orders 1 and 2 (in `plan`), from its own histogram counted now:
 * planPacked tries it first and keeps it on a tie, so it replaces `plan` when no larger.
 * scaleCounted asks only when order0Bound does not rule it out (most columns that do not
 * sit near zero are ruled out: their histogram is never counted).
 */
function planOrder0(scaled: Float64Array, n: number, max0: number, plan: PackedPlan): void {
  for (let i = 0; i < n; i++) {
    const s = (scaled[i] as number) | 0;
    const b0 = 32 - Math.clz32((s << 1) ^ (s >> 31));
    h0[b0] = (h0[b0] as number) + 1;
  }
  plan0.bytes = Infinity;
  planWidth(h0, max0, n, 2, 0, plan0);
  if (plan0.bytes > plan.bytes) return;
  plan.order = 0;
  plan.width = plan0.width;
  plan.exceptions = plan0.exceptions;
  plan.bytes = plan0.bytes;
}

function clearHistograms(): void {
  h0.fill(0);
  h1.fill(0);
  h2.fill(0);
}
