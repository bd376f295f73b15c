/**
 * The first values of a PACKED column (codec/packed-int.ts describes the kind) without
 * decoding the rest: what a state after a seek takes from the block at its position
 * (storage/column-block.ts, storage/column-numbers.ts readPrefix). Values before the first
 * one wanted are summed, not stored; when their bits bound every partial sum within the
 * scaled limit (the check each value would pass), they are summed without a check per value
 * and exceptions are added afterwards (sumResiduals). Integers all the way, so the numbers
 * are the full read's, bit for bit (test/column-prefix.test.ts compares them).
 */
import type { ByteReader } from './codec/bytes.js';
import { integratePackedF64, readPackedResiduals, type PackedHead } from './codec/packed-int.js';
import { EXCEPTIONS_FLAG, FAST_WIDTH_MAX, POW2, SCALED_ABS_LIMIT, WIDTH_MAX, firstAbs } from './codec/packed-layout.js';

/** The general PACKED reader's residuals (grown as needed) and first values. */
let residScratch = new Float64Array(1024);
const prefixHead: PackedHead = { s0: 0, d0: 0 };
/** A body's exceptions: positions (scaled index) and high bits, in order (grown as needed). */
let exAt = new Float64Array(64);
let exHigh = new Float64Array(64);
/** sumLow's sums: d, the residuals' sum; t, the sum of d's running values (order 2). */
const sums = { d: 0, t: 0 };
/** Fewer values before the first one wanted than this are summed value by value. */
const FAST_SUM_MIN = 8;

/**
 * The first `need` of a PACKED body's n values into nums[from, from + need) (the first
 * `order` are written whatever `need`: the column has room for them; those before `skip`
 * may be left out), r past the whole body. Residuals of more than 24 bits (rare) go through
 * the codec's own readers (all residuals read, the first `need` integrated). Otherwise the
 * exceptions are read first (they follow the bits); the residuals before `skip` are summed
 * without a check per value when the bits bound them (sumLow), else value by value; then
 * the values wanted are read where they are (each residual's bits at its own offset) and
 * integrated. Same arithmetic on integers below 2^53, so the same numbers bit for bit.
 */
export function decodePackedPrefixF64(r: ByteReader, n: number, order: number, nums: Float64Array, from: number, divisor: number, need: number, skip = 0): void {
  if (order > 2 || order > n) r.fail('packed order out of range');
  const start = r.pos;
  const s0 = order >= 1 ? r.svar() : 0;
  const d0 = order === 2 ? r.svar() : 0;
  const widthByte = r.u8();
  const width = widthByte & ~EXCEPTIONS_FLAG;
  if (width > FAST_WIDTH_MAX) {
    if (width > WIDTH_MAX) r.fail('packed width out of range');
    if (residScratch.length < n) residScratch = new Float64Array(Math.max(n, residScratch.length * 2));
    r.pos = start;
    readPackedResiduals(r, residScratch, n, order, prefixHead);
    integratePackedF64(r, residScratch, Math.max(need, order), order, prefixHead, nums, from, divisor);
    return;
  }
  const m = n - order;
  const exceptions = widthByte & EXCEPTIONS_FLAG ? r.uvar() : 0;
  if (exceptions > m) r.fail('more packed exceptions than values');
  const bytes = Math.ceil((m * width) / 8);
  const bitsAt = r.pos;
  const bitsEnd = bitsAt + bytes;
  if (bitsEnd > r.end) r.fail('truncated packed bits');
  if (order === 0 && exceptions === 0) {
    packedOrder0(r, nums, from, divisor, width, bitsEnd, skip, need);
    return;
  }
  // The exceptions, checked as the codec checks them; r ends past them.
  r.pos = bitsEnd;
  const limit = POW2[width] as number;
  if (exAt.length < exceptions) {
    exAt = new Float64Array(Math.max(exceptions, exAt.length * 2));
    exHigh = new Float64Array(exAt.length);
  }
  let at = order - 1;
  for (let e = 0; e < exceptions; e++) {
    at += r.uvar() + 1;
    const high = r.uvar();
    if (at >= n || high === 0) r.fail('packed exception out of range');
    exAt[e] = at;
    exHigh[e] = high;
  }
  const b = r.buf;
  const end = Math.max(need, order);
  const cnt = Math.max(0, Math.min(skip, end) - order);
  let maxAbs = firstAbs(s0, d0, order);
  let prev = order === 2 ? s0 + d0 : s0;
  let delta = d0;
  if (order >= 1) nums[from] = s0 / divisor;
  if (order === 2) nums[from + 1] = (s0 + d0) / divisor;
  let e = 0;
  // Values from `i` on are read one by one (checked), and stored from order + cnt on.
  let i = order + cnt;
  if (order === 0) {
    // Each value is its own residual: those before `skip` are not read.
    while (e < exceptions && (exAt[e] as number) < i) e++;
  } else if (cnt >= FAST_SUM_MIN && sumBound(order, s0, d0, width, cnt, exceptions, limit) <= SCALED_ABS_LIMIT) {
    // Every partial sum lies within the bound, so none would fail the check.
    sumLow(b, bitsAt, width, cnt, order === 2);
    let d = sums.d;
    let t = sums.t;
    for (; e < exceptions && (exAt[e] as number) < order + cnt; e++) {
      const j = (exAt[e] as number) - order;
      const z = zAt(b, bitsAt, bitsEnd, width, j);
      const dv = unzigzag(z + (exHigh[e] as number) * limit) - unzigzag(z);
      d += dv;
      t += dv * (cnt - j);
    }
    if (order === 1) prev = s0 + d;
    else {
      delta = d0 + d;
      prev = s0 + d0 + cnt * d0 + t;
    }
  } else i = order;
  for (; i < end; i++) {
    let z = zAt(b, bitsAt, bitsEnd, width, i - order);
    while (e < exceptions && (exAt[e] as number) < i) e++;
    if (e < exceptions && exAt[e] === i) z += (exHigh[e] as number) * limit;
    const v = unzigzag(z);
    let s: number;
    if (order === 1) s = prev + v;
    else if (order === 2) s = prev + (delta += v);
    else s = v;
    const abs = s < 0 ? -s : s;
    if (abs > maxAbs) maxAbs = abs;
    if (i >= order + cnt) nums[from + i] = s / divisor;
    prev = s;
  }
  if (!(maxAbs <= SCALED_ABS_LIMIT)) r.fail('packed value out of range');
}

/** A zigzagged residual back to its signed value (exact up to 2^53). */
function unzigzag(z: number): number {
  return z < 0x80000000 ? (z >>> 1) ^ -(z & 1) : z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/**
 * Largest magnitude any partial sum of the first cnt residuals can reach, from the bits'
 * width and the exceptions among them (exAt/exHigh): order 1 |s0| + cnt * v, order 2
 * |s0 + d0| + cnt * |d0| + cnt^2 * v, v the largest residual magnitude.
 */
function sumBound(order: number, s0: number, d0: number, width: number, cnt: number, exceptions: number, limit: number): number {
  let v = width === 0 ? 0 : limit / 2;
  for (let e = 0; e < exceptions && (exAt[e] as number) < order + cnt; e++) {
    const big = (((exHigh[e] as number) + 1) * limit) / 2;
    if (big > v) v = big;
  }
  if (order === 1) return Math.abs(s0) + cnt * v;
  return Math.abs(s0 + d0) + cnt * Math.abs(d0) + cnt * cnt * v;
}

/** Residual j's low bits (width <= 24, high bit first), bytes past the body read as 0. */
function zAt(b: Uint8Array, bitsAt: number, bitsEnd: number, width: number, j: number): number {
  const bit = j * width;
  const p = bitsAt + (bit >>> 3);
  const x = (((p < bitsEnd ? (b[p] as number) : 0) << 24) | ((p + 1 < bitsEnd ? (b[p + 1] as number) : 0) << 16) | ((p + 2 < bitsEnd ? (b[p + 2] as number) : 0) << 8) | (p + 3 < bitsEnd ? (b[p + 3] as number) : 0)) >>> 0;
  return width === 0 ? 0 : (x >>> (32 - (bit & 7) - width)) & ((1 << width) - 1);
}

/** Widest residual read through a 3-byte window (its bits start anywhere in the window's first byte). */
const WINDOW_WIDTH_MAX = 17;

/**
 * sums.d = the sum of the first cnt residuals' low bits, un-zigzagged; with `twice`, sums.t =
 * the sum of d after each residual (order 2). Residuals of up to WINDOW_WIDTH_MAX bits are
 * read through a 3-byte window at their own offset, with no branch a residual (a byte
 * loaded every 8 / width residuals mispredicted at widths such as 3 and 5: a state after a
 * seek sums 32 of them a column on average at 32 768-update blocks); bytes past the bits
 * only fill the window's low end, which the shift drops. The last residuals, whose window
 * would pass the buffer, and wider ones are read a byte at a time into a buffer (widths up
 * to 24: it never holds more than 31 bits).
 */
function sumLow(b: Uint8Array, bitsAt: number, width: number, cnt: number, twice: boolean): void {
  const mask = (1 << width) - 1;
  let d = 0;
  let t = 0;
  if (width === 0) cnt = 0;
  let j = 0;
  let bit = 0;
  if (width <= WINDOW_WIDTH_MAX) {
    const top = 24 - width;
    const last = b.length - 3;
    for (; j < cnt; j++) {
      const p = bitsAt + (bit >>> 3);
      if (p > last) break;
      const x = ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
      const z = (x >>> (top - (bit & 7))) & mask;
      d += (z >>> 1) ^ -(z & 1);
      t += d;
      bit += width;
    }
  }
  if (j < cnt) {
    // From residual j on, its first byte's bits before it dropped.
    let p = bitsAt + (bit >>> 3);
    let bits = 8 - (bit & 7);
    let buf = (b[p++] as number) & ((1 << bits) - 1);
    for (; j < cnt; j++) {
      while (bits < width) {
        buf = (buf << 8) | (b[p++] as number);
        bits += 8;
      }
      bits -= width;
      const z = (buf >>> bits) & mask;
      buf &= (1 << bits) - 1;
      d += (z >>> 1) ^ -(z & 1);
      t += d;
    }
  }
  sums.d = d;
  sums.t = twice ? t : 0;
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
