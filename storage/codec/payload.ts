/**
 * Payload codecs for the three block types. Pure functions over bytes and values.
 *
 * DELTA and IMAGE payloads share one columnar layout (docs/format.md, "Batch payload"):
 * timestamps as delta-of-delta varints, each batch's path list (or "same as the previous
 * batch"), then one column of values per path. Number columns whose values are exact
 * decimals (e.g. 37.4, 121.5, 3) are stored as zigzag varint deltas of scaled integers,
 * other number columns as raw float64, and anything else as concatenated msgpack values.
 */
import type { Value } from '../../protocol/value.js';
import { MsgpackReader, MsgpackWriter } from '../../protocol/value-msgpack.js';
import { TapedeckError } from '../../protocol/errors.js';
import { ByteReader, ByteWriter } from './bytes.js';

export const ColumnKind = { MSGPACK: 0, DECIMAL: 1, FLOAT64: 2 } as const;

/** Largest decimal exponent tried: values with more than 9 decimals go to FLOAT64. */
const DECIMAL_EXPONENT_MAX = 9;
/** Scaled integers stay within 2^51 so that their deltas stay exact within 2^52. */
const SCALED_ABS_MAX = 2 ** 51;
const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, k) => 10 ** k);

// Non-number columns hold values in the msgpack form of protocol/value-msgpack.ts, exact
// for every value (lone surrogates, `__proto__` keys, nested -0, bigints). Columns written
// by msgpackr before it decode the same way: standard msgpack, WTF-8 surrogates included.
const columnWriter = new MsgpackWriter();

/** Batches in flat form: updates of batch i are the next counts[i] entries of ids/values. */
export interface FlatBatches {
  ts: ArrayLike<number>;
  counts: ArrayLike<number>;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  batchCount: number;
  updateCount: number;
}

export interface DecodedBatches {
  ts: Float64Array;
  counts: Uint32Array;
  ids: Uint32Array;
  values: Value[];
}

// Scratch map from global path id to block-local column index; reset after each encode.
let localOf = new Int32Array(1024).fill(-1);

function decimalExponent(v: number): number {
  if (Number.isInteger(v)) return Math.abs(v) <= SCALED_ABS_MAX && !Object.is(v, -0) ? 0 : -1;
  if (v !== v || v === Infinity || v === -Infinity) return -1;
  // Fast rejection of arbitrary doubles: below ~2e6, a value exact at some k <= 9 also
  // round-trips at k = 9 (the scaled product stays far under 2^52), so one test suffices.
  if (Math.abs(v) < 2e6) {
    const p9 = POW10[DECIMAL_EXPONENT_MAX] as number;
    if (Math.round(v * p9) / p9 !== v) return -1;
  }
  for (let k = 1; k <= DECIMAL_EXPONENT_MAX; k++) {
    const p = POW10[k] as number;
    const r = Math.round(v * p);
    if (r / p === v) return Math.abs(r) <= SCALED_ABS_MAX ? k : -1;
  }
  return -1;
}

/**
 * Encodes batches into a DELTA/IMAGE payload. Returns a view into `w`'s buffer, valid
 * until `w` is written again (pass a fresh ByteWriter to keep the result).
 */
export function encodeBatches(b: FlatBatches, w: ByteWriter = new ByteWriter(1 << 16)): Uint8Array {
  const { batchCount: nb, updateCount: nu } = b;
  // 1. Block-local column ids in order of first appearance.
  const local = new Uint32Array(nu);
  const colGlobal: number[] = [];
  const colCount: number[] = [];
  for (let i = 0; i < nu; i++) {
    const g = b.ids[i] as number;
    if (g >= localOf.length) {
      const next = new Int32Array(Math.max(g + 1, localOf.length * 2)).fill(-1);
      next.set(localOf);
      localOf = next;
    }
    let l = localOf[g] as number;
    if (l < 0) {
      l = colGlobal.length;
      localOf[g] = l;
      colGlobal.push(g);
      colCount.push(0);
    }
    local[i] = l;
    colCount[l] = (colCount[l] as number) + 1;
  }
  for (const g of colGlobal) localOf[g] = -1;
  const nc = colGlobal.length;

  w.reset();
  w.uvar(nb);
  w.uvar(nu);
  w.uvar(nc);
  // 2. Timestamps: delta of delta, first relative to itself (the frame carries firstTs).
  let prevTs = nb > 0 ? (b.ts[0] as number) : 0;
  let prevDelta = 0;
  for (let i = 0; i < nb; i++) {
    const t = b.ts[i] as number;
    const d = t - prevTs;
    w.svar(d - prevDelta);
    prevDelta = d;
    prevTs = t;
  }
  // 3. Column table: global path ids, delta-coded.
  let prevG = 0;
  for (let c = 0; c < nc; c++) {
    const g = colGlobal[c] as number;
    w.svar(g - prevG);
    prevG = g;
  }
  // 4. Batch path lists.
  let start = 0;
  let prevStart = -1;
  let prevCount = -1;
  for (let i = 0; i < nb; i++) {
    const n = b.counts[i] as number;
    let same = n === prevCount;
    if (same) {
      for (let j = 0; j < n; j++) {
        if (local[start + j] !== local[prevStart + j]) {
          same = false;
          break;
        }
      }
    }
    w.uvar(n * 2 + (same ? 1 : 0));
    if (!same) {
      let prevL = -1;
      for (let j = 0; j < n; j++) {
        const l = local[start + j] as number;
        w.svar(l - prevL);
        prevL = l;
      }
    }
    prevStart = start;
    prevCount = n;
    start += n;
  }
  // 5. Columns: group values by column (stable), then encode each column.
  const colStart = new Uint32Array(nc + 1);
  for (let c = 0; c < nc; c++) colStart[c + 1] = (colStart[c] as number) + (colCount[c] as number);
  const fill = colStart.slice(0, nc);
  const grouped: Value[] = new Array<Value>(nu);
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    grouped[fill[l] as number] = b.values[i] as Value;
    fill[l] = (fill[l] as number) + 1;
  }
  for (let c = 0; c < nc; c++) encodeColumn(w, grouped, colStart[c] as number, colStart[c + 1] as number);
  // A view into the writer's buffer: valid until the writer is used again.
  return w.buf.subarray(0, w.pos);
}

function encodeColumn(w: ByteWriter, vals: Value[], from: number, to: number): void {
  let k = 0;
  let allNumbers = true;
  for (let i = from; i < to; i++) {
    const v = vals[i];
    if (typeof v !== 'number') {
      allNumbers = false;
      break;
    }
    if (k >= 0) {
      const e = decimalExponent(v);
      k = e < 0 ? -1 : Math.max(k, e);
    }
  }
  if (allNumbers && k >= 0) {
    const p = POW10[k] as number;
    let ok = true;
    if (k > 0) {
      // Each value passed at its own exponent; at the column's (larger) one it must still
      // round-trip and its scaled integer must stay within SCALED_ABS_MAX (a large integer
      // next to a fine decimal would overflow: 486164504320 x 10^9).
      for (let i = from; i < to && ok; i++) {
        const v = vals[i] as number;
        const r = Math.round(v * p);
        ok = r / p === v && Math.abs(r) <= SCALED_ABS_MAX;
      }
    }
    if (ok) {
      w.u8(ColumnKind.DECIMAL);
      w.u8(k);
      let prev = 0;
      for (let i = from; i < to; i++) {
        const s = k === 0 ? (vals[i] as number) : Math.round((vals[i] as number) * p);
        w.svar(s - prev);
        prev = s;
      }
      return;
    }
  }
  if (allNumbers) {
    w.u8(ColumnKind.FLOAT64);
    for (let i = from; i < to; i++) w.f64(vals[i] as number);
    return;
  }
  w.u8(ColumnKind.MSGPACK);
  const lenAt = w.pos;
  w.ensure(5);
  w.pos += 5; // fixed 5-byte varint slot for the byte length, patched below
  const begin = w.pos;
  columnWriter.reset();
  for (let i = from; i < to; i++) columnWriter.value(vals[i] as Value);
  w.bytes(columnWriter.written());
  let len = w.pos - begin;
  for (let j = 0; j < 5; j++) {
    w.buf[lenAt + j] = (len & 0x7f) | (j < 4 ? 0x80 : 0);
    len >>>= 7;
  }
}

export function decodeBatches(raw: Uint8Array, firstTs: number): DecodedBatches {
  const r = new ByteReader(raw);
  const nb = r.uvar();
  const nu = r.uvar();
  const nc = r.uvar();
  if (nc > nu || nb > raw.length || nu > raw.length * 8 + 8) r.fail('impossible counts');
  const ts = new Float64Array(nb);
  let prevTs = firstTs;
  let prevDelta = 0;
  for (let i = 0; i < nb; i++) {
    prevDelta += r.svar();
    prevTs += prevDelta;
    ts[i] = prevTs;
  }
  const colGlobal = new Uint32Array(nc);
  let g = 0;
  for (let c = 0; c < nc; c++) {
    g += r.svar();
    if (g < 0 || g > 0xffffffff) r.fail('path id out of range');
    colGlobal[c] = g;
  }
  const counts = new Uint32Array(nb);
  const local = new Uint32Array(nu);
  const colCount = new Uint32Array(nc);
  let at = 0;
  let prevStart = 0;
  let prevCount = -1;
  for (let i = 0; i < nb; i++) {
    const head = r.uvar();
    const n = Math.floor(head / 2);
    if (at + n > nu) r.fail('batch lists exceed update count');
    if (head % 2 === 1) {
      if (n !== prevCount) r.fail('"same as previous" batch with another count');
      local.copyWithin(at, prevStart, prevStart + n);
      for (let j = 0; j < n; j++) colCount[local[at + j] as number] = (colCount[local[at + j] as number] as number) + 1;
    } else {
      let l = -1;
      for (let j = 0; j < n; j++) {
        l += r.svar();
        if (l < 0 || l >= nc) r.fail('column index out of range');
        local[at + j] = l;
        colCount[l] = (colCount[l] as number) + 1;
      }
    }
    counts[i] = n;
    prevStart = at;
    prevCount = n;
    at += n;
  }
  if (at !== nu) r.fail('batch lists do not add up to the update count');
  const colStart = new Uint32Array(nc + 1);
  for (let c = 0; c < nc; c++) colStart[c + 1] = (colStart[c] as number) + (colCount[c] as number);
  const grouped: Value[] = new Array<Value>(nu);
  for (let c = 0; c < nc; c++) decodeColumn(r, grouped, colStart[c] as number, colStart[c + 1] as number);
  if (r.pos !== r.end) r.fail('trailing bytes');
  const ids = new Uint32Array(nu);
  const values: Value[] = new Array<Value>(nu);
  const cursor = colStart.slice(0, nc);
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    ids[i] = colGlobal[l] as number;
    values[i] = grouped[cursor[l] as number] as Value;
    cursor[l] = (cursor[l] as number) + 1;
  }
  return { ts, counts, ids, values };
}

function decodeColumn(r: ByteReader, out: Value[], from: number, to: number): void {
  const kind = r.u8();
  if (kind === ColumnKind.DECIMAL) {
    const k = r.u8();
    if (k > DECIMAL_EXPONENT_MAX) r.fail('decimal exponent out of range');
    const p = POW10[k] as number;
    let acc = 0;
    for (let i = from; i < to; i++) {
      acc += r.svar();
      out[i] = k === 0 ? acc : acc / p;
    }
  } else if (kind === ColumnKind.FLOAT64) {
    for (let i = from; i < to; i++) out[i] = r.f64();
  } else if (kind === ColumnKind.MSGPACK) {
    const len = r.uvar();
    const bytes = r.bytes(len);
    const m = new MsgpackReader(bytes);
    try {
      for (let i = from; i < to; i++) {
        if (m.done) r.fail('msgpack column holds the wrong number of values');
        out[i] = m.value();
      }
    } catch (err) {
      if (err instanceof TapedeckError && err.code === 'TPD_CORRUPT_BLOCK') throw err;
      throw new TapedeckError('TPD_CORRUPT_BLOCK', 'malformed payload: msgpack column does not decode', undefined, { cause: err });
    }
    if (!m.done) r.fail('msgpack column holds the wrong number of values');
  } else {
    r.fail(`unknown column kind ${kind}`);
  }
}

/** Path definitions: (id, first timestamp, path) triples. */
export interface PathDef {
  id: number;
  path: string;
  firstTs: number;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function encodePathDefs(defs: readonly PathDef[], baseTs: number): Uint8Array {
  const w = new ByteWriter(256 + defs.length * 32);
  w.uvar(defs.length);
  for (const d of defs) {
    w.uvar(d.id);
    w.svar(d.firstTs - baseTs);
    const bytes = utf8Encoder.encode(d.path);
    w.uvar(bytes.length);
    w.bytes(bytes);
  }
  return w.finish();
}

export function decodePathDefs(raw: Uint8Array, baseTs: number): PathDef[] {
  const r = new ByteReader(raw);
  const n = r.uvar();
  if (n > raw.length) r.fail('impossible path count');
  const out: PathDef[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.uvar();
    const firstTs = baseTs + r.svar();
    const len = r.uvar();
    const bytes = r.bytes(len);
    let path = '';
    try {
      path = utf8Decoder.decode(bytes);
    } catch {
      r.fail('path is not valid UTF-8');
    }
    out.push({ id, path, firstTs });
  }
  if (r.pos !== r.end) r.fail('trailing bytes');
  return out;
}
