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
 * A gone file without a readable file after it, or whose next file has no opening image
 * (its state would need the gone batches), is not crossed: the read fails as before.
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
  /** Where the cursor stands: the start of the next readable file. */
  place: Place;
}

/** `err` says file `f` cannot be read now: missing, not fetchable, or gone from disk (ENOENT). */
export function isGoneRead(err: unknown, f: FileEntry): err is TapedeckError {
  if (!isTapedeckError(err) || err.details?.file !== f.name) return false;
  if (err.code === 'TPD_FILE_UNAVAILABLE') return true;
  return err.code === 'TPD_IO' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Past file f, which `cause` says cannot be read: the next file that can (each one between
 * that cannot is named too), or undefined when there is none or its state there needs the
 * lost batches.
 */
export async function pastGone(a: Archive, f: FileEntry, cause: TapedeckError, fromUs: number | null, wait: FetchWait | undefined): Promise<CrossedGap | undefined> {
  const files = [f.name];
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
    files.push(g.name);
    g = a.fileList.after(g.seq);
  }
  if (g === undefined) return undefined;
  const toUs = openingImageTs(a, g);
  if (toUs === undefined) return undefined;
  return { fromUs, toUs, files, why: cause.message, place: { seq: g.seq, di: 0, k: 0 } };
}
