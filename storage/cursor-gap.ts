/**
 * Reading forward across a file that is gone: missing (deleted
 * before an open, a fork's file refused), deleted while the archive is open, or remote with
 * a fetch that fails. Such a file is a hole in what can be read, not the end of it: the
 * reading resumes at the start of the next file that can be read (fetched from cold storage
 * first when it is remote, as a seek does), whose opening image (stamped with the last batch
 * before it) gives the whole state there, so nothing after the hole is lost. After such a
 * read failed, Cursor.crossGone stands there and says what was lost: the batches after the
 * last one read up to that image's time, in the files named. Playback sessions cross so.
 *
 * A gone file with no readable file after it yet (none; or only `current` with nothing
 * committed: its opening image comes with its first flush) is a hole at the end of what can
 * be read: the gap is said (its files, and the time up to which they are known to reach) and
 * the cursor stands before it, as at the end of the archive; a read later tries again. A next
 * file that has batches but no opening image (its state would need the gone batches) is not
 * crossed: the read fails as before.
 */
import { isTapedeckError, TapedeckError } from '../protocol/errors.js';
import type { Archive, FetchWait } from './archive.js';
import { isIndexed, type FileEntry } from './file-list.js';
import { damagedTail, goneFile, openingImageTs, unknownFile, type Place } from './cursor-seek.js';

export interface CrossedGap {
  /** The last batch read before the hole (null: none, the beginning). */
  fromUs: number | null;
  /** The time of the state the reading resumes from: every batch after fromUs up to it is lost. */
  toUs: number;
  /** The files that could not be read, oldest first. */
  files: string[];
  /** Why the first of them could not be read. */
  why: string;
  /**
   * Where the cursor stands: the start of the next readable file; null when none can be read
   * yet (the cursor stands after the last batch read, `fromUs`; `toUs` is then the last time
   * the gone files are known to reach, or `fromUs`).
   */
  place: Place | null;
}

/**
 * A hole no file entry names, which a read forward from the end of file f (undefined: from
 * the beginning) into the next file passes (found with no catalog: reindex, inspect,
 * export, a read-only server): seqs with no entry between f and the next file (a file
 * deleted, or whose header cannot be read; seqs are consecutive from 0), or f's part past
 * its first bad block when f is damaged (never indexed: a truncated file's lost end too).
 * The seek finds the same holes (cursor-seek.ts pastHole); a forward read that passed them
 * read on as if nothing had been recorded there.
 */
export interface Hole {
  /** The hole as a gone file of unknown times (named as the seek names it). */
  entry: FileEntry;
  /** A damaged file's tail (TPD_CORRUPT_BLOCK), not seqs with no entry (TPD_FILE_UNAVAILABLE). */
  tail: boolean;
  /** The last batch before the hole (null: none known). */
  afterUs: number | null;
  /** The next file's opening image, stamped with the last batch before it (null: none known, or no next file). */
  uptoUs: number | null;
}

/**
 * The hole between the end of file f (undefined: the beginning) and the next file, or
 * undefined. None when the next file's opening image is stamped with f's last batch (times
 * only grow): nothing was recorded in between (a file that held no batch, a tail of no batch).
 */
export function holeAfter(a: Archive, f: FileEntry | undefined): Hole | undefined {
  const next = f === undefined ? a.fileList.first() : a.fileList.after(f.seq);
  const expected = (f?.seq ?? -1) + 1;
  const tail = f !== undefined && f.damaged && f.location !== 'missing';
  if (!tail && (next === undefined || next.seq <= expected)) return undefined;
  let afterUs: number | null = null;
  for (let p = f; p !== undefined && afterUs === null; p = a.fileList.before(p.seq)) afterUs = p.lastTs;
  const uptoUs = next !== undefined && next.location !== 'missing' && isIndexed(next) ? (openingImageTs(a, next) ?? null) : null;
  if (afterUs !== null && uptoUs === afterUs) return undefined;
  const entry = tail ? damagedTail(f, new Set()) : unknownFile(expected, (next as FileEntry).seq - 1);
  return { entry, tail, afterUs, uptoUs };
}

/** A read into hole h: the error a seek into it gives. */
export function holeError(h: Hole): TapedeckError {
  const at = h.afterUs === null ? '' : ` after ${h.afterUs}`;
  if (h.tail) return new TapedeckError('TPD_CORRUPT_BLOCK', `file ${h.entry.name} is damaged: its batches${at} past the damage cannot be read`, { file: h.entry.name });
  return goneFile(h.entry, `is missing: its batches${at} cannot be read`);
}

/** `err` is a read into hole h (holeError), not another failure naming the same file (a damaged block has an offset). */
export function isHoleRead(err: unknown, h: Hole): err is TapedeckError {
  return isTapedeckError(err, h.tail ? 'TPD_CORRUPT_BLOCK' : 'TPD_FILE_UNAVAILABLE') && err.details?.file === h.entry.name && err.details.offset === undefined;
}

/**
 * For readers of a time range that cross files themselves (readSeries, the diff's pass): fails
 * as a cursor reading forward does (holeAfter) when the hole after file `prev` (undefined: the
 * beginning), if any, may hold batches in [fromUs, toUs]: its batches are after the last one
 * before it and at or before the next file's opening image. Passed over, the range's updates
 * in it were left out in silence.
 */
export function throwHoleIn(a: Archive, prev: FileEntry | undefined, fromUs: number, toUs: number): void {
  if (prev !== undefined && !prev.sealed && !prev.damaged) return;
  const hole = holeAfter(a, prev);
  if (hole !== undefined && (hole.afterUs ?? -Infinity) < toUs && (hole.uptoUs ?? Infinity) >= fromUs) throw holeError(hole);
}

/** `err` says file `f` cannot be read now: missing, not fetchable, or gone from disk (ENOENT). */
export function isGoneRead(err: unknown, f: FileEntry): err is TapedeckError {
  if (!isTapedeckError(err) || err.details?.file !== f.name) return false;
  if (err.code === 'TPD_FILE_UNAVAILABLE') return true;
  return err.code === 'TPD_IO' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Past file f, which `cause` says cannot be read: the next file that can (each one between
 * that cannot is named too); `place` null when none can be read yet; undefined when the
 * next one's state there would need the lost batches.
 */
export async function pastGone(a: Archive, f: FileEntry, cause: TapedeckError, fromUs: number | null, wait: FetchWait | undefined): Promise<CrossedGap | undefined> {
  const gone = [f];
  // f may be a hole of seqs with no entry (holeAfter): the seqs up to the next file are its own.
  let g = a.fileList.after(f.seq);
  if (a.fileList.bySeq(f.seq) !== undefined) g = withUnknown(f, g, gone);
  while (g !== undefined) {
    if (g.location !== 'missing') {
      try {
        await a.prepare(g, wait);
        break;
      } catch (err) {
        if (!isGoneRead(err, g)) throw err;
      }
    }
    gone.push(g);
    g = withUnknown(g, a.fileList.after(g.seq), gone);
  }
  const files = gone.map((x) => x.name);
  const toUs = g === undefined ? undefined : openingImageTs(a, g);
  if (g === undefined || (toUs === undefined && !g.sealed && a.table(g).deltas.length === 0)) {
    // Nothing readable after the hole yet: its end is the last time its files are known to reach.
    const endUs = Math.max(fromUs ?? 0, ...gone.map((x) => x.lastTs ?? 0));
    return { fromUs, toUs: endUs, files, why: cause.message, place: null };
  }
  if (toUs === undefined) return undefined;
  return { fromUs, toUs, files, why: cause.message, place: { seq: g.seq, di: 0, k: 0 } };
}

/** `next`, after naming in `gone` the seqs with no entry between `f` and it. */
function withUnknown(f: FileEntry, next: FileEntry | undefined, gone: FileEntry[]): FileEntry | undefined {
  if (next !== undefined && next.seq > f.seq + 1) gone.push(unknownFile(f.seq + 1, next.seq - 1));
  return next;
}
