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
import { valueArray, type Value } from '../../protocol/value.js';
import { ByteReader } from './bytes.js';
import { ColumnKind, decodeColumn, decodeColumnBody, skipColumnBody } from './columns.js';
import { decodeColumnsF64 } from './column-decode.js';
import { decodeNotes, isFragileNaN } from './xor-float.js';
import { checkUpdateCount, readPayloadHead } from './payload-head.js';
import { decodeChainsInto, type NumberBatches } from './payload-into.js';

export { ColumnKind } from './columns.js';
export { encodeBatches, PAYLOAD_LAYOUT, PAYLOAD_LAYOUT2_MARK, type FlatBatches } from './payload-encode.js';
export { decodePathDefs, encodePathDefs, type PathDef } from './path-defs.js';
export { checkUpdateCount, readPayloadHead, type PayloadHead } from './payload-head.js';
export { newNumberBatches, type NumberBatches } from './payload-into.js';

export interface DecodedBatches {
  ts: Float64Array;
  counts: Uint32Array;
  ids: Uint32Array;
  values: Value[];
}

function plainArray(n: number): Value[] {
  return new Array<Value>(n);
}

/**
 * Runs a decode with plain arrays, and again with generic ones when a column held a NaN
 * that plain arrays may not keep (protocol/value.ts valueArray: generic elements box every
 * number, so decoders use them only for payloads that hold such a NaN, xor-float.ts isFragileNaN).
 */
function decodeKeepingNaNs(decode: (makeArray: (n: number) => Value[]) => DecodedBatches): DecodedBatches {
  decodeNotes.signalingNaN = false;
  const d = decode(plainArray);
  if (!decodeNotes.signalingNaN) return d;
  return decode(valueArray);
}

/**
 * Everything of a batch payload before its columns, plus the reader positioned at them.
 * colGlobal, colCount and local may be module scratch: valid until the next readLayout.
 */
export interface Layout {
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

let readColGlobal = new Uint32Array(1024);
/** How many decodeSome calls are running their caller's `keep`, holding the scratch below. */
let layoutScratchLent = 0;
let readColCount = new Uint32Array(1024);
let readLocal = new Uint32Array(1024);

/** Counts `repeats` more occurrences of each column of the path list local[at, at + n). */
function addRepeats(local: Uint32Array, colCount: Uint32Array, at: number, n: number, repeats: number): void {
  for (let j = at; j < at + n; j++) {
    const l = local[j] as number;
    colCount[l] = (colCount[l] as number) + repeats;
  }
}

/** Reads a payload's head, times, column table and batch lists (every decoder's first step; codec/column-bodies.ts too). */
export function readLayout(raw: Uint8Array, firstTs: number): Layout {
  const r = new ByteReader(raw);
  const head = readPayloadHead(r, raw);
  checkUpdateCount(r, raw, head);
  const { layout2, nb, nu, nc } = head;
  const ts = new Float64Array(nb);
  let prevTs = firstTs;
  let prevDelta = 0;
  for (let i = 0; i < nb; i++) {
    prevDelta += r.svar();
    prevTs += prevDelta;
    ts[i] = prevTs;
  }
  // Block-local scratch (not part of the result), unless a decode holding it is asking.
  let colGlobal: Uint32Array;
  let colCount: Uint32Array;
  let local: Uint32Array;
  if (layoutScratchLent > 0) {
    colGlobal = new Uint32Array(nc);
    colCount = new Uint32Array(nc);
    local = new Uint32Array(nu);
  } else {
    if (readColGlobal.length < nc) readColGlobal = new Uint32Array(Math.max(nc, readColGlobal.length * 2));
    if (readColCount.length < nc) readColCount = new Uint32Array(Math.max(nc, readColCount.length * 2));
    if (readLocal.length < nu) readLocal = new Uint32Array(Math.max(nu, readLocal.length * 2));
    colGlobal = readColGlobal.subarray(0, nc);
    colCount = readColCount.subarray(0, nc);
    local = readLocal.subarray(0, nu);
    colCount.fill(0);
  }
  let g = 0;
  for (let c = 0; c < nc; c++) {
    g += r.svar();
    if (g < 0 || g > 0xffffffff) r.fail('path id out of range');
    colGlobal[c] = g;
  }
  const counts = new Uint32Array(nb);
  const buf = r.buf;
  let at = 0;
  let prevStart = 0;
  let prevCount = -1;
  // Repeats of the last listed path list ("same as previous" batches) not yet counted in
  // colCount: added once per list rather than once per update.
  let repeats = 0;
  for (let i = 0; i < nb; i++) {
    const head = r.uvar();
    const n = Math.floor(head / 2);
    if (at + n > nu) r.fail('batch lists exceed update count');
    if (head % 2 === 1) {
      if (n !== prevCount) r.fail('"same as previous" batch with another count');
      local.copyWithin(at, prevStart, prevStart + n);
      repeats++;
    } else {
      if (repeats > 0) addRepeats(local, colCount, prevStart, prevCount, repeats);
      repeats = 0;
      let l = -1;
      for (let j = 0; j < n; j++) {
        // One-byte varints (most: the next column) read here, the rest by r.svar.
        const p = r.pos;
        const b0 = p < r.end ? (buf[p] as number) : 0x80;
        if (b0 < 0x80) {
          r.pos = p + 1;
          l += (b0 >>> 1) ^ -(b0 & 1);
        } else {
          l += r.svar();
        }
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
  if (repeats > 0) addRepeats(local, colCount, prevStart, prevCount, repeats);
  if (at !== nu) r.fail('batch lists do not add up to the update count');
  const kinds = layout2 ? r.bytes(nc) : undefined;
  return { r, ts, counts, local, colGlobal, colCount, kinds };
}

export function decodeBatches(raw: Uint8Array, firstTs: number): DecodedBatches {
  return decodeKeepingNaNs((makeArray) => decodeAll(raw, firstTs, makeArray));
}

// decodeAll's columns of numbers, grouped by column, before they go out in update order.
let numsScratch = new Float64Array(1024);
const HI_WORD = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f ? 1 : 0;

function decodeAll(raw: Uint8Array, firstTs: number, makeArray: (n: number) => Value[]): DecodedBatches {
  const layout = readLayout(raw, firstTs);
  if (makeArray === plainArray && layout.kinds !== undefined && layout.kinds.indexOf(ColumnKind.MSGPACK) < 0) return decodeNumbers(layout);
  const { r, ts, counts, local, colGlobal, colCount, kinds } = layout;
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
 * decodeAll of a layout-2 payload of numbers only: columns decoded into a Float64Array
 * (no value boxed, no array of values grouped by column), then put in update order into a
 * plain array. A NaN such an array may not keep is noted (decodeNotes) for decodeKeepingNaNs to
 * decode again into generic arrays, as the column decoders do.
 */
function decodeNumbers(layout: Layout): DecodedBatches {
  const { ts, counts, local, colGlobal, colCount } = layout;
  const nu = local.length;
  const rawBits = decodeGrouped(layout, layout.kinds as Uint8Array);
  const nums = numsScratch;
  // Only XOR and FLOAT64 columns carry stored bits; the decimal kinds compute their numbers.
  if (rawBits && hasFragileNaN(nums, nu)) {
    decodeNotes.signalingNaN = true;
    return { ts, counts, ids: new Uint32Array(0), values: [] };
  }
  const ids = new Uint32Array(nu);
  const values = plainArray(nu);
  // Made an array of doubles before the loop: its first store would otherwise convert it
  // mid-loop (a block's 16 384 doubles sit in V8's large-object space; one copy fewer).
  if (nu > 0) values[0] = 0.5;
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    const k = colCount[l] as number;
    ids[i] = colGlobal[l] as number;
    values[i] = nums[k] as number;
    colCount[l] = k + 1;
  }
  return { ts, counts, ids, values };
}

/**
 * Decodes every column body of a numbers-only layout-2 payload into numsScratch, grouped by
 * column; colCount becomes each column's start there (its read position for the caller's
 * pass into update order). True if a column stores raw bits (XOR, FLOAT64): only those can
 * hold a NaN.
 */
function decodeGrouped(layout: Layout, kinds: Uint8Array): boolean {
  const nu = layout.local.length;
  if (numsScratch.length < nu) numsScratch = new Float64Array(Math.max(nu, numsScratch.length * 2));
  const r = layout.r;
  const rawBits = decodeColumnsF64(r, kinds, layout.colCount, numsScratch);
  if (r.pos !== r.end) r.fail('trailing bytes');
  return rawBits;
}

function hasFragileNaN(nums: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const v = nums[i] as number;
    if (v === v) continue;
    const words = new Uint32Array(nums.buffer, nums.byteOffset + 8 * i, 2);
    if (isFragileNaN(words[HI_WORD] as number, words[1 - HI_WORD] as number)) return true;
  }
  return false;
}

/**
 * Blocks with fewer updates than this per column (many paths each seldom: the mixed
 * workload's 1 to 4) are decoded into typed arrays along chains of occurrences
 * (payload-into.ts: no grouped array, no pass into update order); blocks of longer columns
 * (polls, scrapes) column by column into a grouped array, then put in update order
 * (decodeGroupedInto), where a chain would cost a dependent load per value (bench:codec,
 * decodeInto of fabric 82 against 48 M updates/s).
 */
const CHAIN_UPDATES_PER_COLUMN_MAX = 4;

/**
 * decodeBatches into `out`, for payloads of numbers only: updates of batch i are the next
 * counts[i] entries of ids/nums, in update order, every bit kept (NaN payloads included:
 * nothing passes through a JS array). No Value array is built, nor anything per block but
 * what `out` and the scratch lack. Returns false, with `out` unspecified, for a payload this
 * does not read (layout 1, or a MSGPACK column: values other than numbers); the caller then
 * uses decodeBatches. Refuses what decodeBatches refuses (TPD_CORRUPT_BLOCK).
 */
export function decodeBatchesInto(raw: Uint8Array, firstTs: number, out: NumberBatches): boolean {
  const r = new ByteReader(raw);
  const head = readPayloadHead(r, raw);
  if (head.nu < CHAIN_UPDATES_PER_COLUMN_MAX * head.nc) {
    checkUpdateCount(r, raw, head);
    return decodeChainsInto(r, head, firstTs, out);
  }
  return decodeGroupedInto(raw, firstTs, out);
}

/** decodeBatchesInto of a block of long columns: grouped by column, then put in update order. */
function decodeGroupedInto(raw: Uint8Array, firstTs: number, out: NumberBatches): boolean {
  const layout = readLayout(raw, firstTs);
  const { ts, counts, local, colGlobal, colCount } = layout;
  const kinds = layout.kinds;
  if (kinds === undefined || kinds.indexOf(ColumnKind.MSGPACK) >= 0) return false;
  const nu = local.length;
  const nb = ts.length;
  let idMax = 0;
  for (let c = 0; c < colGlobal.length; c++) if ((colCount[c] as number) > 0 && (colGlobal[c] as number) > idMax) idMax = colGlobal[c] as number;
  const rawBits = decodeGrouped(layout, kinds);
  const grouped = numsScratch;
  if (out.ts.length < nb) out.ts = new Float64Array(Math.max(nb, out.ts.length * 2));
  if (out.counts.length < nb) out.counts = new Uint32Array(Math.max(nb, out.counts.length * 2));
  if (out.ids.length < nu) out.ids = new Uint32Array(Math.max(nu, out.ids.length * 2));
  if (out.nums.length < nu) out.nums = new Float64Array(Math.max(nu, out.nums.length * 2));
  out.ts.set(ts);
  out.counts.set(counts);
  const ids = out.ids;
  const nums = out.nums;
  if (rawBits) {
    // Stored bits (XOR, FLOAT64) move as two 32-bit words: a NaN is never a JS number here.
    const from = new Uint32Array(grouped.buffer, grouped.byteOffset, 2 * nu);
    const to = new Uint32Array(nums.buffer, nums.byteOffset, 2 * nu);
    for (let i = 0; i < nu; i++) {
      const l = local[i] as number;
      const k = colCount[l] as number;
      ids[i] = colGlobal[l] as number;
      to[2 * i] = from[2 * k] as number;
      to[2 * i + 1] = from[2 * k + 1] as number;
      colCount[l] = k + 1;
    }
  } else {
    // Decimal kinds compute their numbers (never NaN).
    for (let i = 0; i < nu; i++) {
      const l = local[i] as number;
      const k = colCount[l] as number;
      ids[i] = colGlobal[l] as number;
      nums[i] = grouped[k] as number;
      colCount[l] = k + 1;
    }
  }
  out.batchCount = nb;
  out.updateCount = nu;
  out.idMax = idMax;
  return true;
}

/**
 * decodeBatches keeping only the updates whose path id passes `keep` (asked once per
 * column of the block). Columns not kept are skipped without building their values. Every
 * batch stays listed, with counts[i] the number of its kept updates (0 when none), so
 * ts[i] still lines up with the full decode. Damage inside a skipped column's body is not
 * seen (its extent is checked); the frame's CRC32C covers it. `keep` may itself decode.
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
  // `keep` is the caller's code: a decode it makes gets arrays of its own, not the scratch
  // this layout is held in.
  layoutScratchLent++;
  try {
    for (let c = 0; c < nc; c++) {
      if (keep(colGlobal[c] as number)) {
        colStart[c] = kept;
        kept += colCount[c] as number;
      } else {
        colStart[c] = -1;
      }
    }
  } finally {
    layoutScratchLent--;
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
