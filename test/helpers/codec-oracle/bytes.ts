/**
 * Growable byte writer and bounds-checked byte reader with LEB128 varints and zigzag,
 * exact for every integer JS numbers carry (|n| <= 2^53). Pure, no I/O.
 */
import { TapedeckError } from '../../../protocol/errors.js';

const TWO_32 = 4294967296;

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

  /** Signed varint (zigzag); v must be an integer with |v| <= 2^52. */
  svar(v: number): void {
    this.uvar(v >= 0 ? v * 2 : -v * 2 - 1);
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
    // Mended after the freeze (as storage/codec/bytes.ts): from 2^53 on z is rounded and its
    // low bit (the sign) lost; the writer's times reach such zigzags (0, 2^53 - 2, 2^53 - 1).
    if (z >= 2 ** 53) {
      const first = (this.buf[at] as number) & 0x7f;
      let half = first >>> 1;
      for (let q = at + 1, mul = 64; q < this.pos; q++, mul *= 128) half += ((this.buf[q] as number) & 0x7f) * mul;
      return first & 1 ? -half - 1 : half;
    }
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
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
