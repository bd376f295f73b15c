/**
 * One writer per archive directory: a LOCK file holding the writer's pid, created with
 * O_EXCL. A lock left by a process that no longer runs (crash, SIGKILL) is taken over, and
 * so is one whose pid now names another process: a restarted container gives the new
 * server the pid the killed one had (often 1), and a lock naming our own pid that this
 * process did not take is such a leftover, not a second writer; on Linux, a live process
 * that started after the lock was last written cannot have written it (pid reused). Within
 * a process, the directories it holds are remembered here. The file holds the pid alone,
 * as it always did, so that every Tapedeck reads every lock the same way.
 */
import { link, readFile, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TapedeckError } from '../protocol/errors.js';

export const LOCK_FILE = 'LOCK';

/** Directories (real paths) whose lock this process holds. */
const held = new Set<string>();

/** A process's start is compared with the lock's mtime with this much slack (clock ticks, rounding). */
const START_SLACK_MS = 2000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start in clock ticks since boot (/proc/<pid>/stat field 22). */
function startTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (the command) is in parentheses and may hold spaces: count from the last ')'.
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

/** When a process started (epoch ms); undefined where /proc cannot tell. */
function startedMs(pid: number): number | undefined {
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // Clock ticks a second (CLK_TCK, 100 nearly everywhere), from this process's own start.
    const sinceBootS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - process.uptime();
    const measured = startTicks(process.pid) / sinceBootS;
    const hz = [100, 250, 300, 1000].reduce((best, x) => (Math.abs(x - measured) < Math.abs(best - measured) ? x : best));
    const ticks = startTicks(pid);
    if (!Number.isFinite(btime) || !Number.isFinite(ticks) || !(sinceBootS > 0)) return undefined;
    return btime * 1000 + (ticks * 1000) / hz;
  } catch {
    return undefined;
  }
}

/** Whether the pid in the lock is a running process that may have written it. */
async function heldByLive(file: string, pid: number): Promise<boolean> {
  if (!alive(pid)) return false;
  const written = await stat(file).then((s) => s.mtimeMs, () => undefined);
  const started = startedMs(pid);
  return written === undefined || started === undefined || started <= written + START_SLACK_MS;
}

export async function acquireLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  const key = await realpath(dir);
  if (held.has(key)) throw new TapedeckError('TPD_ARCHIVE_LOCKED', `archive ${dir} is already open for writing in this process`);
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a name of our own, then linked into place (fails if LOCK exists):
    // another process never sees a LOCK without its pid, and so never takes a fresh one for garbage.
    const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
    try {
      await writeFile(tmp, String(process.pid));
      await link(tmp, file).catch(async (err: NodeJS.ErrnoException) => {
        // A file system without hard links: create it exclusively and write it (not atomic).
        if (err.code !== 'EPERM' && err.code !== 'ENOTSUP' && err.code !== 'EOPNOTSUPP' && err.code !== 'ENOSYS') throw err;
        await writeFile(file, String(process.pid), { flag: 'wx' });
      });
      held.add(key);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    // Our own pid: this process does not hold the directory (checked above), so a process
    // before it with the same pid left the lock.
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && (await heldByLive(file, pid))) {
      throw new TapedeckError('TPD_ARCHIVE_LOCKED', `archive ${dir} is being written by process ${pid}`, { pid });
    }
    await unlink(file).catch(() => undefined);
  }
  throw new TapedeckError('TPD_ARCHIVE_LOCKED', `could not take the lock on ${dir}`);
}

export async function releaseLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  const key = await realpath(dir).catch(() => dir);
  if (!held.delete(key)) return;
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await unlink(file).catch(() => undefined);
}
