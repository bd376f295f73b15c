/**
 * Runs archive hooks (`archive_cmds` put, get, list): an argument vector from the config
 * plus the arguments Tapedeck appends, started as execFile does (an argument vector, never
 * through a shell; spawn is used directly because execFile cannot start a process group),
 * with a timeout, bounded output capture and retries with exponential backoff and jitter.
 *
 * A hook runs in its own process group, so a timeout kills the whole group: a shell script
 * that hangs in a child (`sleep`) cannot keep its pipes, and so its caller, alive. What it
 * starts out of its group (a setsid daemon) is found by the run's marker in its environment
 * and killed too (storage/hook-strays.ts).
 * Every run is counted in `stats` (by hook and result) and every failure is logged with
 * the exit status and the tail of stderr.
 */
import { spawn } from 'node:child_process';
import type { Logger } from './archive.js';
import { HOOK_RUN_ENV, killMarked, newRunMarker } from './hook-strays.js';

export type HookName = 'put' | 'get' | 'list';

export interface HookCommand {
  cmd: string;
  args: readonly string[];
}

export interface HookPolicy {
  /** One run is killed (with its process group) after this long. */
  timeoutMs: number;
  /** Runs per call, the first included; 1 = no retry. */
  attempts: number;
  /** Delay before the first retry; doubles per failure, random in [d/2, d]. */
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export const HOOK_DEFAULTS: HookPolicy = {
  timeoutMs: 600_000,
  attempts: 5,
  backoffInitialMs: 1_000,
  backoffMaxMs: 60_000,
};

/**
 * get: a session or query waits on it, so it gives up sooner than put (which runs in the
 * background): at most about attempts x timeoutMs plus the backoff before a clear error.
 */
export const HOOK_GET_DEFAULTS = { timeoutMs: 120_000, attempts: 3 } as const;

/** The list hook only prints names: its runs get a shorter timeout than put and get. */
export const HOOK_LIST_TIMEOUT_MS = 60_000;

export const HOOK_LIMITS = {
  /** stdout kept from one run (list prints one ~28-byte name per line: ~150 000 names). */
  stdoutBytesMax: 4 * 1024 * 1024,
  /** stderr kept from one run, for the log and the API (the last bytes are kept). */
  stderrBytesMax: 4 * 1024,
  /**
   * How long a run still reads the hook's stdout and stderr once the hook has exited. A run
   * ends when the hook exits, not when its output closes: a daemon it started in a session
   * of its own (setsid) holds the pipes open for as long as it lives, out of reach of the
   * group kill, and the run never ended. Past this the pipes are cut (logged).
   */
  outputAfterExitMs: 1000,
  /**
   * Looks for a run's processes left out of its group (storage/hook-strays.ts) once it ends:
   * each look after the first finds what the killed ones started meanwhile.
   */
  strayKillPasses: 3,
} as const;

export interface HookResult {
  stdout: string;
}

export class HookError extends Error {
  constructor(
    readonly hook: HookName,
    message: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderr: string,
    /** What went wrong without the command or its output (may name paths): for clients. */
    readonly summary: string = message,
  ) {
    super(message);
    this.name = 'HookError';
  }
}

export interface HookStats {
  /** Runs (single attempts) by hook and result. */
  runs: Record<HookName, { ok: number; failed: number; timedOut: number }>;
  /** Calls that failed after their last attempt. */
  failures: Record<HookName, number>;
}

function emptyStats(): HookStats {
  const r = (): { ok: number; failed: number; timedOut: number } => ({ ok: 0, failed: 0, timedOut: 0 });
  return { runs: { put: r(), get: r(), list: r() }, failures: { put: 0, get: 0, list: 0 } };
}

export class HookRunner {
  readonly stats: HookStats = emptyStats();
  /** The running hooks' pids, with their runs' markers. */
  private readonly running = new Map<number, string>();
  private stopped = false;
  private readonly wakeups = new Set<() => void>();

  constructor(
    private readonly commands: Partial<Record<HookName, HookCommand | null>>,
    private readonly policy: Record<HookName, HookPolicy>,
    private readonly logger: Logger,
  ) {}

  has(hook: HookName): boolean {
    return !!this.commands[hook];
  }

  /**
   * Runs a hook with its retries; rejects with the last HookError once attempts run out.
   * `onFailure` hears about every failed attempt (put status shows retries as they happen).
   */
  async run(hook: HookName, extraArgs: readonly string[], onFailure?: (err: HookError, attempt: number) => void): Promise<HookResult> {
    const p = this.policy[hook];
    let delayMs = p.backoffInitialMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(hook, extraArgs);
      } catch (err) {
        const e = err as HookError;
        const last = attempt >= p.attempts || this.stopped;
        onFailure?.(e, attempt);
        this.logger.warn({ hook, args: extraArgs, attempt, attempts: p.attempts, exitCode: e.exitCode, signal: e.signal, stderr: e.stderr }, `archive hook ${hook} failed: ${e.message}${last ? '' : '; retrying'}`);
        if (last) {
          this.stats.failures[hook]++;
          throw e;
        }
        await this.pause(delayMs / 2 + Math.random() * (delayMs / 2));
        delayMs = Math.min(delayMs * 2, p.backoffMaxMs);
      }
    }
  }

  /** One run, no retry. */
  runOnce(hook: HookName, extraArgs: readonly string[]): Promise<HookResult> {
    const c = this.commands[hook];
    if (!c) return Promise.reject(new HookError(hook, `no ${hook} hook is configured`, null, null, ''));
    if (this.stopped) return Promise.reject(new HookError(hook, 'hooks are stopped', null, null, ''));
    const timeoutMs = this.policy[hook].timeoutMs;
    return new Promise((resolve, reject) => {
      let why: string | undefined;
      let timedOut = false;
      const out: Buffer[] = [];
      let outBytes = 0;
      let err = Buffer.alloc(0);
      const marker = newRunMarker();
      const child = spawn(c.cmd, [...c.args, ...extraArgs], { shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [HOOK_RUN_ENV]: marker } });
      const pid = child.pid;
      if (pid !== undefined) this.running.set(pid, marker);
      const timer = setTimeout(() => {
        if (why !== undefined) return;
        why = `timed out after ${timeoutMs} ms`;
        timedOut = true;
        this.killGroup(pid);
        this.killStrays(hook, marker);
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => {
        outBytes += d.length;
        if (outBytes <= HOOK_LIMITS.stdoutBytesMax) {
          out.push(d);
        } else if (why === undefined) {
          why = `printed more than ${HOOK_LIMITS.stdoutBytesMax} bytes`;
          this.killGroup(pid);
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        err = Buffer.concat([err, d]);
        if (err.length > HOOK_LIMITS.stderrBytesMax) err = err.subarray(err.length - HOOK_LIMITS.stderrBytesMax);
      });
      child.on('error', (e) => {
        why ??= `could not start: ${e.message}`;
      });
      let cut: NodeJS.Timeout | undefined;
      child.on('exit', () => {
        // The hook's own children (a script's `sleep`, an upload sent to the background) must
        // not outlive it, nor hold its output open: the run ends with the hook. Those it
        // started out of its group (a daemon in a session of its own) are found by the marker.
        this.killGroup(pid);
        this.killStrays(hook, marker);
        // What the hook wrote before it exited is at most a pipe's capacity, read in one turn
        // of the poll phase: the cut waits for one more (setImmediate) in case the event loop
        // was held up past the timer.
        cut = setTimeout(() => setImmediate(() => {
          if (closed) return;
          this.logger.warn({ hook, args: extraArgs, outputHeldAfterExitMs: HOOK_LIMITS.outputAfterExitMs }, `archive hook ${hook}: a process it started outside its process group still holds its output; stopped reading it`);
          child.stdout.destroy();
          child.stderr.destroy();
        }), HOOK_LIMITS.outputAfterExitMs);
      });
      let closed = false;
      child.on('close', (code, signal) => {
        closed = true;
        clearTimeout(timer);
        clearTimeout(cut);
        if (pid !== undefined) this.running.delete(pid);
        this.killGroup(pid);
        const stderr = err.toString('utf8');
        if (why === undefined && code === 0) {
          this.stats.runs[hook].ok++;
          resolve({ stdout: Buffer.concat(out).toString('utf8') });
          return;
        }
        if (timedOut) this.stats.runs[hook].timedOut++;
        else this.stats.runs[hook].failed++;
        why ??= code !== null ? `exited with status ${code}` : `killed by ${signal ?? 'a signal'}`;
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        reject(new HookError(hook, `${c.cmd} ${why}${tail ? `: ${tail}` : ''}`, code, signal, stderr, why));
      });
    });
  }

  /** Kills what a run left out of its process group (logged when it finds any). */
  private killStrays(hook: HookName, marker: string): void {
    void killMarked(marker, HOOK_LIMITS.strayKillPasses).then((killed) => {
      if (killed > 0) this.logger.warn({ hook, killed }, `archive hook ${hook}: killed ${killed} process(es) it left running outside its process group`);
    });
  }

  private killGroup(pid: number | undefined): void {
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.wakeups.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeups.add(done);
    });
  }

  /** Kills running hooks and ends pending backoffs (their calls fail). */
  stop(): void {
    this.stopped = true;
    for (const [pid, marker] of this.running) {
      this.killGroup(pid);
      void killMarked(marker, HOOK_LIMITS.strayKillPasses);
    }
    for (const w of [...this.wakeups]) w();
  }
}
