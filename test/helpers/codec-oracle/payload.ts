// The block payload codec as of fa3a187 (before the typed-array rewrite), kept verbatim
// (imports re-pointed) as the oracle test/codec-identity.test.ts compares the codec with.
// Not used by anything else.
/**
 * Payload codecs for the three block types. Pure functions over bytes and values.
 *
 * DELTA and IMAGE payloads share one columnar layout (docs/format.md, "Batch payload"):
 * timestamps as delta-of-delta varints, each batch's path list (or "same as the previous
 * batch"), then one column of values per path. Number columns whose values are exact
 * decimals (e.g. 37.4, 121.5, 3) are stored as scaled integers, as varint deltas or
 * bit-packed residuals of a prediction (whichever is smaller), other number columns
 * XOR-compressed (or raw float64 when that is smaller), anything else as concatenated
 * msgpack values (storage/codec/columns.ts). Readers wanting a few paths of a block skip
 * the other columns (decodeBatchesSelected).
 *
 * Layout 2 (written since issue 17) keeps the columns' kind bytes together ahead of their
 * bodies: a block of many one-value columns (remote_write, many paths each polled rarely)
 * repeats the same few kinds in a pattern LZ4 compresses to almost nothing, where kind
 * bytes between the values cost a byte a column. Layout 1 payloads decode as before.
 */
import type { Value } from '../../../protocol/value.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeColumn, decodeColumnBody, encodeColumn, skipColumnBody } from './columns.js';
import { decodeNotes } from './xor-float.js';

export { ColumnKind } from './columns.js';

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

/**
 * A layout-2 payload starts with these two bytes. A layout-1 payload starts with its batch
 * count, never 0 as written, so readers of layout 1 read a 0-batch payload claiming 2
 * updates and reject it (TPD_CORRUPT_BLOCK) rather than misread it.
 */
export const PAYLOAD_LAYOUT2_MARK = 0;
export const PAYLOAD_LAYOUT = 2;

// Scratch map from global path id to block-local column index; reset after each encode.
let localOf = new Int32Array(1024).fill(-1);
// Scratch: each update's block-local column, and update indices grouped by column.
let localScratch = new Uint32Array(1024);
let groupedScratch = new Uint32Array(1024);
// Scratch: each column's kind byte while the columns are written.
let kindsScratch = new Uint8Array(1024);

/**
 * Encodes batches into a DELTA/IMAGE payload. Returns a view into `w`'s buffer, valid
 * until `w` is written again (pass a fresh ByteWriter to keep the result).
 */
export function encodeBatches(b: FlatBatches, w: ByteWriter = new ByteWriter(1 << 16)): Uint8Array {
  const { batchCount: nb, updateCount: nu } = b;
  // 1. Block-local column ids in order of first appearance.
  if (localScratch.length < nu) localScratch = new Uint32Array(Math.max(nu, localScratch.length * 2));
  const local = localScratch;
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
  w.u8(PAYLOAD_LAYOUT2_MARK);
  w.u8(PAYLOAD_LAYOUT);
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
  // Indices rather than values: no array of values to build, and none that V8 could turn
  // into raw doubles (which would quiet signalling NaNs, see genericArray).
  const fill = colStart.slice(0, nc);
  if (groupedScratch.length < nu) groupedScratch = new Uint32Array(Math.max(nu, groupedScratch.length * 2));
  const grouped = groupedScratch;
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    grouped[fill[l] as number] = i;
    fill[l] = (fill[l] as number) + 1;
  }
  // Layout 2: each column's kind byte is taken out as it is written (its body moves back
  // over it), then the bodies move up to make room for the kinds ahead of them.
  if (kindsScratch.length < nc) kindsScratch = new Uint8Array(Math.max(nc, kindsScratch.length * 2));
  const kinds = kindsScratch;
  const colsAt = w.pos;
  for (let c = 0; c < nc; c++) {
    const at = w.pos;
    encodeColumn(w, b.values, grouped, colStart[c] as number, colStart[c + 1] as number);
    const buf = w.buf;
    kinds[c] = buf[at] as number;
    const end = w.pos;
    // Most bodies are a few bytes (one-value columns): a loop beats a native call each.
    if (end - at > 64) buf.copyWithin(at, at + 1, end);
    else for (let p = at + 1; p < end; p++) buf[p - 1] = buf[p] as number;
    w.pos = end - 1;
  }
  w.ensure(nc);
  w.buf.copyWithin(colsAt + nc, colsAt, w.pos);
  w.buf.set(kinds.subarray(0, nc), colsAt);
  w.pos += nc;
  // A view into the writer's buffer: valid until the writer is used again.
  return w.buf.subarray(0, w.pos);
}

/**
 * A Value[] that V8 keeps in generic (tagged) elements: an array of only numbers would be
 * stored as raw doubles, and V8 quiets signalling NaNs stored there (Prometheus' stale
 * marker 0x7ff0000000000002 would come back as 0x7ff8000000000002). Generic elements box
 * every number, so decoders use them only for payloads that hold a signalling NaN.
 */
export function genericArray(n: number): Value[] {
  return new Array<Value>(n).fill(null);
}

function plainArray(n: number): Value[] {
  return new Array<Value>(n);
}

/**
 * Runs a decode with plain arrays, and again with generic ones when a column held a
 * signalling NaN (see genericArray).
 */
function decodeKeepingNaNs(decode: (makeArray: (n: number) => Value[]) => DecodedBatches): DecodedBatches {
  decodeNotes.signalingNaN = false;
  const d = decode(plainArray);
  if (!decodeNotes.signalingNaN) return d;
  return decode(genericArray);
}

/** Everything of a batch payload before its columns, plus the reader positioned at them. */
interface Layout {
  r: ByteReader;
  ts: Float64Array;
  counts: Uint32Array;
  /** Block-local column of each update, in update order. */
  local: Uint32Array;
  colGlobal: Uint32Array;
  colCount: Uint32Array;
  /** Layout 2: every column's kind byte (the bodies follow); layout 1: undefined (each column starts with its kind). */
  kinds: Uint8Array | undefined;
}

/** A payload's head: its layout and counts of batches, updates and columns. */
export interface PayloadHead {
  layout2: boolean;
  nb: number;
  nu: number;
  nc: number;
}

/**
 * Reads a payload's head from `r` (at the payload's start): the layout mark and the counts,
 * refusing counts the payload's size cannot hold. The one reader of it: readLayout and the
 * column reader (storage/column-block.ts) share it.
 */
export function readPayloadHead(r: ByteReader, raw: Uint8Array): PayloadHead {
  // Layout 1's empty payload (0 batches, 0 updates) also starts with 0, then 0.
  const layout2 = raw.length >= 2 && raw[0] === PAYLOAD_LAYOUT2_MARK && raw[1] !== 0;
  if (layout2) {
    r.u8();
    if (r.u8() !== PAYLOAD_LAYOUT) r.fail(`unknown payload layout ${raw[1] as number}`);
  }
  const nb = r.uvar();
  const nu = r.uvar();
  const nc = r.uvar();
  // A PACKED column of a perfectly linear series takes zero bits per value, so updates are
  // bounded by batches x columns (a path is once per batch), not by the payload's bits.
  // Mended after the freeze (as storage/codec/payload-head.ts): nb x nc refused a path listed
  // many times a batch (17 x 100 of one constant path), which the writer makes.
  if (nc > nu || nb > raw.length || (nu > raw.length * 8 + 8 && nu > nb * raw.length)) r.fail('impossible counts');
  return { layout2, nb, nu, nc };
}

function readLayout(raw: Uint8Array, firstTs: number): Layout {
  const r = new ByteReader(raw);
  const { layout2, nb, nu, nc } = readPayloadHead(r, raw);
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
  const kinds = layout2 ? r.bytes(nc) : undefined;
  return { r, ts, counts, local, colGlobal, colCount, kinds };
}

export function decodeBatches(raw: Uint8Array, firstTs: number): DecodedBatches {
  return decodeKeepingNaNs((makeArray) => decodeAll(raw, firstTs, makeArray));
}

function decodeAll(raw: Uint8Array, firstTs: number, makeArray: (n: number) => Value[]): DecodedBatches {
  const { r, ts, counts, local, colGlobal, colCount, kinds } = readLayout(raw, firstTs);
  const nc = colGlobal.length;
  const nu = local.length;
  const colStart = new Uint32Array(nc + 1);
  for (let c = 0; c < nc; c++) colStart[c + 1] = (colStart[c] as number) + (colCount[c] as number);
  const grouped = makeArray(nu);
  if (kinds === undefined) for (let c = 0; c < nc; c++) decodeColumn(r, grouped, colStart[c] as number, colStart[c + 1] as number);
  else for (let c = 0; c < nc; c++) decodeColumnBody(kinds[c] as number, r, grouped, colStart[c] as number, colStart[c + 1] as number);
  if (r.pos !== r.end) r.fail('trailing bytes');
  const ids = new Uint32Array(nu);
  const values = makeArray(nu);
  const cursor = colStart.slice(0, nc);
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    ids[i] = colGlobal[l] as number;
    values[i] = grouped[cursor[l] as number] as Value;
    cursor[l] = (cursor[l] as number) + 1;
  }
  return { ts, counts, ids, values };
}

/**
 * decodeBatches keeping only the updates whose path id passes `keep` (asked once per
 * column of the block). Columns not kept are skipped without building their values. Every
 * batch stays listed, with counts[i] the number of its kept updates (0 when none), so
 * ts[i] still lines up with the full decode. Damage inside a skipped column's body is not
 * seen (its extent is checked); the frame's CRC32C covers it.
 */
export function decodeBatchesSelected(raw: Uint8Array, firstTs: number, keep: (globalId: number) => boolean): DecodedBatches {
  return decodeKeepingNaNs((makeArray) => decodeSome(raw, firstTs, keep, makeArray));
}

function decodeSome(raw: Uint8Array, firstTs: number, keep: (globalId: number) => boolean, makeArray: (n: number) => Value[]): DecodedBatches {
  const { r, ts, counts, local, colGlobal, colCount, kinds } = readLayout(raw, firstTs);
  const nc = colGlobal.length;
  // colStart over kept columns only; -1 marks a skipped column.
  const colStart = new Int32Array(nc);
  let kept = 0;
  for (let c = 0; c < nc; c++) {
    if (keep(colGlobal[c] as number)) {
      colStart[c] = kept;
      kept += colCount[c] as number;
    } else {
      colStart[c] = -1;
    }
  }
  const grouped = makeArray(kept);
  for (let c = 0; c < nc; c++) {
    const s = colStart[c] as number;
    const kind = kinds === undefined ? r.u8() : (kinds[c] as number);
    if (s >= 0) decodeColumnBody(kind, r, grouped, s, s + (colCount[c] as number));
    else skipColumnBody(kind, r, colCount[c] as number);
  }
  if (r.pos !== r.end) r.fail('trailing bytes');
  const ids = new Uint32Array(kept);
  const values = makeArray(kept);
  let out = 0;
  let at = 0;
  for (let b = 0; b < counts.length; b++) {
    const n = counts[b] as number;
    let m = 0;
    for (let j = 0; j < n; j++, at++) {
      const l = local[at] as number;
      const s = colStart[l] as number;
      if (s < 0) continue;
      ids[out] = colGlobal[l] as number;
      values[out++] = grouped[s] as Value;
      colStart[l] = s + 1;
      m++;
    }
    counts[b] = m;
  }
  return { ts, counts, ids, values };
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
