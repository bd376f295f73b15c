/**
 * The byte writers of MsgpackWriter's batch fast path (protocol/value-msgpack.ts pairsOf,
 * pairsOfColumns): a uint32 id, an int32 or a float64 written straight into the writer's
 * buffer at a position, the bytes num() writes for the same number, without a call per
 * field. Pure; the caller makes room (PAIR_FAST_BYTES_MAX a pair).
 */

/**
 * num(v) at b[p] for an int32 other than -0 and for anything not a safe integer (float64),
 * returning the position after it; -1 for the rest (safe integers past int32, -0), which
 * num() writes.
 */
export function writeNumberFast(view: DataView, b: Uint8Array, p: number, v: number): number {
  if ((v | 0) === v && (v !== 0 || 1 / v > 0)) return writeInt32(b, p, v);
  if (Number.isSafeInteger(v)) return -1;
  b[p] = 0xcb;
  view.setFloat64(p + 1, v);
  return p + 9;
}

/** The most pairsOf writes for one pair without value(): 0x92, a uint32 id, a float64. */
export const PAIR_FAST_BYTES_MAX = 1 + 5 + 9;

/** num() of a uint32, at b[p]; returns the position after it. */
export function writeUint32(b: Uint8Array, p: number, v: number): number {
  if (v < 128) {
    b[p] = v;
    return p + 1;
  }
  if (v < 256) {
    b[p] = 0xcc;
    b[p + 1] = v;
    return p + 2;
  }
  if (v < 0x10000) {
    b[p] = 0xcd;
    b[p + 1] = v >>> 8;
    b[p + 2] = v & 0xff;
    return p + 3;
  }
  b[p] = 0xce;
  b[p + 1] = v >>> 24;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 8) & 0xff;
  b[p + 4] = v & 0xff;
  return p + 5;
}

/** num() of an int32 other than -0, at b[p]; returns the position after it. */
function writeInt32(b: Uint8Array, p: number, v: number): number {
  if (v >= 0) return writeUint32(b, p, v);
  if (v >= -32) {
    b[p] = v & 0xff;
    return p + 1;
  }
  if (v >= -128) {
    b[p] = 0xd0;
    b[p + 1] = v & 0xff;
    return p + 2;
  }
  if (v >= -32768) {
    b[p] = 0xd1;
    b[p + 1] = (v >> 8) & 0xff;
    b[p + 2] = v & 0xff;
    return p + 3;
  }
  b[p] = 0xd2;
  b[p + 1] = (v >>> 24) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 8) & 0xff;
  b[p + 4] = v & 0xff;
  return p + 5;
}
