/**
 * The PACKED column kind: decimal numbers as scaled integers (as DECIMAL), predicted by
 * nothing, the previous value or the previous delta (order 0, 1, 2: levels, gauges,
 * counters), the zigzagged residuals bit-packed at one width chosen per column, with the
 * few that do not fit patched in afterwards (PFOR, Zukowski et al., 2006). A constant or
 * steadily growing column costs a handful of bytes; a gauge moving by +-15 costs 5 bits
 * per value instead of DECIMAL's byte. Layout in docs/format.md ("PACKED column").
 *
 * Works on the scaled integers in a Float64Array prepared by columns.ts, with the order and
 * width packed-plan.ts chose; no allocation per value (scratch typed arrays grow by
 * doubling and are reused).
 */
import { ByteWriter } from './bytes.js';
import { BitWriter } from './bits.js';
import { EXCEPTIONS_FLAG, FAST_WIDTH_MAX, POW2 } from './packed-layout.js';
import type { PackedPlan } from './packed-plan.js';

export { decodePacked, decodePackedF64, integratePackedF64, readPackedResiduals, skipPacked, type PackedHead } from './packed-int-decode.js';
export { planPacked, type PackedPlan } from './packed-plan.js';

let resid = new Float64Array(1024);
const bitWriter = new BitWriter(new ByteWriter(8)); // pointed at the column's writer by reset()

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Writes the PACKED body (after the kind byte, which carries order and k) of scaled[0, n). */
export function encodePacked(w: ByteWriter, scaled: Float64Array, n: number, plan: PackedPlan): void {
  const { order, width } = plan;
  const m = n - order;
  // The heads (first value, first difference) through one call site, the difference taken
  // for every order (n >= 3): the first order-2 column then meets no step V8 has not seen
  // run, which would throw away the optimised code of this function and its callers.
  const first = scaled[0] as number;
  const firstDelta = (scaled[1] as number) - first;
  for (let j = 0; j < order; j++) w.svar(j === 0 ? first : firstDelta);
  const exceptions = plan.exceptions;
  if (exceptions === 0 && width <= FAST_WIDTH_MAX) {
    w.u8(width);
    return packResiduals(w, scaled, order, m, width);
  }
  const limit = POW2[width] as number;
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
