/**
 * Whether a directory holds an archive, for the tools that work on an existing one
 * (`tapedeck inspect`, `verify`, `reindex`): a mistyped path must be refused, not reported
 * as an empty archive that verifies clean, nor turned into a new archive by a reindex.
 * A server opens (and creates) its archive directory without this check.
 */
import { readdir, stat } from 'node:fs/promises';
import { TapedeckError } from '../protocol/errors.js';
import { CATALOG_FILE } from './catalog-rows.js';
import { CURRENT_NAME, ROTATED_NAME } from './segment-file.js';

/** Names only an archive leaves: its catalog, its segment files, and a `current` set aside by an open. */
function isArchiveName(name: string): boolean {
  return name === CATALOG_FILE || name === CURRENT_NAME || ROTATED_NAME.test(name)
    || name.startsWith(`${CURRENT_NAME}.bad-`) || name.startsWith(`${CURRENT_NAME}.foreign-`);
}

/** Why `dir` is not an archive directory, or undefined when it is one. */
export async function notAnArchive(dir: string): Promise<string | undefined> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) return `archive directory ${dir} does not exist`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => err);
  if (!Array.isArray(names)) return `cannot list ${dir}: ${names.code ?? names.message}`;
  if (!names.some(isArchiveName)) return `${dir} holds no archive: no ${CATALOG_FILE}, no ${CURRENT_NAME} and no segment file`;
  return undefined;
}

/** Throws TPD_BAD_ARGUMENT naming why `dir` is not an archive directory. */
export async function assertArchiveDir(dir: string): Promise<void> {
  const why = await notAnArchive(dir);
  if (why !== undefined) throw new TapedeckError('TPD_BAD_ARGUMENT', why);
}
