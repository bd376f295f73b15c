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
import { isTapedeckError, type TapedeckError } from '../protocol/errors.js';
import type { Archive, FetchWait } from './archive.js';
import type { FileEntry } from './file-list.js';
import { openingImageTs, type Place } from './cursor-seek.js';

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
  let g = a.fileList.after(f.seq);
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
    g = a.fileList.after(g.seq);
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
