/**
 * One writer per archive directory: a LOCK file holding the writer's pid, created with
 * O_EXCL. A lock left by a process that no longer runs (crash, SIGKILL) is taken over.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError } from '../protocol/errors.js';

export const LOCK_FILE = 'LOCK';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new TapedeckError('TPD_ARCHIVE_LOCKED', `archive ${dir} is being written by process ${pid}`, { pid });
    }
    if (pid === process.pid) {
      throw new TapedeckError('TPD_ARCHIVE_LOCKED', `archive ${dir} is already open for writing in this process`);
    }
    await unlink(file).catch(() => undefined);
  }
  throw new TapedeckError('TPD_ARCHIVE_LOCKED', `could not take the lock on ${dir}`);
}

export async function releaseLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await unlink(file).catch(() => undefined);
}
