/**
 * Reading one column of a batch payload (docs/format.md, "Column"): every kind ever written,
 * into boxed values or a Float64Array, or skipped without materialising its values.
 */
import type { Value } from '../../protocol/value.js';
import { MsgpackReader } from '../../protocol/value-msgpack.js';
import { TapedeckError } from '../../protocol/errors.js';
import type { ByteReader } from './bytes.js';
import { decodeXorColumn, decodeXorF64, noteSignalingNaN, skipXorColumn } from './xor-float.js';
import { decodePacked, decodePackedF64, skipPacked } from './packed-int.js';
import { ColumnKind, DECIMAL_EXPONENT_MAX, LITTLE_ENDIAN, PACKED_END, POW10, VARINT_BYTES_MAX } from './column-kinds.js';

/** Scaled integers of a PACKED column being decoded into boxed values (grown by doubling). */
let scaled = new Float64Array(1024);
const nanView = new DataView(new ArrayBuffer(8));

/** Reads one column (kind byte, then body) into out[from, to). */
export function decodeColumn(r: ByteReader, out: Value[], from: number, to: number): void {
  decodeColumnBody(r.u8(), r, out, from, to);
}

/** Reads the body of a column of kind `kind` into out[from, to) (layout 2 keeps kinds apart). */
export function decodeColumnBody(kind: number, r: ByteReader, out: Value[], from: number, to: number): void {
  if (kind === ColumnKind.DECIMAL) {
    const k = r.u8();
    if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    decodeDecimal(r, out, from, to, k);
  } else if (kind === ColumnKind.FLOAT64) {
    for (let i = from; i < to; i++) {
      const v = r.f64();
      if (v !== v) noteSignalingNaN(r.view, r.pos - 8);
      out[i] = v;
    }
  } else if (kind === ColumnKind.XOR) {
    if (to > from) decodeXorColumn(r, out, from, to);
    else if (r.uvar() !== 0) r.fail('empty xor column with bits');
  } else if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
    decodeDecimal(r, out, from, to, kind - ColumnKind.DECIMAL_K);
  } else if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
    const k = kind & 0x0f;
    if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    const n = to - from;
    if (scaled.length < n) scaled = new Float64Array(Math.max(n, scaled.length * 2));
    decodePacked(r, scaled, n, (kind - ColumnKind.PACKED) >> 4, out, from, POW10[k] as number);
  } else if (kind === ColumnKind.MSGPACK) {
    decodeMsgpack(r, out, from, to);
  } else {
    r.fail(`unknown column kind ${kind}`);
  }
}

/**
 * decodeColumn for a column of numbers, written straight into `out[from, to)`: no value is
 * boxed and every store is to a Float64Array (FLOAT64 and XOR columns go in as their bits,
 * so NaN payloads are kept whatever the engine does with NaN numbers). Refuses what
 * decodeColumn refuses, and a MSGPACK column holding anything but numbers (the caller reads
 * such a column with decodeColumn). PACKED columns go through packed-int.ts's decoder.
 */
export function decodeColumnF64(r: ByteReader, out: Float64Array, from: number, to: number): void {
  decodeColumnBodyF64(r.u8(), r, out, from, to);
}

/** decodeColumnF64 of a column body whose kind byte was read apart (layout 2). */
export function decodeColumnBodyF64(kind: number, r: ByteReader, out: Float64Array, from: number, to: number): void {
  if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
    decodeDecimalF64(r, out, from, to, kind - ColumnKind.DECIMAL_K);
  } else if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
    const k = kind & 0x0f;
    if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    decodePackedF64(r, to - from, (kind - ColumnKind.PACKED) >> 4, out, from, POW10[k] as number);
  } else if (kind === ColumnKind.DECIMAL) {
    const k = r.u8();
    if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    decodeDecimalF64(r, out, from, to, k);
  } else if (kind === ColumnKind.FLOAT64) {
    const bytes = r.bytes(8 * (to - from));
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer, out.byteOffset + 8 * from, 8 * (to - from)).set(bytes);
    else for (let i = from, at = r.pos - bytes.length; i < to; i++, at += 8) out[i] = r.view.getFloat64(at, true);
  } else if (kind === ColumnKind.XOR) {
    if (to > from) decodeXorF64(r, out, from, to);
    else if (r.uvar() !== 0) r.fail('empty xor column with bits');
  } else if (kind === ColumnKind.MSGPACK) {
    const values: Value[] = new Array<Value>(to - from).fill(null);
    decodeMsgpack(r, values, 0, to - from);
    for (let i = from; i < to; i++) {
      const v = values[i - from];
      if (typeof v !== 'number') r.fail('msgpack column holds a value that is not a number');
      out[i] = v;
    }
  } else {
    r.fail(`unknown column kind ${kind}`);
  }
}

/**
 * Every column body of a layout-2 payload of numbers, in order, into nums grouped by column
 * (column c's counts[c] values after column c - 1's): decodeColumnBodyF64 of each, the same
 * bits and refusals, with decimal columns (nearly all of a block of many short columns:
 * the mixed workload's 1 to 4 values a column) read here without a call per column or per
 * varint. counts[c] becomes column c's start in nums. Returns true if a column stores raw
 * bits (XOR, FLOAT64): only those can hold a NaN.
 */
export function decodeColumnsF64(r: ByteReader, kinds: Uint8Array, counts: Uint32Array, nums: Float64Array): boolean {
  const b = r.buf;
  // Varints of up to 3 bytes are read inline while 3 bytes are left; the rest by r.svar.
  const inlineEnd = r.end - 2;
  let p = r.pos;
  let at = 0;
  let rawBits = false;
  for (let c = 0; c < kinds.length; c++) {
    const n = counts[c] as number;
    const kind = kinds[c] as number;
    counts[c] = at;
    const k = kind - ColumnKind.DECIMAL_K;
    if (k >= 0 && k <= DECIMAL_EXPONENT_MAX) {
      const div = POW10[k] as number;
      let acc = 0;
      for (let i = at; i < at + n; i++) {
        let z: number;
        const b0 = p < inlineEnd ? (b[p] as number) : 0x100;
        if (b0 < 0x80) {
          z = b0;
          p++;
        } else if (b0 < 0x100 && (b[p + 1] as number) < 0x80) {
          z = (b0 & 0x7f) | ((b[p + 1] as number) << 7);
          p += 2;
        } else if (b0 < 0x100 && (b[p + 2] as number) < 0x80) {
          z = (b0 & 0x7f) | (((b[p + 1] as number) & 0x7f) << 7) | ((b[p + 2] as number) << 14);
          p += 3;
        } else {
          r.pos = p;
          acc += r.svar();
          p = r.pos;
          nums[i] = acc / div;
          continue;
        }
        acc += (z >>> 1) ^ -(z & 1);
        // acc / 1 is acc, bit for bit: no case for k = 0.
        nums[i] = acc / div;
      }
    } else {
      if (kind === ColumnKind.XOR || kind === ColumnKind.FLOAT64) rawBits = true;
      r.pos = p;
      decodeColumnBodyF64(kind, r, nums, at, at + n);
      p = r.pos;
    }
    at += n;
  }
  r.pos = p;
  return rawBits;
}

function decodeDecimalF64(r: ByteReader, out: Float64Array, from: number, to: number, k: number): void {
  const p = POW10[k] as number;
  let acc = 0;
  if (k === 0) {
    for (let i = from; i < to; i++) out[i] = acc += svarShort(r);
  } else {
    for (let i = from; i < to; i++) out[i] = (acc += svarShort(r)) / p;
  }
}

/**
 * r.svar() with one- and two-byte varints (most of a decimal column's) read here, small
 * enough to be inlined into the loops; longer ones, and any at the end, by r.svar.
 */
function svarShort(r: ByteReader): number {
  const b = r.buf;
  const at = r.pos;
  if (at + 1 < r.end) {
    const b0 = b[at] as number;
    if (b0 < 0x80) {
      r.pos = at + 1;
      return (b0 >>> 1) ^ -(b0 & 1);
    }
    const b1 = b[at + 1] as number;
    if (b1 < 0x80) {
      r.pos = at + 2;
      const z = (b0 & 0x7f) | (b1 << 7);
      return (z >>> 1) ^ -(z & 1);
    }
  }
  return r.svar();
}

function decodeDecimal(r: ByteReader, out: Value[], from: number, to: number, k: number): void {
  const p = POW10[k] as number;
  let acc = 0;
  for (let i = from; i < to; i++) {
    acc += r.svar();
    out[i] = k === 0 ? acc : acc / p;
  }
}

function decodeMsgpack(r: ByteReader, out: Value[], from: number, to: number): void {
  const len = r.uvar();
  const bytes = r.bytes(len);
  const m = new MsgpackReader(bytes);
  try {
    for (let i = from; i < to; i++) {
      if (m.done) r.fail('msgpack column holds the wrong number of values');
      const v = m.value();
      if (v !== v) {
        nanView.setFloat64(0, v as number, true);
        noteSignalingNaN(nanView, 0);
      }
      out[i] = v;
    }
  } catch (err) {
    if (err instanceof TapedeckError && err.code === 'TPD_CORRUPT_BLOCK') throw err;
    throw new TapedeckError('TPD_CORRUPT_BLOCK', 'malformed payload: msgpack column does not decode', undefined, { cause: err });
  }
  if (!m.done) r.fail('msgpack column holds the wrong number of values');
}

/**
 * Moves past a column of `count` values without building them: FLOAT64 jumps, DECIMAL
 * scans its varints' bytes, PACKED jumps over its bits and scans its exceptions, XOR and
 * MSGPACK jump over their byte length. A skipped column
 * is checked only for its extent (a reader that keeps it checks the rest).
 */
export function skipColumn(r: ByteReader, count: number): void {
  skipColumnBody(r.u8(), r, count);
}

/** skipColumn for the body of a column of kind `kind`. */
export function skipColumnBody(kind: number, r: ByteReader, count: number): void {
  if (kind === ColumnKind.DECIMAL) {
    if (r.u8() > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    skipVarints(r, count);
  } else if (kind === ColumnKind.FLOAT64) {
    r.bytes(8 * count);
  } else if (kind === ColumnKind.XOR) {
    skipXorColumn(r);
  } else if (kind >= ColumnKind.DECIMAL_K && kind <= ColumnKind.DECIMAL_K + DECIMAL_EXPONENT_MAX) {
    skipVarints(r, count);
  } else if (kind >= ColumnKind.PACKED && kind < PACKED_END) {
    skipPacked(r, count, (kind - ColumnKind.PACKED) >> 4);
  } else if (kind === ColumnKind.MSGPACK) {
    r.bytes(r.uvar());
  } else {
    r.fail(`unknown column kind ${kind}`);
  }
}

function skipVarints(r: ByteReader, count: number): void {
  const b = r.buf;
  let p = r.pos;
  for (let i = 0; i < count; i++) {
    const first = p;
    for (;;) {
      if (p >= r.end) r.fail('truncated varint');
      if (((b[p++] as number) & 0x80) === 0) break;
      if (p - first >= VARINT_BYTES_MAX) r.fail('varint longer than 8 bytes');
    }
  }
  r.pos = p;
}
