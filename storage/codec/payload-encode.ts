/**
 * The encoding side of the batch payload (storage/codec/payload.ts has the layout's
 * description and the decoders): batches in flat form to a layout-2 DELTA/IMAGE payload,
 * through typed scratch reused from block to block.
 */
import type { Value } from '../../protocol/value.js';
import { ByteWriter, putSvar, putUvar } from './bytes.js';
import { encodeColumnBody } from './columns.js';
import { encodeNumberPayloadNative, type NumberBlock } from './native-payload.js';
import { encodeNumberColumns } from './number-columns.js';

/** Batches in flat form: updates of batch i are the next counts[i] entries of ids/values. */
export interface FlatBatches {
  ts: ArrayLike<number>;
  counts: ArrayLike<number>;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  batchCount: number;
  updateCount: number;
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
// Scratch: each column's global path id, its count of updates, and its first update's
// place in the grouped order (nc + 1 entries).
let colGlobalScratch: Uint32Array = new Uint32Array(1024);
let colCountScratch: Uint32Array = new Uint32Array(1024);
let colStartScratch = new Uint32Array(1025);
/** A varint of a zigzagged difference of two uint32 (or of a count) is at most 5 bytes. */
const VARINT32_BYTES_MAX = 5;

/**
 * Encodes batches into a DELTA/IMAGE payload. Returns a view into `w`'s buffer, valid
 * until `w` is written again (pass a fresh ByteWriter to keep the result). Values in a
 * Float64Array (the block builder's unboxed numbers) are encoded without a type check each.
 */
export function encodeBatches(b: FlatBatches, w: ByteWriter = new ByteWriter(1 << 16)): Uint8Array {
  // One function a loop, with nothing after the loop that V8 keeps feedback for (a store to
  // the writer, a call): a function called once a block is first optimised on stack in its
  // first call's loop (OSR), and that code, kept and entered again at every later call,
  // was thrown away each time it reached a step after the loop that it had not seen run
  // (assignColumns' reset loop: hundreds of times in a mixed write, a third of its time).
  const { batchCount: nb, updateCount: nu } = b;
  // An all-number block goes to the native encoder when it is installed (the same bytes).
  if (b.values instanceof Float64Array && b.ids instanceof Int32Array) {
    const native = encodeNumberPayloadNative(b as NumberBlock, w);
    if (native !== undefined) return native;
  }
  return encodeBatchesTs(b, nb, nu, w);
}

/** encodeBatches by the TypeScript encoder (every block the native encoder does not take). */
function encodeBatchesTs(b: FlatBatches, nb: number, nu: number, w: ByteWriter): Uint8Array {
  if (localScratch.length < nu) localScratch = new Uint32Array(Math.max(nu, localScratch.length * 2));
  const nc = assignColumns(b.ids, nu);
  if (colStartScratch.length < nc + 1) colStartScratch = new Uint32Array(Math.max(nc + 1, colStartScratch.length * 2));
  w.reset();
  try {
    writeHead(w, b.ts, nb, nu, nc);
  } catch (err) {
    // writeHead's column table clears localOf; a throw before it (a growth failing, a ts
    // accessor) must not leave this block's paths mapped to columns for every later block.
    for (let c = 0; c < nc; c++) localOf[colGlobalScratch[c] as number] = -1;
    throw err;
  }
  colStartScratch[nc] = columnsEnd;
  w.pos = writeBatchLists(w, b.counts, nb);
  // Columns: update indices grouped by column (stable), then each column's body, with the
  // kind bytes together ahead of the bodies (layout 2). Indices rather than values: no
  // array of values to build, and none that V8 could turn into raw doubles (which would
  // change NaNs, see protocol/value.ts valueArray).
  if (groupedScratch.length < nu) groupedScratch = new Uint32Array(Math.max(nu, groupedScratch.length * 2));
  const grouped = groupByColumn(nu);
  w.ensure(nc);
  const kindsAt = w.pos;
  w.pos += nc;
  const values = b.values;
  if (values instanceof Float64Array) encodeNumberColumns(w, values, grouped, colStartScratch, nc, kindsAt);
  else writeValueColumns(w, values, grouped, nc, kindsAt);
  // A view into the writer's buffer: valid until the writer is used again.
  return w.buf.subarray(0, w.pos);
}

/** The layout mark, the counts, the timestamps and the column table. */
function writeHead(w: ByteWriter, ts: ArrayLike<number>, nb: number, nu: number, nc: number): void {
  w.ensure(2 + 3 * 8 + nb * 8 + nc * VARINT32_BYTES_MAX);
  const buf = w.buf;
  let p = w.pos;
  buf[p++] = PAYLOAD_LAYOUT2_MARK;
  buf[p++] = PAYLOAD_LAYOUT;
  p = putUvar(buf, p, nb);
  p = putUvar(buf, p, nu);
  p = putUvar(buf, p, nc);
  p = writeTimes(buf, p, ts, nb);
  w.pos = writeColumnTable(buf, p, nc);
}

/** Timestamps: delta of delta, first relative to itself (the frame carries firstTs). */
function writeTimes(buf: Uint8Array, p: number, ts: ArrayLike<number>, nb: number): number {
  let prevTs = nb > 0 ? (ts[0] as number) : 0;
  let prevDelta = 0;
  for (let i = 0; i < nb; i++) {
    const t = ts[i] as number;
    const d = t - prevTs;
    p = putSvar(buf, p, d - prevDelta);
    prevDelta = d;
    prevTs = t;
  }
  return p;
}

/**
 * Column table: global path ids, delta-coded. The same loop over the columns also clears
 * their localOf entries for the next block (assignColumns set them) and sets each column's
 * first place in the grouped order (colStartScratch[0, nc)) and its fill position for
 * groupByColumn (colCountScratch), the end of the last in columnsEnd (stored by the caller:
 * nothing after the loop). One loop rather than three: a block over many paths has as
 * many columns as 0.6 updates each.
 */
function writeColumnTable(buf: Uint8Array, p: number, nc: number): number {
  const colGlobal = colGlobalScratch;
  const colStart = colStartScratch;
  const colCount = colCountScratch;
  const lo = localOf;
  let prevG = 0;
  let at = 0;
  for (let c = 0; c < nc; c++) {
    const g = colGlobal[c] as number;
    p = putSvar(buf, p, g - prevG);
    prevG = g;
    lo[g] = -1;
    colStart[c] = at;
    const n = colCount[c] as number;
    colCount[c] = at;
    at += n;
  }
  columnsEnd = at;
  return p;
}

/** Where writeColumnTable's last column ends in the grouped order. */
let columnsEnd = 0;

/** Each batch's path list (block-local columns), or "same as the previous batch"; returns the position after them. */
function writeBatchLists(w: ByteWriter, counts: ArrayLike<number>, nb: number): number {
  const local = localScratch;
  let p = w.pos;
  let start = 0;
  let prevStart = -1;
  let prevCount = -1;
  for (let i = 0; i < nb; i++) {
    const n = counts[i] as number;
    let same = n === prevCount;
    if (same) {
      for (let j = 0; j < n; j++) {
        if (local[start + j] !== local[prevStart + j]) {
          same = false;
          break;
        }
      }
    }
    w.pos = p;
    w.ensure(8 + (same ? 0 : n * VARINT32_BYTES_MAX));
    const buf = w.buf;
    p = putUvar(buf, p, n * 2 + (same ? 1 : 0));
    if (!same) {
      let prevL = -1;
      for (let j = 0; j < n; j++) {
        const l = local[start + j] as number;
        const d = l - prevL;
        // Columns are numbered in order of first appearance: mostly the next one (d = 1).
        if (d >= 0 && d < 0x40) buf[p++] = d * 2;
        else p = putSvar(buf, p, d);
        prevL = l;
      }
    }
    prevStart = start;
    prevCount = n;
    start += n;
  }
  return p;
}


function writeValueColumns(w: ByteWriter, values: ArrayLike<Value>, grouped: Uint32Array, nc: number, kindsAt: number): void {
  const colStart = colStartScratch;
  for (let c = 0; c < nc; c++) {
    const kind = encodeColumnBody(w, values, grouped, colStart[c] as number, colStart[c + 1] as number);
    w.buf[kindsAt + c] = kind;
  }
}

/**
 * Numbers the block's paths in order of first appearance: localScratch[i] is update i's
 * column, colGlobalScratch[c] and colCountScratch[c] column c's path id and update count.
 * Returns the column count; writeColumnTable then clears localOf.
 */
function assignColumns(ids: ArrayLike<number>, nu: number): number {
  const local = localScratch;
  let lo: Int32Array = localOf;
  let colGlobal = colGlobalScratch;
  let colCount = colCountScratch;
  let nc = 0;
  for (let i = 0; i < nu; i++) {
    const g = ids[i] as number;
    if (g >= lo.length) lo = growLocalOf(g);
    let l = lo[g] as number;
    if (l < 0) {
      l = nc++;
      if (l >= colGlobal.length) {
        colGlobal = colGlobalScratch = grown(colGlobal, l + 1);
        colCount = colCountScratch = grown(colCount, l + 1);
      }
      lo[g] = l;
      colGlobal[l] = g;
      colCount[l] = 0;
    }
    local[i] = l;
    colCount[l] = (colCount[l] as number) + 1;
  }
  return nc;
}

function growLocalOf(g: number): Int32Array {
  const next = new Int32Array(Math.max(g + 1, localOf.length * 2)).fill(-1);
  next.set(localOf);
  localOf = next;
  return next;
}

function grown(a: Uint32Array, atLeast: number): Uint32Array {
  const next = new Uint32Array(Math.max(atLeast, a.length * 2));
  next.set(a);
  return next;
}

/**
 * Update indices grouped by column, stably (groupedScratch), with column c's at
 * [colStartScratch[c], colStartScratch[c + 1]) (writeColumnTable first). colCountScratch, the
 * fill positions, is spent (assignColumns resets it).
 */
function groupByColumn(nu: number): Uint32Array {
  const colCount = colCountScratch;
  const local = localScratch;
  const grouped = groupedScratch;
  for (let i = 0; i < nu; i++) {
    const l = local[i] as number;
    const f = colCount[l] as number;
    grouped[f] = i;
    colCount[l] = f + 1;
  }
  return grouped;
}
