/**
 * Filling a file system until it refuses more, without vitest (test/helpers/archive-identity.ts
 * runs it in plain Node too); test/helpers/tmpfs.ts re-exports it.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** Fills the file system at `dir` with one file until it refuses more; returns its path. */
export async function fillDisk(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  let at = 0;
  try {
    for (const chunk of [Buffer.alloc(256 * 1024, 1), Buffer.alloc(4096, 1)]) {
      for (;;) {
        const n = await fh.write(chunk, 0, chunk.length, at).then((r) => r.bytesWritten, (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOSPC') throw err;
          return 0;
        });
        at += n;
        if (n < chunk.length) break;
      }
    }
  } finally {
    await fh.close();
  }
  return path;
}
