/**
 * decodeBatchesInto (payload.ts) of a block of short columns: a layout-2 payload of numbers
 * only, decoded straight into update order in caller-held typed arrays (Cursor.nextColumns
 * reads blocks of short columns this way).
 *
 * Its cost is per update and per column, and a block of many paths each seldom (the mixed
 * workload: 10 000 columns of 1 to 4 values in a block of 16 400 updates) has nearly as many
 * columns as updates. So the batch lists are read once into per-column chains of occurrences
 * (each update linked to the next update of its column), and each column's values are
 * decoded along its chain, straight to their updates: no array of values grouped by column
 * and no pass over the updates to put them in order afterwards. Decimal columns (nearly all
 * of such a block) are read inline, without a call per column or per value. The hot loops
 * (column ids, batch lists, decimal columns) read while varints are short and in range and
 * call nothing: they stop at anything else, which a general reader outside the loop takes
 * (or refuses) before the loop goes on. The numbers and the refusals are decodeBatches'
 * (test/codec-into.test.ts and test/codec-into-runs.test.ts compare them with the codec of
 * fa3a187, test/helpers/codec-oracle/, on hostile and damaged payloads).
 */
import type { ByteReader } from './bytes.js';
import { decodeColumnBodyF64 } from './column-decode.js';
import { ColumnKind, DECIMAL_EXPONENT_MAX, POW10 } from './column-kinds.js';
import type { PayloadHead } from './payload-head.js';

/**
 * A block's batches of numbers in typed arrays, reused from block to block (each array
 * grown as needed: only [0, batchCount) and [0, updateCount) are the block's).
 */
export interface NumberBatches {
  ts: Float64Array;
  counts: Uint32Array;
  ids: Uint32Array;
  nums: Float64Array;
  batchCount: number;
  updateCount: number;
  /** The largest of ids[0, updateCount) (0 when there is none): the caller checks it against the paths it knows. */
  idMax: number;
}

/**
 * NumberBatches made by a class, not an object literal: with a literal, the second cursor's
 * NumberBatches deoptimized the compiled readTimes and readBatchLists ("code dependencies"
 * in --trace-deopt), which then ran unoptimized and were compiled again during that
 * cursor's read (bench:peers times a process's second read); with a class they are not.
 */
class NumberBatchesObject implements NumberBatches {
  ts = new Float64Array(64);
  counts = new Uint32Array(64);
  ids = new Uint32Array(1024);
  nums = new Float64Array(1024);
  batchCount = 0;
  updateCount = 0;
  idMax = 0;
}

export function newNumberBatches(): NumberBatches {
  return new NumberBatchesObject();
}

// Block-local scratch, grown by doubling. links[u] (u < nu) is the next update of update u's
// column; links[nu + c] is column c's first update; last[c] its last one (nu + c while it has
// none), where its chain ends.
let links: Uint32Array = new Uint32Array(2048);
let last: Uint32Array = new Uint32Array(1024);
let colGlobal: Uint32Array = new Uint32Array(1024);
/** A column of another kind than DECIMAL_K, decoded by decodeColumnBodyF64 before it is put along its chain. */
let columnScratch: Float64Array = new Float64Array(64);

function grownU32(a: Uint32Array, n: number): Uint32Array {
  return a.length >= n ? a : new Uint32Array(Math.max(n, a.length * 2));
}

function grownF64(a: Float64Array, n: number): Float64Array {
  return a.length >= n ? a : new Float64Array(Math.max(n, a.length * 2));
}

/**
 * payload.ts decodeBatchesInto for a payload whose head `head` was read from `r` (r at the
 * end of it): along chains of occurrences. Returns false for a payload this does not read
 * (layout 1, or a MSGPACK column); refuses what decodeBatches refuses (TPD_CORRUPT_BLOCK).
 */
export function decodeChainsInto(r: ByteReader, head: PayloadHead, firstTs: number, out: NumberBatches): boolean {
  const { layout2, nb, nu, nc } = head;
  if (!layout2) return false;
  readTimes(r, firstTs, nb, out);
  readColumnIds(r, nc);
  if (out.ids.length < nu) out.ids = new Uint32Array(Math.max(nu, out.ids.length * 2));
  if (out.nums.length < nu) out.nums = new Float64Array(Math.max(nu, out.nums.length * 2));
  readBatchLists(r, nb, nu, nc, out);
  const kinds = r.bytes(nc);
  if (kinds.indexOf(ColumnKind.MSGPACK) >= 0) return false;
  out.idMax = decodeColumns(r, kinds, nu, out.ids, out.nums);
  if (r.pos !== r.end) r.fail('trailing bytes');
  out.batchCount = nb;
  out.updateCount = nu;
  return true;
}

/** The batch times (delta-of-delta varints) into out.ts. */
function readTimes(r: ByteReader, firstTs: number, nb: number, out: NumberBatches): void {
  const ts = (out.ts = grownF64(out.ts, nb));
  let prevTs = firstTs;
  let prevDelta = 0;
  for (let i = 0; i < nb; i++) {
    prevDelta += r.svar();
    prevTs += prevDelta;
    ts[i] = prevTs;
  }
}

/** Each column's path id (zigzag varint deltas) into colGlobal (and `last` grown for as many columns). */
function readColumnIds(r: ByteReader, nc: number): void {
  const global = (colGlobal = grownU32(colGlobal, nc));
  last = grownU32(last, nc);
  // One-byte varints (consecutive paths: most) read by idsRun, the rest here.
  for (let c = idsRun(r, global, 0, nc); c < nc; c = idsRun(r, global, c + 1, nc)) {
    const g = (c > 0 ? (global[c - 1] as number) : 0) + r.svar();
    // Not below 0 nor past 2^32 - 1 (g is an integer); one test where two cost a third of the loop.
    if (g >>> 0 !== g) r.fail('path id out of range');
    global[c] = g;
  }
}

/**
 * Column ids from c0 on while their varints take one byte and the ids stay in range:
 * returns the first column that is not so (r.pos at its varint, which readColumnIds reads
 * or refuses), or nc. No call in its loop: with r.svar called from inside it, as before,
 * V8 kept the loop's values on the stack around the call (a mixed read's column table
 * 1.6 -> 1.3 ns an update).
 */
function idsRun(r: ByteReader, global: Uint32Array, c0: number, nc: number): number {
  const buf = r.buf;
  const end = r.end;
  let p = r.pos;
  let g = c0 > 0 ? (global[c0 - 1] as number) : 0;
  let c = c0;
  for (; c < nc && p < end; c++) {
    const b0 = buf[p] as number;
    if (b0 >= 0x80) break;
    const id = g + ((b0 >>> 1) ^ -(b0 & 1));
    if (id >>> 0 !== id) break;
    p++;
    g = id;
    global[c] = g;
  }
  r.pos = p;
  return c;
}

/**
 * The batch lists: out.counts and the chains of occurrences (links, last); the ids are
 * written with the values (decodeColumns). Refuses what payload.ts readLayout refuses. A
 * "same as previous" batch reads the last listed batch's column indices again from their bytes
 * (checked when first read): cheaper than storing every update's column for the few blocks
 * that repeat a list (mixed blocks never do; polls, which do, are read grouped).
 */
function readBatchLists(r: ByteReader, nb: number, nu: number, nc: number, out: NumberBatches): void {
  const next = (links = grownU32(links, nu + nc));
  const tails = last;
  const counts = (out.counts = grownU32(out.counts, nb));
  for (let c = 0; c < nc; c++) tails[c] = nu + c;
  let at = 0;
  let listPos = r.pos;
  let prevCount = -1;
  for (let i = 0; i < nb; i++) {
    const head = r.uvar();
    const n = Math.floor(head / 2);
    if (at + n > nu) r.fail('batch lists exceed update count');
    if (head % 2 === 1) {
      if (n !== prevCount) r.fail('"same as previous" batch with another count');
      repeatList(r, listPos, at, n);
    } else {
      listPos = r.pos;
      readList(r, at, n, nc, next);
    }
    counts[i] = n;
    prevCount = n;
    at += n;
  }
  if (at !== nu) r.fail('batch lists do not add up to the update count');
}

/** Column index of the update before listRun's stop (its loop returns where it stopped). */
let listLast = -1;

/** One listed batch of n updates from update `at`: its column indices (r at the first), each update's chain link. */
function readList(r: ByteReader, at: number, n: number, nc: number, next: Uint32Array): void {
  listLast = -1;
  for (let j = listRun(r, at, 0, n, nc, next); j < n; j = listRun(r, at, j + 1, n, nc, next)) {
    // A varint of more than two bytes, or one past the payload or the columns (refused here).
    const l = listLast + r.svar();
    if (l < 0 || l >= nc) r.fail('column index out of range');
    const u = at + j;
    next[last[l] as number] = u;
    last[l] = u;
    listLast = l;
  }
}

/**
 * Entries j0.. of a batch list while their varints take one or two bytes and stay in range:
 * returns the first that is not so (r.pos at it), or n; listLast is the column of the
 * entry before it. No call in its loop (see idsRun).
 */
function listRun(r: ByteReader, at: number, j0: number, n: number, nc: number, next: Uint32Array): number {
  const buf = r.buf;
  const end = r.end;
  const tails = last;
  let p = r.pos;
  let l = listLast;
  let j = j0;
  for (; j < n && p < end; j++) {
    let z = buf[p] as number;
    let bytes = 1;
    if (z >= 0x80) {
      // Two bytes (a list's first entry, past column 63): read here too.
      const b1 = p + 1 < end ? (buf[p + 1] as number) : 0x80;
      if (b1 >= 0x80) break;
      z = (z & 0x7f) | (b1 << 7);
      bytes = 2;
    }
    const c = l + ((z >>> 1) ^ -(z & 1));
    if (c >>> 0 >= nc) break;
    p += bytes;
    l = c;
    const u = at + j;
    next[tails[c] as number] = u;
    tails[c] = u;
  }
  r.pos = p;
  listLast = l;
  return j;
}

/** A "same as previous" batch of n updates from update `at`: the column indices listed from byte listPos on, read again. */
function repeatList(r: ByteReader, listPos: number, at: number, n: number): void {
  const next = links;
  const tails = last;
  const buf = r.buf;
  const pos = r.pos;
  let q = listPos;
  let l = -1;
  for (let j = 0; j < n; j++) {
    const b0 = buf[q] as number;
    if (b0 < 0x80) {
      q++;
      l += (b0 >>> 1) ^ -(b0 & 1);
    } else {
      r.pos = q;
      l += r.svar();
      q = r.pos;
    }
    const u = at + j;
    next[tails[l] as number] = u;
    tails[l] = u;
  }
  r.pos = pos;
}

/** decimalColumns' largest path id so far (returned through the module: the loop returns where it stopped). */
let idMaxSoFar = 0;

/**
 * Every column body, in order, each value and its path id to its update's place in nums and
 * ids (along the column's chain: every update is on one, so every place is written). The
 * ids are written here, not while the lists are read, where each would cost a load of
 * its column's id (a mixed read's decode 11.8 -> 11.25 ns an update). Returns the largest
 * path id of a column that has updates (0 when none has).
 */
function decodeColumns(r: ByteReader, kinds: Uint8Array, nu: number, ids: Uint32Array, nums: Float64Array): number {
  const nc = kinds.length;
  idMaxSoFar = 0;
  // One call of decimalColumns (V8 inlines each call site: one copy of its loop).
  for (let c = 0; ; c++) {
    c = decimalColumns(r, kinds, c, nu, ids, nums);
    if (c >= nc) break;
    slowColumn(r, kinds[c] as number, c, nu, ids, nums);
  }
  return idMaxSoFar;
}

/** Column c from its start (r.pos) by the general readers: any kind, any varint. */
function slowColumn(r: ByteReader, kind: number, c: number, nu: number, ids: Uint32Array, nums: Float64Array): void {
  const tail = last[c] as number;
  const id = colGlobal[c] as number;
  let u = nu + c;
  if (u !== tail && id > idMaxSoFar) idMaxSoFar = id;
  const k = kind - ColumnKind.DECIMAL_K;
  if (k < 0 || k > DECIMAL_EXPONENT_MAX) {
    putColumn(kind, r, u, tail, nums);
    for (u = nu + c; u !== tail; ) {
      u = links[u] as number;
      ids[u] = id;
    }
    return;
  }
  const div = POW10[k] as number;
  let acc = 0;
  while (u !== tail) {
    u = links[u] as number;
    acc += r.svar();
    ids[u] = id;
    nums[u] = acc / div;
  }
}

/**
 * DECIMAL_K columns from c on whose varints take 1 to 3 bytes, each value to its update's
 * place (along the column's chain), until a column that is not (another kind, a longer
 * varint, the last bytes of the payload): returns it (r.pos at its start: the general
 * reader reads it again from there). No call in its loops: V8 keeps the arrays' checks
 * and bases out of them.
 */
function decimalColumns(r: ByteReader, kinds: Uint8Array, c0: number, nu: number, ids: Uint32Array, nums: Float64Array): number {
  const view = r.view;
  // Four bytes are loaded at once while four are left (the view is the payload's: r.end is its length).
  const wordEnd = r.end - 3;
  const next = links;
  const tails = last;
  const global = colGlobal;
  const nc = kinds.length;
  let p = r.pos;
  let idMax = idMaxSoFar;
  let c = c0;
  columns: for (; c < nc; c++) {
    const k = (kinds[c] as number) - ColumnKind.DECIMAL_K;
    if (k < 0 || k > DECIMAL_EXPONENT_MAX) break;
    const tail = tails[c] as number;
    let u = nu + c;
    const id = global[c] as number;
    if (u !== tail && id > idMax) idMax = id;
    const div = POW10[k] as number;
    let acc = 0;
    let q = p;
    while (u !== tail) {
      u = next[u] as number;
      if (q >= wordEnd) break columns;
      // A varint of 1 to 3 bytes from one 4-byte load (little-endian: byte i at bits 8i),
      // without a branch on its length (the first value of a column takes 2 or 3 bytes,
      // the next ones 1: a branch would be mispredicted).
      const w = view.getUint32(q, true);
      const more0 = (w >>> 7) & 1;
      const more1 = more0 & (w >>> 15);
      if ((more1 & (w >>> 23)) !== 0) break columns;
      const z = (w & 0x7f) | ((w >>> 1) & 0x3f80 & -more0) | ((w >>> 2) & 0x1fc000 & -more1);
      q += 1 + more0 + more1;
      acc += (z >>> 1) ^ -(z & 1);
      ids[u] = id;
      nums[u] = acc / div;
    }
    p = q;
  }
  r.pos = p;
  idMaxSoFar = idMax;
  return c;
}

/**
 * A column of another kind (PACKED, XOR, FLOAT64, DECIMAL) along the chain from `head` to
 * `tail`: decoded by decodeColumnBodyF64, then put at its updates as 32-bit words (a NaN's
 * payload is never a JS number here).
 */
function putColumn(kind: number, r: ByteReader, head: number, tail: number, nums: Float64Array): void {
  let n = 0;
  for (let u = head; u !== tail; u = links[u] as number) n++;
  columnScratch = grownF64(columnScratch, n);
  decodeColumnBodyF64(kind, r, columnScratch, 0, n);
  const from = new Uint32Array(columnScratch.buffer, 0, 2 * n);
  const to = new Uint32Array(nums.buffer, nums.byteOffset, 2 * nums.length);
  let u = head;
  for (let j = 0; j < n; j++) {
    u = links[u] as number;
    to[2 * u] = from[2 * j] as number;
    to[2 * u + 1] = from[2 * j + 1] as number;
  }
}
