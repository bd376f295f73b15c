/**
 * Rebuilds the catalog from the segment files (`tapedeck reindex`). The catalog is
 * derived data: moving it aside and opening the archive indexes every file again. It is
 * moved only once the writer's lock is held: a reindex of a directory that a server
 * records into fails with TPD_ARCHIVE_LOCKED and leaves its catalog where it is.
 */
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CATALOG_FILE } from './catalog.js';
import { Archive, type OpenOptions } from './archive.js';
import { assertArchiveDir } from './archive-dir.js';

export async function reindexArchive(dir: string, opts: OpenOptions = {}): Promise<Archive> {
  // A directory that holds no archive is refused: a reindex there would create one.
  await assertArchiveDir(dir);
  return Archive.open(dir, { ...opts, readonly: false, locked: moveCatalogAside });
}

async function moveCatalogAside(dir: string): Promise<void> {
  const file = join(dir, CATALOG_FILE);
  const stamp = Date.now();
  for (const suffix of ['', '-wal', '-shm']) {
    if (await stat(file + suffix).then(() => true, () => false)) await rename(file + suffix, `${file}${suffix}.old-${stamp}`);
  }
}
