/**
 * JSON text written straight to UTF-8 bytes: the session replay path's JSON frames
 * (protocol/frames.ts encodeJsonRawFrameBytes) without building a string the socket then
 * encodes again. Values are written as the bytes of valueToJsonText (protocol/value-json.ts,
 * the one JSON form): numbers and short ASCII strings here, digit by digit, every other
 * value as that function's text. test/json-bytes.test.ts compares the bytes on seeded
 * hostile values. Pure, and free of Node APIs.
 */
import type { Value } from './value.js';
import { valueToJsonText } from './value-json.js';

const utf8 = new TextEncoder();

/** Below this, |k| has at most 15 digits: the double nearest k/10^d prints as exactly those digits. */
const EXACT_DIGITS_MAX = 1e15;
/** A number past int32 is written as hi x LOW_PART + lo, both int32 (safe integers: hi below 2^31). */
const LOW_PART = 1e8;
const LOW_DIGITS = 8;

/** Decimal digits of 0 <= x < 2^31. */
function digitCount(x: number): number {
  if (x < 10000) return x < 10 ? 1 : x < 100 ? 2 : x < 1000 ? 3 : 4;
  if (x < 100000000) return x < 100000 ? 5 : x < 1000000 ? 6 : x < 10000000 ? 7 : 8;
  return x < 1000000000 ? 9 : 10;
}

export class JsonBytesWriter {
  private buf = new Uint8Array(64 * 1024);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  /** A copy of what was written. */
  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Text of ASCII characters only (the frame's punctuation and keys). */
  ascii(s: string): void {
    this.ensure(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Bytes written before (a path's quoted UTF-8, cached by the caller). */
  bytes(x: Uint8Array): void {
    this.ensure(x.length);
    this.buf.set(x, this.pos);
    this.pos += x.length;
  }

  /**
   * One update of a frame: `[path,value]` (`,[path,value]` unless first), the path as its
   * quoted UTF-8, the value as value() writes it.
   */
  pair(quotedPath: Uint8Array, v: Value, first: boolean): void {
    const n = quotedPath.length;
    this.ensure(n + 3);
    const b = this.buf;
    let p = this.pos;
    if (!first) b[p++] = 0x2c; // ,
    b[p++] = 0x5b; // [
    b.set(quotedPath, p);
    p += n;
    b[p++] = 0x2c;
    this.pos = p;
    this.value(v);
    this.ensure(1);
    this.buf[this.pos++] = 0x5d; // ]
  }

  /** A path of a columns-layout batch (protocol/frame-columns.ts): its quoted UTF-8, after `,` unless first. */
  pathItem(quotedPath: Uint8Array, first: boolean): void {
    const n = quotedPath.length;
    this.ensure(n + 1);
    let p = this.pos;
    if (!first) this.buf[p++] = 0x2c; // ,
    this.buf.set(quotedPath, p);
    this.pos = p + n;
  }

  /** A value of a columns-layout batch: value(v), after `,` unless first. */
  valueItem(v: Value, first: boolean): void {
    if (!first) {
      this.ensure(1);
      this.buf[this.pos++] = 0x2c;
    }
    this.value(v);
  }

  /** Any text, as UTF-8 (JSON text is well formed: JSON.stringify escapes lone surrogates). */
  text(s: string): void {
    this.ensure(s.length * 3);
    this.pos += utf8.encodeInto(s, this.buf.subarray(this.pos)).written;
  }

  /** The UTF-8 bytes of valueToJsonText(v). */
  value(v: Value): void {
    if (typeof v === 'number') {
      if (!this.number(v)) this.text(valueToJsonText(v));
    } else if (typeof v !== 'string' || !this.shortAscii(v)) {
      this.text(valueToJsonText(v));
    }
  }

  /** An integer (safe) or a number of one or two decimals: String(v)'s digits; false for anything else. */
  private number(v: number): boolean {
    if ((v | 0) === v) {
      if (v === 0 && 1 / v < 0) return false;
      this.decimal(v, 0);
      return true;
    }
    // v is the double nearest k/10^d, and k has at most 15 digits: then String(v) is k's
    // digits with the point d from the end (no other 15-digit decimal has the same
    // double, and the shortest text naming v has no more digits than that one).
    let k = Math.round(v * 10);
    if (k / 10 === v) {
      if (Math.abs(k) >= EXACT_DIGITS_MAX) return false;
      // A multiple of 10: v is an integer past int32.
      if (k % 10 === 0) {
        if (!Number.isSafeInteger(v)) return false;
        this.decimal(v, 0);
      } else {
        this.decimal(k, 1);
      }
      return true;
    }
    k = Math.round(v * 100);
    if (k / 100 === v && Math.abs(k) < EXACT_DIGITS_MAX) {
      this.decimal(k, 2);
      return true;
    }
    return false;
  }

  /**
   * k / 10^point in decimal (k a safe integer): its digits, a point before the last `point`
   * of them. k past int32 is written as two int32 halves (k = hi x 10^8 + lo, lo as 8
   * digits), so that every digit is an int32 division, not a double one (counters past
   * 2^31 are most of a poll's numbers).
   */
  private decimal(k: number, point: number): void {
    this.ensure(24);
    const b = this.buf;
    let p = this.pos;
    if (k < 0) {
      b[p++] = 0x2d; // -
      k = -k;
    }
    let hi = 0;
    let lo = k;
    if (k >= LOW_PART) {
      hi = Math.floor(k / LOW_PART);
      lo = k - hi * LOW_PART;
    }
    let digits = hi > 0 ? LOW_DIGITS + digitCount(hi) : digitCount(lo);
    // At least one digit before the point: 0.5, not .5.
    if (digits <= point) digits = point + 1;
    const end = p + digits + (point > 0 ? 1 : 0);
    let q = end;
    for (let i = 0; i < digits; i++) {
      if (i === point && point > 0) b[--q] = 0x2e; // .
      if (i === LOW_DIGITS) lo = hi;
      const next = (lo / 10) | 0;
      b[--q] = 0x30 + lo - next * 10;
      lo = next;
    }
    this.pos = end;
  }

  /** JSON.stringify of a string under 64 characters of printable ASCII without `"` or `\`; false otherwise. */
  private shortAscii(s: string): boolean {
    const n = s.length;
    if (n >= 64) return false;
    this.ensure(n + 2);
    const b = this.buf;
    const start = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c) return false;
      b[start + 1 + i] = c;
    }
    b[start] = 0x22;
    b[start + 1 + n] = 0x22;
    this.pos = start + n + 2;
    return true;
  }
}
