/**
 * One column of a batch payload: the values of one path within a block (docs/format.md,
 * "Column"). The writer picks the smallest kind that is exact; readers decode every kind
 * ever written, and can skip a column without materialising its values.
 */
import type { Value } from '../../protocol/value.js';
import { MsgpackReader, MsgpackWriter } from '../../protocol/value-msgpack.js';
import { TapedeckError } from '../../protocol/errors.js';
import { putSvar, type ByteReader, type ByteWriter } from './bytes.js';
import { decodeXorColumn, decodeXorF64, encodeXorColumn, noteSignalingNaN, skipXorColumn, xorColumnBits } from './xor-float.js';
import { decodePacked, decodePackedF64, encodePacked, planPacked, skipPacked, type PackedPlan } from './packed-int.js';

/**
 * Kind bytes. DECIMAL_K + k is DECIMAL with its exponent in the kind byte (0x10..0x19);
 * PACKED + 16 x order + k likewise carries the prediction order and exponent (0x40..0x69).
 * The writer no longer produces DECIMAL (1); readers keep decoding it.
 */
export const ColumnKind = { MSGPACK: 0, DECIMAL: 1, FLOAT64: 2, XOR: 3, DECIMAL_K: 0x10, PACKED: 0x40 } as const;
const PACKED_END = ColumnKind.PACKED + 3 * 16;

/** Largest decimal exponent tried: values with more than 9 decimals are not DECIMAL. */
const DECIMAL_EXPONENT_MAX = 9;
/** Scaled integers stay within 2^51 so that their deltas stay exact within 2^52. */
const SCALED_ABS_MAX = 2 ** 51;
const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, k) => 10 ** k);
/** A varint of a zigzagged delta is at most this long (|delta| <= 2^52). */
const VARINT_BYTES_MAX = 8;

// Non-number columns hold values in the msgpack form of protocol/value-msgpack.ts, exact
// for every value (lone surrogates, `__proto__` keys, nested -0, bigints). Columns written
// by msgpackr before it decode the same way: standard msgpack, WTF-8 surrogates included.
const columnWriter = new MsgpackWriter();
// Number columns are copied here once, so that each candidate kind reads a typed array;
// `scaled` holds their scaled integers when the column is decimal.
let nums = new Float64Array(1024);
let scaled = new Float64Array(1024);
const plan: PackedPlan = { order: 0, width: 0, exceptions: 0, bytes: 0 };
const nanView = new DataView(new ArrayBuffer(8));
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** Exponents tried before decimalExponent's k = 9 rejection test: most decimals have so few. */
const FEW_DECIMALS = 3;
/** The scaled value decimalExponent found its exponent with (valid when it returned k >= 1). */
let exponentScaled = 0;

function decimalExponent(v: number): number {
  if (Number.isInteger(v)) return Math.abs(v) <= SCALED_ABS_MAX && !Object.is(v, -0) ? 0 : -1;
  if (v !== v || v === Infinity || v === -Infinity) return -1;
  // Values of a few decimals first: below 2e6, one exact at some k <= 9 also passes the
  // k = 9 test below (v x 10^9 is within 0.35 of the integer r x 10^(9 - k), < 2^51), so
  // trying them before it gives the same answer with one test fewer.
  for (let k = 1; k <= FEW_DECIMALS; k++) {
    const p = POW10[k] as number;
    const r = Math.round(v * p);
    if (r / p === v) return exponentFound(r, k);
  }
  // Fast rejection of arbitrary doubles: below ~2e6, a value exact at some k <= 9 also
  // round-trips at k = 9 (the scaled product stays far under 2^52), so one test suffices.
  if (Math.abs(v) < 2e6) {
    const p9 = POW10[DECIMAL_EXPONENT_MAX] as number;
    if (Math.round(v * p9) / p9 !== v) return -1;
  }
  for (let k = FEW_DECIMALS + 1; k <= DECIMAL_EXPONENT_MAX; k++) {
    const p = POW10[k] as number;
    const r = Math.round(v * p);
    if (r / p === v) return exponentFound(r, k);
  }
  return -1;
}

function exponentFound(r: number, k: number): number {
  exponentScaled = r;
  return Math.abs(r) <= SCALED_ABS_MAX ? k : -1;
}

function varintBytes(z: number): number {
  if (z < 0x80) return 1;
  if (z < 0x4000) return 2;
  if (z < 0x200000) return 3;
  if (z < 0x10000000) return 4;
  let n = 4;
  for (let x = Math.floor(z / 0x10000000); x > 0; x = Math.floor(x / 128)) n++;
  return n;
}

/** A scaled integer DECIMAL can hold: within SCALED_ABS_MAX and not -0 (nor ±Inf, NaN). */
function holdable(s: number): boolean {
  return Math.abs(s) <= SCALED_ABS_MAX && !(s === 0 && 1 / s < 0);
}

/**
 * Scales nums[0, n) at exponent k into `scaled` and returns the DECIMAL_K size (kind byte
 * included), or -1 when a value does not round-trip there or is not holdable (a large
 * integer next to a fine decimal: 486164504320 x 10^9).
 */
function rescale(n: number, k: number): number {
  const p = POW10[k] as number;
  let bytes = 1;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = nums[i] as number;
    const s = Math.round(v * p);
    if (s / p !== v || !holdable(s)) return -1;
    scaled[i] = s;
    const d = s - prev;
    bytes += varintBytes(d >= 0 ? d * 2 : -d * 2 - 1);
    prev = s;
  }
  return bytes;
}

/** Writes scaled[0, n) as the body of DECIMAL_K + k (varint deltas). */
function writeDecimal(w: ByteWriter, n: number): void {
  w.ensure(VARINT_BYTES_MAX * n);
  const b = w.buf;
  let p = w.pos;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const s = scaled[i] as number;
    p = putSvar(b, p, s - prev);
    prev = s;
  }
  w.pos = p;
}

/** Writes vals[order[from]], ..., vals[order[to - 1]] as one column of the smallest exact kind. */
export function encodeColumn(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): void {
  w.u8(0);
  const at = w.pos - 1;
  const kind = encodeColumnBody(w, vals, order, from, to);
  w.buf[at] = kind;
}

/**
 * encodeColumn without the kind byte: writes the body and returns the kind (layout 2 keeps
 * kinds apart from bodies). A Float64Array of values takes the typed path (no type checks,
 * nothing boxed).
 */
export function encodeColumnBody(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  if (vals instanceof Float64Array) return encodeNumberColumnBody(w, vals, order, from, to);
  const n = to - from;
  growNums(n);
  const ns = nums;
  for (let i = 0; i < n; i++) {
    const v = vals[order[from + i] as number];
    if (typeof v !== 'number') return writeMsgpack(w, vals, order, from, to);
    ns[i] = v;
  }
  return encodeNums(w, n);
}

/** encodeColumnBody of numbers held in a Float64Array (the block builder's unboxed values). */
export function encodeNumberColumnBody(w: ByteWriter, vals: Float64Array, order: Uint32Array, from: number, to: number): number {
  const n = to - from;
  if (n <= 2 && n >= 1) {
    const kind = encodeShortDecimal(w, vals, order, from, n);
    if (kind >= 0) return kind;
  }
  growNums(n);
  const ns = nums;
  for (let i = 0; i < n; i++) ns[i] = vals[order[from + i] as number] as number;
  return encodeNums(w, n);
}

/**
 * A column of one or two numbers that scaleDecimal finds decimal at its first value's
 * exponent, written here as encodeNums would (DECIMAL_K: n < 3 never plans PACKED) without
 * its scratch copies (a block of many paths holds thousands of such columns). Returns the
 * kind, or -1 with nothing written when the column needs encodeNums.
 */
function encodeShortDecimal(w: ByteWriter, vals: Float64Array, order: Uint32Array, from: number, n: number): number {
  const v0 = vals[order[from] as number] as number;
  let k = 0;
  let s0 = Math.round(v0);
  if (s0 !== v0 || !holdable(s0)) {
    k = decimalExponent(v0);
    if (k <= 0) return -1;
    s0 = exponentScaled;
  }
  let s1 = 0;
  if (n === 2) {
    const v1 = vals[order[from + 1] as number] as number;
    if (k === 0) {
      s1 = Math.round(v1);
      if (s1 !== v1 || !holdable(s1)) return -1;
    } else {
      const p = POW10[k] as number;
      s1 = Math.round(v1 * p);
      if (s1 / p !== v1 || !holdable(s1)) return -1;
    }
  }
  w.ensure(2 * VARINT_BYTES_MAX);
  let at = putSvar(w.buf, w.pos, s0);
  if (n === 2) at = putSvar(w.buf, at, s1 - s0);
  w.pos = at;
  return ColumnKind.DECIMAL_K + k;
}

function growNums(n: number): void {
  if (nums.length < n) {
    nums = new Float64Array(Math.max(n, nums.length * 2));
    scaled = new Float64Array(nums.length);
  }
}

/** Writes the body of nums[0, n) in the smallest exact kind and returns the kind. */
function encodeNums(w: ByteWriter, n: number): number {
  const dec = scaleDecimal(n);
  if (dec >= 0) {
    const k = decimalK;
    // Decimal columns: DECIMAL or PACKED, whichever is smaller (XOR rarely beats them and
    // would cost an encode per column).
    if (n >= 3) planPacked(scaled, n, plan);
    if (n < 3 || plan.bytes >= dec) {
      writeDecimal(w, n);
      return ColumnKind.DECIMAL_K + k;
    }
    encodePacked(w, scaled, n, plan);
    return ColumnKind.PACKED + 16 * plan.order + k;
  }
  const xorBytes = Math.ceil(xorColumnBits(nums, 0, n) / 8);
  if (varintBytes(xorBytes) + xorBytes < 8 * n) {
    encodeXorColumn(w, nums, 0, n);
    return ColumnKind.XOR;
  }
  w.ensure(8 * n);
  if (LITTLE_ENDIAN) w.buf.set(new Uint8Array(nums.buffer, 0, 8 * n), w.pos);
  else for (let i = 0; i < n; i++) w.view.setFloat64(w.pos + 8 * i, nums[i] as number, true);
  w.pos += 8 * n;
  return ColumnKind.FLOAT64;
}

/** The exponent scaleDecimal settled on (valid when it returned a size). */
let decimalK = 0;

/**
 * Scales nums[0, n) into `scaled` at the smallest exponent that keeps every value exact and
 * returns the DECIMAL_K size (kind byte included), or -1 when the column is not decimal.
 * Each value is scaled at the column's exponent so far; one that needs a larger exponent
 * rescales the values before it (at most 9 times a column).
 */
function scaleDecimal(n: number): number {
  const ns = nums;
  const sc = scaled;
  let k = 0;
  let p = 1;
  let dec = 1;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = ns[i] as number;
    // At k = 0, v x 1 and s / 1 are v and s exactly: no division.
    const s = k === 0 ? Math.round(v) : Math.round(v * p);
    if ((k === 0 ? s !== v : s / p !== v) || !holdable(s)) {
      const e = decimalExponent(v);
      if (e <= k) return -1; // not a decimal, or exact at k but out of range there
      k = e;
      p = POW10[k] as number;
      if (i === 0) {
        // rescale(1, k) would scale v at k again: decimalExponent's scaled value, holdable
        // (within range, and not -0: a scaled -0 is exact only for v = -0, an integer).
        const r = exponentScaled;
        sc[0] = r;
        dec = 1 + varintBytes(r >= 0 ? r * 2 : -r * 2 - 1);
      } else {
        dec = rescale(i + 1, k);
        if (dec < 0) return -1;
      }
      prev = sc[i] as number;
      continue;
    }
    sc[i] = s;
    const d = s - prev;
    dec += varintBytes(d >= 0 ? d * 2 : -d * 2 - 1);
    prev = s;
  }
  decimalK = k;
  return dec;
}

function writeMsgpack(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  const lenAt = w.pos;
  w.ensure(5);
  w.pos += 5; // fixed 5-byte varint slot for the byte length, patched below
  const begin = w.pos;
  columnWriter.reset();
  for (let i = from; i < to; i++) columnWriter.value(vals[order[i] as number] as Value);
  w.bytes(columnWriter.written());
  let len = w.pos - begin;
  for (let j = 0; j < 5; j++) {
    w.buf[lenAt + j] = (len & 0x7f) | (j < 4 ? 0x80 : 0);
    len >>>= 7;
  }
  return ColumnKind.MSGPACK;
}

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
