/**
 * The msgpack form of a value (docs/values.md), used by msgpack session frames, the
 * archive's msgpack columns, the Kafka sink and the SDK. Pure. Exact for every value:
 *   numbers     integers within ±(2^53 - 1) as msgpack ints (the smallest form), every
 *               other number (fractions, NaN, ±Infinity, -0, huge doubles) as float64
 *   bigints     int64/uint64 when they fit, else ext 2 (decimal text)
 *   strings     str (UTF-8) when well formed, else ext 1 (UTF-16 code units, little
 *               endian) so lone surrogates survive
 *   bytes       bin;  arrays  array;  objects  map with string keys, in key order
 * Decoding builds objects with own properties, so `__proto__` is a key like any other.
 * The reader also takes what msgpackr wrote before this codec (docs/values.md): strings
 * holding WTF-8 surrogates, float32, integer map keys.
 */
import { TapedeckError } from './errors.js';
import { VALUE_DEPTH_MAX, canonicalInteger, isWellFormed, type Value } from './value.js';
import { MsgpackExt } from './msgpack-ext.js';
import { PAIR_FAST_BYTES_MAX, writeNumberFast, writeUint32 } from './msgpack-pair-bytes.js';

export { MsgpackExt } from './msgpack-ext.js';
export { MsgpackReader, decodeMsgpack } from './msgpack-reader.js';

const utf8 = new TextEncoder();
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Writes msgpack values into a growing buffer reused between messages (reset, take, written). */
export class MsgpackWriter {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  /** A copy of what was written. */
  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** A view of what was written, valid until the writer is used again. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private header(n: number, fix: number, fixMax: number, c16: number, c32: number, c8 = -1): void {
    this.ensure(5);
    if (n < fixMax) this.buf[this.pos++] = fix | n;
    else if (c8 >= 0 && n < 256) {
      this.buf[this.pos++] = c8;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = c16;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = c32;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  mapHeader(n: number): void {
    this.header(n, 0x80, 16, 0xde, 0xdf);
  }

  arrayHeader(n: number): void {
    this.header(n, 0x90, 16, 0xdc, 0xdd);
  }

  private binHeader(n: number): void {
    this.header(n, 0, 0, 0xc5, 0xc6, 0xc4);
  }

  private raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  private ext(type: number, data: Uint8Array): void {
    const n = data.length;
    this.ensure(6);
    const fixed = [1, 2, 4, 8, 16].indexOf(n);
    if (fixed >= 0) this.buf[this.pos++] = 0xd4 + fixed;
    else this.header(n, 0, 0, 0xc8, 0xc9, 0xc7);
    this.buf[this.pos++] = type;
    this.raw(data);
  }

  /** A string: UTF-8 when well formed, else its UTF-16 code units in ext 1. */
  str(s: string): void {
    if (s.length < 32 && this.asciiStr(s)) return;
    if (!isWellFormed(s)) {
      const units = new Uint8Array(s.length * 2);
      const dv = new DataView(units.buffer);
      for (let i = 0; i < s.length; i++) dv.setUint16(i * 2, s.charCodeAt(i), true);
      this.ext(MsgpackExt.UTF16, units);
      return;
    }
    const max = s.length * 3;
    this.ensure(max + 5);
    const start = this.pos;
    // Reserve the largest header the string could need, then move the bytes if smaller.
    const hdr = max < 32 ? 1 : max < 256 ? 2 : max < 0x10000 ? 3 : 5;
    const { written } = utf8.encodeInto(s, this.buf.subarray(start + hdr));
    const n = written ?? 0;
    const need = n < 32 ? 1 : n < 256 ? 2 : n < 0x10000 ? 3 : 5; // never more than hdr: n <= max
    if (need < hdr) this.buf.copyWithin(start + need, start + hdr, start + hdr + n);
    this.pos = start;
    this.header(n, 0xa0, 32, 0xda, 0xdb, 0xd9);
    this.pos += n;
  }

  /** Short ASCII strings byte by byte (most keys and enum-like values): no encoder call. */
  private asciiStr(s: string): boolean {
    const n = s.length;
    this.ensure(n + 1);
    const b = this.buf;
    const start = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      b[start + 1 + i] = c;
    }
    b[start] = 0xa0 | n;
    this.pos = start + 1 + n;
    return true;
  }

  /** A number: safe integers as msgpack ints (timestamps as uint64), anything else as float64. */
  num(v: number): void {
    this.ensure(9);
    const b = this.buf;
    if (!Number.isSafeInteger(v) || (v === 0 && 1 / v < 0)) {
      b[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
    } else if (v >= 0) {
      if (v < 128) b[this.pos++] = v;
      else if (v < 256) {
        b[this.pos++] = 0xcc;
        b[this.pos++] = v;
      } else if (v < 0x10000) {
        b[this.pos++] = 0xcd;
        this.view.setUint16(this.pos, v);
        this.pos += 2;
      } else if (v <= 0xffffffff) {
        b[this.pos++] = 0xce;
        this.view.setUint32(this.pos, v);
        this.pos += 4;
      } else {
        b[this.pos++] = 0xcf;
        this.view.setUint32(this.pos, Math.floor(v / 0x100000000));
        this.view.setUint32(this.pos + 4, v >>> 0);
        this.pos += 8;
      }
    } else if (v >= -32) {
      b[this.pos++] = v & 0xff;
    } else if (v >= -128) {
      b[this.pos++] = 0xd0;
      this.view.setInt8(this.pos++, v);
    } else if (v >= -32768) {
      b[this.pos++] = 0xd1;
      this.view.setInt16(this.pos, v);
      this.pos += 2;
    } else if (v >= -2147483648) {
      b[this.pos++] = 0xd2;
      this.view.setInt32(this.pos, v);
      this.pos += 4;
    } else {
      b[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, BigInt(v));
      this.pos += 8;
    }
  }

  private bigint(v: bigint): void {
    const n = canonicalInteger(v);
    if (typeof n === 'number') return this.num(n);
    this.ensure(9);
    if (n >= INT64_MIN && n < 0n) {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, n);
      this.pos += 8;
    } else if (n > 0n && n <= UINT64_MAX) {
      this.buf[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, n);
      this.pos += 8;
    } else {
      this.ext(MsgpackExt.BIGINT, utf8.encode(n.toString()));
    }
  }

  /** Any value; objects' undefined members are left out, as JSON leaves them out. */
  value(v: Value, depth = 0): void {
    switch (typeof v) {
      case 'number':
        return this.num(v);
      case 'string':
        return this.str(v);
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xc3 : 0xc2;
        return;
      case 'bigint':
        return this.bigint(v);
      case 'undefined':
        this.ensure(1);
        this.buf[this.pos++] = 0xc0;
        return;
      default:
        break;
    }
    if (v === null) {
      this.ensure(1);
      this.buf[this.pos++] = 0xc0;
      return;
    }
    if (v instanceof Uint8Array) {
      // Bytes are a scalar, no level (as the readers take them).
      this.binHeader(v.length);
      this.raw(v);
      return;
    }
    if (depth >= VALUE_DEPTH_MAX) throw new TapedeckError('TPD_BAD_ARGUMENT', `value nested deeper than ${VALUE_DEPTH_MAX} levels`);
    if (Array.isArray(v)) {
      this.arrayHeader(v.length);
      for (const x of v) this.value(x, depth + 1);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v);
      let n = 0;
      for (const k of keys) if (v[k] !== undefined) n++;
      this.mapHeader(n);
      for (const k of keys) {
        const x = v[k];
        if (x === undefined) continue;
        this.str(k);
        this.value(x, depth + 1);
      }
    } else {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `a ${typeof v} is not a value`);
    }
  }

  /** [[id, value], ...] */
  pairs(updates: ReadonlyArray<readonly [number, Value]>): void {
    this.arrayHeader(updates.length);
    for (const u of updates) this.pair(u[0], u[1]);
  }

  pair(id: number, v: Value): void {
    this.ensure(1);
    this.buf[this.pos++] = 0x92;
    this.num(id);
    this.value(v);
  }

  /**
   * [[id, value], ...] for ids[from..to) / values[from..to), leaving out ids `match`
   * rejects: the bytes of arrayHeader(n) and pair() for each, in one loop that writes
   * uint32 ids, int32 numbers and fractions itself (the session replay path: one call a
   * batch instead of three a update); anything else goes through value().
   */
  pairsOf(ids: ArrayLike<number>, values: ArrayLike<Value>, from: number, to: number, match?: (id: number) => boolean): void {
    let n = to - from;
    if (match) {
      n = 0;
      for (let i = from; i < to; i++) if (match(ids[i] as number)) n++;
    }
    this.arrayHeader(n);
    let b = this.buf;
    let p = this.pos;
    for (let i = from; i < to; i++) {
      const id = ids[i] as number;
      if (match && !match(id)) continue;
      if (p + PAIR_FAST_BYTES_MAX > b.length) {
        this.pos = p;
        this.ensure(PAIR_FAST_BYTES_MAX);
        b = this.buf;
      }
      b[p++] = 0x92;
      // -0 passes `>>> 0 === id` but num() writes it as a float64.
      if (id >>> 0 === id && (id !== 0 || 1 / id > 0)) p = writeUint32(b, p, id);
      else {
        this.pos = p;
        this.num(id);
        p = this.pos;
      }
      const v = values[i] as Value;
      if (typeof v === 'number') {
        const q = writeNumberFast(this.view, b, p, v);
        if (q >= 0) {
          p = q;
          continue;
        }
      }
      this.pos = p;
      this.value(v);
      b = this.buf;
      p = this.pos;
    }
    this.pos = p;
  }

  /**
   * pairsOf for updates held as columns (a block read by storage's Cursor.nextColumns):
   * update u's value is nums[u] unless u is otherAt[j] (j < otherCount, ascending), then
   * others[j]; `j` is the first of otherAt at or after `from`. The bytes pairsOf writes for
   * the same values (NaN payloads included). Returns the `j` after `to`.
   */
  pairsOfColumns(ids: ArrayLike<number>, nums: Float64Array, from: number, to: number, otherAt: ArrayLike<number>, others: ArrayLike<Value>, otherCount: number, j: number): number {
    this.arrayHeader(to - from);
    let b = this.buf;
    let p = this.pos;
    let nextOther = j < otherCount ? (otherAt[j] as number) : -1;
    for (let i = from; i < to; i++) {
      const id = ids[i] as number;
      if (p + PAIR_FAST_BYTES_MAX > b.length) {
        this.pos = p;
        this.ensure(PAIR_FAST_BYTES_MAX);
        b = this.buf;
      }
      b[p++] = 0x92;
      if (id >>> 0 === id && (id !== 0 || 1 / id > 0)) p = writeUint32(b, p, id);
      else {
        this.pos = p;
        this.num(id);
        p = this.pos;
      }
      let v: Value;
      if (i === nextOther) {
        v = others[j++] as Value;
        nextOther = j < otherCount ? (otherAt[j] as number) : -1;
      } else {
        v = nums[i] as number;
        const q = writeNumberFast(this.view, b, p, v);
        if (q >= 0) {
          p = q;
          continue;
        }
      }
      this.pos = p;
      this.value(v);
      b = this.buf;
      p = this.pos;
    }
    this.pos = p;
    return j;
  }
}

/** A value's msgpack bytes (a fresh copy). */
export function encodeMsgpack(v: Value, w: MsgpackWriter = new MsgpackWriter()): Uint8Array {
  w.reset();
  w.value(v);
  return w.take();
}

/**
 * At most the bytes MsgpackWriter.str writes for `s`, header included: its UTF-8 length
 * (`utf8Length`, the caller's platform's) and a str 32 header when well formed, else ext 1
 * of its UTF-16 code units (two bytes each) and an ext 32 header.
 */
export function msgpackStringBytes(s: string, utf8Length: (s: string) => number): number {
  return isWellFormed(s) ? utf8Length(s) + 5 : 2 * s.length + 6;
}
