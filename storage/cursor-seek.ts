/**
 * Where a seek by time lands (Cursor.seek({ ts })): the file and delta block holding the
 * last batch at or before t, and how many of that block's batches are at or before it.
 *
 * The block is read and checked as every read checks it (CRC32C of the whole frame,
 * length, the frame against its catalog row; a damaged block fails the seek with
 * TPD_CORRUPT_BLOCK) but only its head and batch times are decompressed (seek-head.ts) and
 * decoded (codec/batch-times.ts): a seek costs a varint a batch of its block, not a decode
 * of every update. The state and the batches that follow are read when asked for.
 *
 * A file that is gone (location 'missing') leaves a hole, not a wall: a time at or after the
 * opening image of the next readable file (stamped with the last batch before it, so the
 * state at every time from there to that file's first batch) lands at that file's start,
 * whose state the image gives whole. A time in the hole before it, whose state needs the
 * lost batches, fails with TPD_FILE_UNAVAILABLE naming the file, never with the state of
 * the file before the hole. Seqs the archive holds no entry for (a file whose header cannot
 * be read, or deleted, with no catalog to name it) are such a hole of unknown times, and so
 * is a damaged file's part past its first bad block (never indexed): a time past its last
 * indexed batch and before the next file's image fails with TPD_CORRUPT_BLOCK.
 */
import { isTapedeckError, TapedeckError } from '../protocol/errors.js';
import type { Archive, FetchWait } from './archive.js';
import { batchesAtOrBefore } from './codec/batch-times.js';
import { BlockType } from './codec/frame.js';
import { isIndexed, type FileEntry } from './file-list.js';
import { seekHead } from './seek-head.js';

/** Batch k of delta block di of file seq: the first batch after the time sought. */
export interface Place {
  seq: number;
  di: number;
  k: number;
}

/** Batch times of a block the cursor holds decoded, which is then not read again. */
export interface HeldTimes {
  seq: number;
  offset: number;
  ts: Float64Array;
}

/** The place after time t; undefined when no file starts by t (the position is the beginning). */
export async function placeAt(a: Archive, t: number, wait: FetchWait | undefined, held: HeldTimes | undefined): Promise<Place | undefined> {
  let f: FileEntry | undefined;
  while (true) {
    // A file not yet indexed may start at or before t (its firstTs is an estimate or null):
    // fetch and index it, then choose again with its real range.
    f = a.fileList.last();
    while (f && !mayStartBy(f, t)) f = a.fileList.before(f.seq);
    const hole = await pastHole(a, f, t, wait);
    if (hole === 'again') continue;
    if (hole !== undefined) return hole;
    if (!f) return undefined;
    if (isIndexed(f)) break;
    await a.prepare(f, wait);
  }
  const table = a.table(f);
  // Last delta block starting at or before t.
  let lo = 0;
  let hi = table.deltas.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (table.firstTs(table.deltas[mid] as number) <= t) lo = mid;
    else hi = mid - 1;
  }
  const k = lo < table.deltas.length ? await batchesBy(a, f, lo, t, wait, held) : 0;
  // t at or past the block's last batch: the next block is taken to start after t on its
  // indexed first time alone, which a file indexed from its frames' headers (no catalog)
  // takes unchecked. Read it (its CRC32C checked) when it is there: a first time damaged
  // later than it is would otherwise leave its batches at or before t out of the state, in
  // silence (test/damage3-read-paths, seed 827995). Only a seek to between two blocks pays.
  if (lo + 1 < table.deltas.length && k > 0 && k === table.delta(lo).batches) {
    const early = await batchesBy(a, f, lo + 1, t, wait, held);
    if (early > 0) {
      const row = table.delta(lo + 1);
      throw new TapedeckError('TPD_CORRUPT_BLOCK', `${f.name} block at ${row.offset}: ${early} batch(es) at or before ${t} where the index has it start at ${row.firstTs}`, { file: f.name, offset: row.offset });
    }
  }
  return { seq: f.seq, di: lo, k };
}

/**
 * When gone files lie between f (the last file that may start by t; undefined: none) and
 * the next readable file, and t is past f's last batch: the start of that next file when
 * its opening image is at or before t (and no gone file is known to end after the image);
 * TPD_FILE_UNAVAILABLE when t's state needs a gone file. 'again': the next file was fetched
 * and indexed (its range is known now), choose again. undefined: no hole in the way.
 */
async function pastHole(a: Archive, f: FileEntry | undefined, t: number, wait: FetchWait | undefined): Promise<Place | 'again' | undefined> {
  if (f !== undefined && f.location !== 'missing' && !(isIndexed(f) && f.lastTs !== null && f.lastTs < t)) return undefined;
  const gone: FileEntry[] = f?.location === 'missing' ? [f] : [];
  // A damaged file's blocks past its first bad one are not indexed (file-list.ts): its tail is
  // a hole of unknown times, whose state no batch before it gives.
  const tails = new Set<FileEntry>();
  if (f !== undefined && f.location !== 'missing' && f.damaged) gone.push(damagedTail(f, tails));
  let g = f === undefined ? a.fileList.first() : a.fileList.after(f.seq);
  // Seqs are consecutive from 0: a seq the archive holds no entry for (neither a readable file
  // nor a catalog row: a file whose header cannot be read, or gone, found with no catalog) is
  // a gone file of unknown times too.
  let expected = (f?.seq ?? -1) + 1;
  while (g !== undefined) {
    if (g.seq > expected) gone.push(unknownFile(expected, g.seq - 1));
    if (g.location === 'missing') gone.push(g);
    // A damaged file with no batch indexed: nothing of it answers, all of it is the hole.
    else if (g.damaged && isIndexed(g) && g.firstTs === null) gone.push(damagedTail(g, tails));
    else break;
    expected = g.seq + 1;
    g = a.fileList.after(g.seq);
  }
  if (gone.length === 0) return undefined;
  if (g !== undefined && !isIndexed(g)) {
    await a.prepare(g, wait);
    return 'again';
  }
  const image = g === undefined ? undefined : openingImageTs(a, g);
  if (g !== undefined && image !== undefined && image <= t && gone.every((x) => x.lastTs === null || x.lastTs <= image)) return { seq: g.seq, di: 0, k: 0 };
  // Before the first file and every gone file known to start after t: the beginning.
  if (f === undefined && gone.every((x) => x.firstTs !== null && x.firstTs > t)) return undefined;
  if (f !== undefined && f.location !== 'missing' && gone.every((x) => x.firstTs !== null && x.firstTs > t)) return undefined;
  const lost = gone.find((x) => x.firstTs === null || x.firstTs <= t) ?? (gone[0] as FileEntry);
  if (tails.has(lost)) throw new TapedeckError('TPD_CORRUPT_BLOCK', `file ${lost.name} is damaged: the state at ${t} needs its batches past the damage`, { file: lost.name });
  throw goneFile(lost, `is missing: the state at ${t} needs its batches`);
}

/** The part of damaged file f past its last indexed batch, as a gone file of unknown times (added to `tails`). */
export function damagedTail(f: FileEntry, tails: Set<FileEntry>): FileEntry {
  const tail: FileEntry = { ...f, location: 'missing', firstTs: null, lastTs: null, table: undefined };
  tails.add(tail);
  return tail;
}

/** Seqs `from` to `to` as one gone file of unknown times (the archive has no entry for them). */
export function unknownFile(from: number, to: number): FileEntry {
  const name = `of seq ${from === to ? from : `${from} to ${to}`} (neither a readable file nor in the catalog)`;
  return { seq: from, name, location: 'missing', firstTs: null, lastTs: null, committedBytes: 0, sealed: true, damaged: false, table: undefined, gen: 0, replaced: undefined };
}

/**
 * A read of a gone file: reading on into one fails as a read of its blocks does (one whose
 * rows the catalog dropped, a fork's file refused, has no blocks and was passed over in silence).
 */
export function goneFile(f: FileEntry, why = 'is missing'): TapedeckError {
  return new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${f.name} ${why}`, { file: f.name });
}

/** The time of the image g opens with (before its first delta block), or undefined when it has none. */
export function openingImageTs(a: Archive, g: FileEntry): number | undefined {
  const table = a.table(g);
  const end = table.deltas.length > 0 ? (table.deltas[0] as number) : table.length;
  let ts: number | undefined;
  for (let r = 0; r < end; r++) if (table.type(r) === BlockType.IMAGE) ts = table.lastTs(r);
  return ts;
}

function mayStartBy(f: FileEntry, t: number): boolean {
  if (!isIndexed(f)) return f.firstTs === null || f.firstTs <= t;
  return f.firstTs !== null && f.firstTs <= t;
}

/** How many batches of delta block di of f are at or before t. */
async function batchesBy(a: Archive, f: FileEntry, di: number, t: number, wait: FetchWait | undefined, held: HeldTimes | undefined): Promise<number> {
  const table = a.table(f);
  if (held !== undefined && held.seq === f.seq && held.offset === table.offset(table.deltas[di] as number)) {
    let k = 0;
    while (k < held.ts.length && (held.ts[k] as number) <= t) k++;
    return k;
  }
  const row = table.delta(di);
  let raw: Uint8Array;
  if (f.location === 'local') {
    // Only the payload's head and times decompressed (seek-head.ts); a frame that fails a
    // check there is opened by the archive, which throws what every reader gets.
    const frame = await a.readBytes(f, row.offset, row.frameBytes);
    raw = seekHead(frame, row) ?? a.payloadOf(f, row, frame);
  } else {
    raw = await a.readPayload(f, row, wait);
  }
  try {
    return batchesAtOrBefore(raw, row.firstTs, row.batches, t);
  } catch (err) {
    // As Archive.readBlock reports a payload it cannot decode: with the block's file and offset.
    if (isTapedeckError(err) && err.details === undefined) {
      throw new TapedeckError(err.code, `${f.name} block at ${row.offset}: ${err.message}`, { file: f.name, offset: row.offset }, { cause: err });
    }
    throw err;
  }
}
