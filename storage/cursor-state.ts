/**
 * The state at a cursor's position: the latest value of every covered path, read backward
 * from the position, newer blocks first, until every path that existed then is resolved,
 * which a whole image (one IMAGE frame or its parts) does (storage/cursor.ts stateById).
 *
 * Blocks are read by columns (storage/column-block.ts): each column's latest value (before
 * the position's batch in the block at the position) is taken straight from the decoded
 * column, numbers unboxed, and columns of paths already resolved are skipped, not decoded.
 * So a block costs its columns' bodies, never an update-order array of boxed values (what a
 * full decode builds), and the state's cost hardly grows with block size. The block at the
 * position is decoded only up to the batches read (decimal columns: docs/storage.md, "The
 * state after a seek"), so it costs the block up to the position, not the whole block. The values are
 * the full decode's, bit for bit: a block the column reader refuses (a path in two columns,
 * ids it does not know) or that holds a NaN whose payload a plain array may not keep
 * (protocol/value.ts valueArray) is read through the archive's full decode, which also
 * gives a damaged block's error as every reader gets it.
 */
import { isTapedeckError, type TapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import { BlockType } from './codec/frame.js';
import type { DecodedBatches } from './codec/payload.js';
import { decodeNotes } from './codec/xor-float.js';
import type { Archive, FetchWait } from './archive.js';
import { stopIfAborted } from './read-signal.js';
import type { BlockRow } from './catalog.js';
import { ColumnBlockReader, ColumnPlace, type ColumnBlock } from './column-block.js';
import { IdState } from './id-state.js';
import type { FileEntry } from './file-list.js';

/** A decoded block with each batch's first update (starts[k]; starts[nb] = updates). */
export interface HeldBlock {
  d: DecodedBatches;
  starts: Uint32Array;
}

export interface StateQuery {
  archive: Archive;
  wait: FetchWait | undefined;
  /** Covered path ids; null covers every path. */
  covers: ((id: number) => boolean) | null;
  /** Covered paths that exist at the position: the walk stops once it holds this many. */
  target: number;
  /** The position: batch k of delta block di of file seq (di past the last delta: the file's end). */
  seq: number;
  di: number;
  k: number;
  /** The block at the position as the cursor holds it decoded, when it does (its updates before batch k are then read from there). */
  held: HeldBlock | undefined;
  /** Batches with no covered update are not visible even when recorded empty (a selective cursor's rule). */
  dropEmpty: boolean;
  /**
   * Told what the state read of the block at the position that the cursor's next read can
   * use: batch k as read by columns (null: it is not visible), or the whole block when it
   * was read through the full decode.
   */
  onPositionBlock?: (read: { batch: AheadBatch | null } | { decoded: DecodedBatches }) => void;
}

/** One batch's covered updates, read by columns: what the cursor's next read gives without decoding the block in full. */
export interface AheadBatch {
  ts: number;
  ids: Uint32Array;
  values: Value[];
}

/**
 * One reader for every cursor's state: a decode and the reading of its columns run with no
 * await between them, so no two states use it at once. Its scratch is one block's worth.
 */
let reader: ColumnBlockReader | undefined;

/** Blocks the states read by columns and through the full decode (tests check both ways are taken). */
export const stateReads = { columns: 0, full: 0 };

/** Paths `covers` takes (null: every path) that exist in the archive at time pos (null: the beginning, none). */
export function coveredAt(a: Archive, pos: number | null, covers: ((id: number) => boolean) | null): number {
  if (pos === null) return 0;
  const firsts = a.pathFirstTs;
  let lo = 0;
  let hi = firsts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((firsts[mid] as number) <= pos) lo = mid + 1;
    else hi = mid;
  }
  if (covers === null) return lo;
  let n = 0;
  for (let id = 0; id < lo; id++) if (covers(id)) n++;
  return n;
}

/** What the walk has found so far. */
interface Found {
  out: IdState;
  /** Per path id: 1 once resolved (or not covered). */
  seen: Uint8Array;
}

/**
 * Latest value of every covered path at the position, keyed by path id (the map's order is
 * not meaningful). With `onCorrupt`, a block that fails its checks is reported there and
 * passed over (its updates are unreadable; older values stand in); without it, the error
 * is thrown.
 */
export async function stateAt(q: StateQuery, onCorrupt?: (err: TapedeckError) => void): Promise<IdState> {
  const a = q.archive;
  const found: Found = { out: new IdState(a.paths.length), seen: new Uint8Array(a.paths.length) };
  if (q.target === 0) return found.out;
  const at = a.fileList.bySeq(q.seq);
  if (!at) return found.out;
  let f = at;
  let t = a.table(f);
  let r = q.di < t.deltas.length ? (t.deltas[q.di] as number) : t.length;
  let reported = false;
  const guard = async (read: () => Promise<boolean>): Promise<boolean> => {
    try {
      return await read();
    } catch (err) {
      if (!onCorrupt || !isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
      onCorrupt(err);
      reported = true;
      return false;
    }
  };
  if (q.k > 0 && q.di < t.deltas.length) {
    const held = q.held;
    const row = t.delta(q.di);
    const done = held ? takeDecoded(found, held.d, held.starts[q.k] as number, q) : await guard(() => takeBlock(found, q, at, row, q.k, q.onPositionBlock));
    if (done) return found.out;
  }
  while (true) {
    r--;
    while (r < 0) {
      const older = a.fileList.before(f.seq);
      if (!older) return found.out;
      f = older;
      await a.prepare(f, q.wait);
      t = a.table(f);
      r = t.length - 1;
    }
    if (t.type(r) === BlockType.PATHS) continue;
    // A walk back may cross a whole file when no image is near (image_frequency 0: only at
    // each file's start; 600 MB of blocks, 1 to 3 s): a reader that left stops here.
    stopIfAborted(q.wait);
    const row = t.row(r);
    const file = f;
    // An image (one IMAGE frame, or consecutive IMAGE frames of one time: storage/frame-parts.ts)
    // holds every path that exists at its time, so a sound one completes the state and the
    // walk stops there. One that does not lacks parts no check reported (a file indexed up
    // to a damaged part, a part whose type byte reads DELTA): the walk goes on to older
    // blocks, whose latest values are the image's, rather than answer without those paths.
    // After a block onCorrupt was told of, it stops at the image's first part as it always
    // did (the damage is reported; what lies before may be gone).
    if (await guard(() => takeBlock(found, q, file, row, row.batches))) return found.out;
    if (row.type === BlockType.IMAGE && reported && !(r > 0 && t.type(r - 1) === BlockType.IMAGE && t.lastTs(r - 1) === row.lastTs)) return found.out;
  }
}

/**
 * Takes the latest values of batches [0, k) of one block, by columns; through the full
 * decode when the column reader cannot give them bit for bit. True when the state is complete.
 */
async function takeBlock(found: Found, q: StateQuery, f: FileEntry, row: BlockRow, k: number, atPosition?: StateQuery['onPositionBlock']): Promise<boolean> {
  const a = q.archive;
  const raw = await a.readPayload(f, row, q.wait);
  const seen = found.seen;
  // Columns of resolved paths are skipped. No filter and nothing resolved yet: keep every
  // column with one function throughout, which lets the reader reuse a poll's shape.
  const keep = found.out.size === 0 && q.covers === null ? null : (id: number): boolean => seen[id] === 0 && (q.covers === null || q.covers(id));
  // The block's columns as far as the batches read ([0, k), and batch k itself for the
  // cursor), from each one's latest value before batch k: in older blocks (k = batches),
  // only the last.
  const b = decodeColumns(raw, row, a.paths.length, keep, atPosition !== undefined ? k + 1 : k, k);
  if (b === undefined) {
    stateReads.full++;
    const d = await a.readBlock(f, row, q.wait);
    atPosition?.({ decoded: d });
    let end = d.ids.length;
    if (k < d.counts.length) {
      end = 0;
      for (let i = 0; i < k; i++) end += d.counts[i] as number;
    }
    return takeDecoded(found, d, end, q);
  }
  stateReads.columns++;
  if (atPosition !== undefined && k < b.batches) atPosition({ batch: batchOfColumns(b, k, q.covers === null, q.dropEmpty) });
  return takeColumns(found, b, k, q.target);
}

/**
 * Batch k of the block the shared reader decoded last (b), with its kept updates in the
 * order the full decode gives them; null when the batch is not visible: it holds updates
 * but none kept, or none at all and `dropEmpty`. `all`: every column was kept.
 */
function batchOfColumns(b: ColumnBlock, k: number, all: boolean, dropEmpty: boolean): AheadBatch | null {
  const order = (reader as ColumnBlockReader).updateOrder();
  const n = order.sizes[k] as number;
  // A uniform block lists its columns once (batch k repeats them, occurrence k of each);
  // otherwise batch k's updates follow the earlier batches' in local and rank.
  let at = 0;
  if (!b.uniform) for (let i = 0; i < k; i++) at += order.sizes[i] as number;
  const ids = new Uint32Array(n);
  const values = valueArray(n);
  let kept = 0;
  for (let j = 0; j < n; j++) {
    const u = b.uniform ? j : at + j;
    const slot = order.slot[order.local[u] as number] as number;
    if (slot < 0) continue;
    const o = (b.start[slot] as number) + (b.uniform ? k : (order.rank[u] as number));
    ids[kept] = b.ids[slot] as number;
    values[kept] = b.place[slot] === ColumnPlace.NUMBERS ? (b.nums[o] as number) : (b.values[o] as Value);
    kept++;
  }
  if (kept === 0 && n > 0 && !all) return null;
  if (kept === 0 && dropEmpty) return null;
  return { ts: b.ts[k] as number, ids: kept === n ? ids : ids.slice(0, kept), values: kept === n ? values : values.slice(0, kept) };
}


/** The block's kept columns, or undefined when the column reader cannot give them bit for bit (see the file's comment). */
function decodeColumns(raw: Uint8Array, row: BlockRow, pathCount: number, keep: ((id: number) => boolean) | null, endBatch: number, fromBatch: number): ColumnBlock | undefined {
  const r = (reader ??= new ColumnBlockReader());
  decodeNotes.signalingNaN = false;
  try {
    const b = r.decode(raw, row.firstTs, keep, pathCount, endBatch, fromBatch);
    if (decodeNotes.signalingNaN || b.batches !== row.batches) return undefined;
    return b;
  } catch (err) {
    if (isTapedeckError(err) && err.code === 'TPD_CORRUPT_BLOCK') return undefined;
    throw err;
  }
}

/** Each kept column's latest value in batches [0, k). Kept columns are unresolved covered paths. True when the state is complete. */
function takeColumns(found: Found, b: ColumnBlock, k: number, target: number): boolean {
  const { out, seen } = found;
  for (let s = 0; s < b.columns; s++) {
    const id = b.ids[s] as number;
    const o = latestBefore(b, s, k);
    if (o < 0) continue;
    seen[id] = 1;
    out.set(id, b.place[s] === ColumnPlace.NUMBERS ? (b.nums[o] as number) : (b.values[o] as Value));
    if (out.size >= target) return true;
  }
  return false;
}

/** The last occurrence of kept column s in a batch before k, -1 when none. */
function latestBefore(b: ColumnBlock, s: number, k: number): number {
  const from = b.start[s] as number;
  const to = b.start[s + 1] as number;
  if (to === from) return -1;
  if (k >= b.batches) return to - 1;
  if (b.uniform) return k > 0 ? from + k - 1 : -1;
  // Occurrences are in time order: batchOf is ascending within a column.
  const batchOf = b.batchOf;
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((batchOf[mid] as number) < k) lo = mid + 1;
    else hi = mid;
  }
  return lo > from ? lo - 1 : -1;
}

/** Takes latest values from updates [0, end) of a decoded block, newest first. True when complete. */
function takeDecoded(found: Found, d: DecodedBatches, end: number, q: StateQuery): boolean {
  const { out, seen } = found;
  const ids = d.ids;
  for (let i = end - 1; i >= 0; i--) {
    const id = ids[i] as number;
    if (seen[id] === 1) continue;
    seen[id] = 1;
    if (q.covers !== null && !q.covers(id)) continue;
    out.set(id, d.values[i] as Value);
    if (out.size >= q.target) return true;
  }
  return false;
}

/**
 * Batch k of a block read by columns, for a cursor's first read after a seek that lands at a
 * block's start (where the state reads no batch of that block). undefined when the column
 * reader cannot give it bit for bit: the caller decodes the block in full.
 */
export async function batchByColumns(a: Archive, f: FileEntry, row: BlockRow, k: number, covers: ((id: number) => boolean) | null, dropEmpty: boolean, wait: FetchWait | undefined): Promise<AheadBatch | null | undefined> {
  const raw = await a.readPayload(f, row, wait);
  const b = decodeColumns(raw, row, a.paths.length, covers, k + 1, k);
  if (b === undefined || k >= b.batches) return undefined;
  return batchOfColumns(b, k, covers === null, dropEmpty);
}
