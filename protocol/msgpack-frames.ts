/**
 * A small msgpack writer for the hot frames (batch, batches, state) of msgpack sessions.
 * Numbers are written the way msgpackr writes them (integers in 32-bit range as ints,
 * everything else as float64) except that -0 keeps its sign as a float64, so frames
 * reproduce recorded numbers bit for bit. Other values go through msgpackr. Pure.
 */
import { Packr } from 'msgpackr';
import type { Value } from './value.js';

const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
const utf8 = new TextEncoder();

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

  mapHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x80 | n;
    else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  arrayHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  str(s: string): void {
    const max = s.length * 3;
    this.ensure(max + 5);
    const start = this.pos;
    // Reserve the largest header the string could need, then move the bytes if smaller.
    const hdr = max < 32 ? 1 : max < 256 ? 2 : max < 0x10000 ? 3 : 5;
    const { written } = utf8.encodeInto(s, this.buf.subarray(start + hdr));
    const n = written ?? 0;
    let need = n < 32 ? 1 : n < 256 ? 2 : n < 0x10000 ? 3 : 5;
    if (need < hdr) {
      this.buf.copyWithin(start + need, start + hdr, start + hdr + n);
    } else {
      need = hdr;
    }
    if (need === 1) this.buf[start] = 0xa0 | n;
    else if (need === 2) {
      this.buf[start] = 0xd9;
      this.buf[start + 1] = n;
    } else if (need === 3) {
      this.buf[start] = 0xda;
      this.view.setUint16(start + 1, n);
    } else {
      this.buf[start] = 0xdb;
      this.view.setUint32(start + 1, n);
    }
    this.pos = start + need + n;
  }

  num(v: number): void {
    this.ensure(9);
    const b = this.buf;
    if (Number.isInteger(v) && v >= -2147483648 && v <= 4294967295 && !(v === 0 && 1 / v < 0)) {
      if (v >= 0) {
        if (v < 128) b[this.pos++] = v;
        else if (v < 256) {
          b[this.pos++] = 0xcc;
          b[this.pos++] = v;
        } else if (v < 0x10000) {
          b[this.pos++] = 0xcd;
          this.view.setUint16(this.pos, v);
          this.pos += 2;
        } else {
          b[this.pos++] = 0xce;
          this.view.setUint32(this.pos, v);
          this.pos += 4;
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
      } else {
        b[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, v);
        this.pos += 4;
      }
      return;
    }
    b[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  value(v: Value): void {
    switch (typeof v) {
      case 'number':
        return this.num(v);
      case 'string':
        return this.str(v);
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xc3 : 0xc2;
        return;
      default: {
        if (v === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xc0;
          return;
        }
        const bytes = packr.pack(v);
        this.ensure(bytes.length);
        this.buf.set(bytes, this.pos);
        this.pos += bytes.length;
      }
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
}

/** A batch as a view: updates are ids[from..to) / values[from..to), minus ids `match` rejects. */
export interface RawBatchView {
  ts: number;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  from: number;
  to: number;
}

export type IdMatch = ((id: number) => boolean) | undefined;

function rawUpdates(w: MsgpackWriter, b: RawBatchView, match: IdMatch): void {
  let n = b.to - b.from;
  if (match) {
    n = 0;
    for (let i = b.from; i < b.to; i++) if (match(b.ids[i] as number)) n++;
  }
  w.arrayHeader(n);
  for (let i = b.from; i < b.to; i++) {
    const id = b.ids[i] as number;
    if (match && !match(id)) continue;
    w.pair(id, b.values[i] as Value);
  }
}

/** A `batch` frame for one view, a `batches` frame for several. */
export function encodeRawFrame(w: MsgpackWriter, batches: readonly RawBatchView[], match: IdMatch): Uint8Array {
  w.reset();
  if (batches.length === 1) {
    const b = batches[0] as RawBatchView;
    w.mapHeader(3);
    w.str('type');
    w.str('batch');
    w.str('ts');
    w.num(b.ts);
    w.str('updates');
    rawUpdates(w, b, match);
    return w.take();
  }
  w.mapHeader(2);
  w.str('type');
  w.str('batches');
  w.str('batches');
  w.arrayHeader(batches.length);
  for (const b of batches) {
    w.mapHeader(2);
    w.str('ts');
    w.num(b.ts);
    w.str('updates');
    rawUpdates(w, b, match);
  }
  return w.take();
}

export function encodeStateFrame(w: MsgpackWriter, ts: number | null, values: ReadonlyArray<readonly [number, Value]>): Uint8Array {
  w.reset();
  w.mapHeader(3);
  w.str('type');
  w.str('state');
  w.str('ts');
  if (ts === null) w.value(null);
  else w.num(ts);
  w.str('values');
  w.pairs(values);
  return w.take();
}
