/**
 * Whether a directory holds an archive, for the tools that work on an existing one
 * (`tapedeck inspect`, `verify`, `reindex`, `export`): a mistyped path (one that does not
 * exist, a file, or a directory of other things) must be refused, not reported as an empty
 * archive that verifies clean, nor turned into a new archive by a reindex. An empty
 * directory is an empty archive.
 * A server opens (and creates) its archive directory without this check, through
 * makeDirectory.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { TapedeckError } from '../protocol/errors.js';
import { CATALOG_FILE } from './catalog-rows.js';
import { COVERAGE_FILE } from './coverage-journal.js';
import { LOCK_FILE } from './lock.js';
import { CURRENT_NAME, ROTATED_NAME } from './segment-file.js';

/**
 * Names only an archive leaves (docs/format.md, "The directory"): its catalog, its segment
 * files, a `current` set aside by an open, and what a writer creates before its first
 * segment (the lock, a `current` or catalog being made, the coverage journal): a writer
 * killed as it started leaves an archive directory that verifies clean, not a stranger.
 */
function isArchiveName(name: string): boolean {
  return name === CATALOG_FILE || name === CURRENT_NAME || ROTATED_NAME.test(name)
    || name === LOCK_FILE || name.startsWith(`${LOCK_FILE}.`) || name === `${CURRENT_NAME}.tmp` || name === `${CATALOG_FILE}.new`
    || name === COVERAGE_FILE || name.startsWith(`${CURRENT_NAME}.bad-`) || name.startsWith(`${CURRENT_NAME}.foreign-`);
}

/** Why `dir` is not an archive directory, or undefined when it is one. */
export async function notAnArchive(dir: string): Promise<string | undefined> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) return `archive directory ${dir} does not exist`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => err);
  if (!Array.isArray(names)) return `cannot list ${dir}: ${names.code ?? names.message}`;
  // Empty: an archive not started yet, or whose writer was killed before its first file.
  if (names.length > 0 && !names.some(isArchiveName)) return `${dir} holds no archive: no ${CATALOG_FILE}, no ${CURRENT_NAME}, no segment file and no ${LOCK_FILE}`;
  return undefined;
}

/** Throws TPD_BAD_ARGUMENT naming why `dir` is not an archive directory. */
export async function assertArchiveDir(dir: string): Promise<void> {
  const why = await notAnArchive(dir);
  if (why !== undefined) throw new TapedeckError('TPD_BAD_ARGUMENT', why);
}

/**
 * `mkdir -p` that always ends. Node's recursive mkdir retries forever (a core spinning, the
 * call never settling) where mkdir answers ENOENT under a parent that exists, as procfs
 * does (`/proc/x`): here the walk goes up once to the first level that exists and then down
 * once, so an ENOENT on the way down is final. A path that exists as something other than a
 * directory is TPD_BAD_ARGUMENT; other errors are thrown as they come (the caller tells a
 * full disk from the rest).
 */
export async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const made = await mkdir(d).then((): true => true, (err: NodeJS.ErrnoException) => err);
    if (made === true) break;
    if (made.code === 'EEXIST') {
      if (!(await stat(d).catch(() => undefined))?.isDirectory()) throw new TapedeckError('TPD_BAD_ARGUMENT', `${d} exists and is not a directory`, undefined, { cause: made });
      break;
    }
    if (made.code !== 'ENOENT' || dirname(d) === d) throw cannotMake(d, made);
    missing.push(d);
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return; // made meanwhile by another process: checked by whoever reads it
      throw cannotMake(d, err);
    });
  }
}

/** Full-disk errors as they are (the caller's to report); the others as TapedeckErrors naming the directory. */
function cannotMake(d: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return err;
  const what = err.code === 'ENOENT' ? 'its parent takes no new entries (ENOENT)' : err.code === 'ENOTDIR' ? 'a parent is not a directory (ENOTDIR)' : (err.code ?? err.message);
  const code = err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 'TPD_BAD_ARGUMENT' : 'TPD_IO';
  return new TapedeckError(code, `cannot create directory ${d}: ${what}`, undefined, { cause: err });
}
