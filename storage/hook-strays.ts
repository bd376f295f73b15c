/**
 * The processes a hook run leaves behind out of reach of its process group kill: a daemon
 * started in a session of its own (setsid, a double fork) is in another group, and lived on
 * after its run. Every run is started with a marker of its own in its environment
 * (HOOK_RUN_ENV); what a process inherits it keeps, so once the run ends every process of
 * this user whose environment holds the marker is killed (Linux: /proc/<pid>/environ, the
 * environment a process was started with).
 *
 * What is out of reach: a process that starts another program with an emptied environment
 * (`env -i`), and any system without /proc. For those the run still ends when the hook
 * exits (HOOK_LIMITS.outputAfterExitMs); the process is left running.
 */
import { readdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** The environment variable that marks a hook run's processes. */
export const HOOK_RUN_ENV = 'TAPEDECK_HOOK_RUN';

let runs = 0;

/** A marker no other run of any process shares. */
export function newRunMarker(): string {
  return `${process.pid}.${++runs}.${randomBytes(6).toString('hex')}`;
}

/** Whether an environ text (NUL-separated NAME=value entries) holds `entry`. */
export function environHolds(environ: Buffer, entry: Buffer): boolean {
  for (let at = environ.indexOf(entry); at >= 0; at = environ.indexOf(entry, at + 1)) {
    const end = at + entry.length;
    if ((at === 0 || environ[at - 1] === 0) && (end === environ.length || environ[end] === 0)) return true;
  }
  return false;
}

/** The pids of the processes (this one apart) whose environment holds the marker; none without /proc. */
export async function markedProcesses(marker: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const entry = Buffer.from(`${HOOK_RUN_ENV}=${marker}`);
  const found: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    // Another user's process, or one gone meanwhile: not ours.
    const environ = await readFile(`/proc/${name}/environ`).catch(() => undefined);
    if (environ && environHolds(environ, entry)) found.push(Number(name));
  }
  return found;
}

/**
 * Kills (SIGKILL) every process holding the marker, looking again after each kill for what
 * they started meanwhile, at most `passes` times; returns how many were killed.
 */
export async function killMarked(marker: string, passes: number): Promise<number> {
  let killed = 0;
  for (let pass = 0; pass < passes; pass++) {
    const pids = await markedProcesses(marker);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone already
      }
    }
  }
  return killed;
}
