/**
 * A real full disk for tests: a 4 MiB tmpfs (mounting needs root; without it the tests
 * that need it skip) and a filler file that takes whatever space is left.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export { fillDisk } from './fill-disk.js';

export interface Tmpfs {
  /** The mount point (set in beforeAll). */
  dir: string;
  /** False when mounting was refused: tests that need it skip. */
  mounted: boolean;
}

/**
 * Mounts a 4 MiB tmpfs before the enclosing suite's tests and unmounts it after them;
 * `what` names the skipped tests in the warning when mounting is refused.
 */
export function useTmpfs(prefix: string, what: string): Tmpfs {
  const fs: Tmpfs = { dir: '', mounted: false };
  beforeAll(async () => {
    fs.dir = await mkdtemp(join(tmpdir(), prefix));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', fs.dir], { stdio: 'pipe' });
      fs.mounted = true;
    } catch (err) {
      console.warn(`${what} skipped: mounting a 4 MiB tmpfs was refused (${String((err as Error).message).split('\n')[0]}); it needs root`);
    }
  });
  afterAll(async () => {
    // Lazily when a failed test left a file open, so the mount never outlives the run.
    if (fs.mounted) execFileSync('umount', ['-l', fs.dir]);
    await rmdir(fs.dir).catch(() => undefined);
  });
  return fs;
}

