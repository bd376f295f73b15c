/**
 * Growable byte writer and bounds-checked byte reader with LEB128 varints and zigzag,
 * exact for every integer JS numbers carry (|n| <= 2^53). Pure, no I/O.
 */
import { TapedeckError } from '../../protocol/errors.js';

const TWO_32 = 4294967296;
/**
 * Below this, a negative integer's zigzag (-2v - 1, odd) is past 2^53, where doubles hold
 * only even integers: it is written from -v - 1 instead (putSvarFar), and ByteReader.svar
 * reads it from the bytes. (A block's times: from 0 to 2^53 - 1, the time contract's ends,
 * a second difference reaches -(2^53 - 3); it was written as the zigzag rounded to even,
 * read back as a positive number, and the block's later times came back wrong.)
 */
const ZIGZAG_NEGATIVE_MIN = -(2 ** 52);
const TWO_53 = 2 ** 53;

export class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(initialBytes = 4096) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned varint; v must be an integer in [0, 2^53]. */
  uvar(v: number): void {
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    if (v < 0x80) {
      b[p++] = v;
    } else if (v < TWO_32) {
      while (v >= 0x80) {
        b[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      b[p++] = v;
    } else {
      while (v >= 0x80) {
        b[p++] = (v % 128) | 0x80;
        v = Math.floor(v / 128);
      }
      b[p++] = v;
    }
    this.pos = p;
  }

  /** Signed varint (zigzag); v must be an integer with |v| <= 2^53 (putSvar). */
  svar(v: number): void {
    if (v >= ZIGZAG_NEGATIVE_MIN) this.uvar(v >= 0 ? v * 2 : -v * 2 - 1);
    else {
      this.ensure(8);
      this.pos = putSvar(this.buf, this.pos, v);
    }
  }

  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/**
 * Writes `v` (an integer in [0, 2^53]) as ByteWriter.uvar does, at buf[p]; returns the
 * position after it. For hot loops that ensured room for their varints once (8 bytes
 * each at most) instead of a call and a bounds check per varint.
 */
export function putUvar(buf: Uint8Array, p: number, v: number): number {
  if (v < 0x80) {
    buf[p] = v;
    return p + 1;
  }
  if (v < 0x4000) {
    buf[p] = (v & 0x7f) | 0x80;
    buf[p + 1] = v >>> 7;
    return p + 2;
  }
  if (v < 0x200000) {
    // Decimals of two places up to ±10 000 take three bytes: a loop call each was 3 % of a mixed write.
    buf[p] = (v & 0x7f) | 0x80;
    buf[p + 1] = ((v >>> 7) & 0x7f) | 0x80;
    buf[p + 2] = v >>> 14;
    return p + 3;
  }
  return putUvarLong(buf, p, v);
}

function putUvarLong(buf: Uint8Array, p: number, v: number): number {
  if (v < TWO_32) {
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
  } else {
    while (v >= 0x80) {
      buf[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
  }
  buf[p++] = v;
  return p;
}

/** putUvar of a signed integer (zigzag), |v| <= 2^53, as ByteWriter.svar. */
export function putSvar(buf: Uint8Array, p: number, v: number): number {
  if (v < ZIGZAG_NEGATIVE_MIN) return putSvarFar(buf, p, v);
  return putUvar(buf, p, v >= 0 ? v * 2 : -v * 2 - 1);
}

/**
 * putSvar of v < -2^52: the zigzag 2h + 1 (h = -v - 1, exact) as a varint: its low 7 bits
 * are 2 (h mod 64) + 1, the rest is floor(h / 64) (at least 2^46: more bytes follow).
 */
function putSvarFar(buf: Uint8Array, p: number, v: number): number {
  const h = -v - 1;
  buf[p] = ((h % 64) * 2 + 1) | 0x80;
  return putUvar(buf, p + 1, Math.floor(h / 64));
}

export class ByteReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  fail(what: string): never {
    throw new TapedeckError('TPD_CORRUPT_BLOCK', `malformed payload: ${what} at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('truncated u8');
    return this.buf[this.pos++] as number;
  }

  uvar(): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= this.end) this.fail('truncated varint');
    let byte = b[p++] as number;
    if (byte < 0x80) {
      this.pos = p;
      return byte;
    }
    let result = byte & 0x7f;
    let mul = 128;
    for (let i = 1; i < 8; i++) {
      if (p >= this.end) this.fail('truncated varint');
      byte = b[p++] as number;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) {
        this.pos = p;
        return result;
      }
      mul *= 128;
    }
    return this.fail('varint longer than 8 bytes');
  }

  svar(): number {
    const at = this.pos;
    const z = this.uvar();
    // From 2^53 on, z is rounded (its low bit, the sign, lost): read from the bytes.
    if (z >= TWO_53) return this.svarFar(at);
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** svar of the varint at buf[at, pos) whose zigzag is 2^53 or more: half of it summed exactly (below 2^53 for what putSvar writes), the sign its low bit. */
  private svarFar(at: number): number {
    const b = this.buf;
    const first = (b[at] as number) & 0x7f;
    let half = first >>> 1;
    let mul = 64;
    for (let q = at + 1; q < this.pos; q++, mul *= 128) half += ((b[q] as number) & 0x7f) * mul;
    return first & 1 ? -half - 1 : half;
  }

  f64(): number {
    if (this.pos + 8 > this.end) this.fail('truncated f64');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) this.fail('truncated bytes');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** i64 little-endian helpers for timestamps (exact for |v| <= 2^53). */
export function writeI64(view: DataView, offset: number, v: number): void {
  const lo = v % TWO_32;
  const loU = lo < 0 ? lo + TWO_32 : lo;
  const hi = (v - loU) / TWO_32;
  view.setUint32(offset, loU, true);
  view.setInt32(offset + 4, hi, true);
}

export function readI64(view: DataView, offset: number): number {
  return view.getInt32(offset + 4, true) * TWO_32 + view.getUint32(offset, true);
}
