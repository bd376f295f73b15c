import { describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HookRunner, HOOK_DEFAULTS, HOOK_LIMITS, type HookError, type HookPolicy } from '../storage/hooks.js';
import type { Logger } from '../storage/archive.js';
import { environHolds, HOOK_RUN_ENV, newRunMarker } from '../storage/hook-strays.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const FIX = resolve('test/fixtures/hooks');
const quick: HookPolicy = { timeoutMs: 5_000, attempts: 1, backoffInitialMs: 10, backoffMaxMs: 40 };
const silent: Logger = { warn() {}, info() {}, error() {} };

function runner(cmd: string, args: string[], policy: Partial<HookPolicy> = {}, logger = silent): HookRunner {
  const p = { ...quick, ...policy };
  return new HookRunner({ put: { cmd: join(FIX, cmd), args } }, { put: p, get: p, list: p }, logger);
}

/** A process's state letter from /proc (S sleeping, Z zombie, ...), or 'gone'. */
async function procState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined ? 'gone' : (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] as string);
}

describe('hook runner', () => {
  it('passes arguments as a vector, never through a shell', async () => {
    const tricky = ['a b', '$(touch pwned)', '; rm -rf /', "'quoted'", '*'];
    const h = runner('echo-args.sh', [tricky[0] as string]);
    const { stdout } = await h.run('put', tricky.slice(1));
    expect(stdout.split('\n').slice(0, -1)).toEqual(tricky);
    expect(h.stats.runs.put).toEqual({ ok: 1, failed: 0, timedOut: 0 });
  });

  it('retries a failing hook with backoff and reports each failure with exit status and stderr', async () => {
    const base = await tmpDir();
    await mkdir(join(base, 'cold'));
    const src = join(base, 'f');
    await writeFile(src, 'payload');
    const failures: Array<[number, number | null, string]> = [];
    const warnings: object[] = [];
    const h = runner('put-flaky.sh', [join(base, 'cold')], { attempts: 3 }, { ...silent, warn: (o: object) => void warnings.push(o) });
    await h.run('put', [src, 'x'], (e, attempt) => failures.push([attempt, e.exitCode, e.stderr.trim()]));
    expect(failures).toEqual([[1, 3, 'cold storage unreachable (attempt 1)'], [2, 3, 'cold storage unreachable (attempt 2)']]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ hook: 'put', exitCode: 3, attempt: 1 });
    expect(await readFile(join(base, 'cold', 'x'), 'utf8')).toBe('payload');
    expect(h.stats.runs.put).toEqual({ ok: 1, failed: 2, timedOut: 0 });
    expect(h.stats.failures.put).toBe(0);
  });

  it('gives up after its attempts with the last exit status and stderr in the error', async () => {
    const h = runner('fail.sh', [], { attempts: 2 });
    const err = (await h.run('put', []).catch((e: unknown) => e)) as HookError;
    expect(err.exitCode).toBe(7);
    expect(err.message).toMatch(/fail\.sh exited with status 7: bucket tapedeck-cold does not exist/);
    expect(h.stats.runs.put.failed).toBe(2);
    expect(h.stats.failures.put).toBe(1);
  });

  it('kills a hook that outlives its timeout, with the children it started', async () => {
    const dir = await tmpDir();
    const pidFile = join(dir, 'child.pid');
    const h = runner('hang.sh', [pidFile], { timeoutMs: 300 });
    const started = Date.now();
    const err = (await h.run('put', []).catch((e: unknown) => e)) as HookError;
    expect(err.message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(h.stats.runs.put.timedOut).toBe(1);
    const child = Number(await readFile(pidFile, 'utf8'));
    // Killed with its group: gone, or a zombie until its new parent reaps it; never sleeping.
    expect(await procState(child)).toMatch(/^(Z|gone)$/);
  });

  it('ends a run when the hook exits, killing the children it left in its process group', async () => {
    const dir = await tmpDir();
    const pidFile = join(dir, 'child.pid');
    // The child holds the hook's stdout and stderr: the run used to wait for it until the timeout.
    const h = runner('background-child.sh', [pidFile], { timeoutMs: 60_000 });
    const { stdout } = await h.run('put', []);
    expect(stdout).toBe('done\n');
    expect(h.stats.runs.put).toEqual({ ok: 1, failed: 0, timedOut: 0 });
    const child = Number(await readFile(pidFile, 'utf8'));
    // SIGKILL was sent when the hook exited; the kernel ends it a moment later.
    await until(async () => /^(Z|gone)$/.test(await procState(child)), 10_000, 'the background child killed');
  });

  it('kills a daemon the hook started out of its group (setsid), found by the run marker in its environment', async () => {
    const dir = await tmpDir();
    const pidFile = join(dir, 'daemon.pid');
    const warnings: object[] = [];
    const h = runner('daemon-child.sh', [pidFile], { timeoutMs: 60_000 }, { ...silent, warn: (o: object) => void warnings.push(o) });
    let daemon = 0;
    try {
      // Before: never settled (the group kill at the timeout does not reach another session);
      // then the run ended at outputAfterExitMs with the daemon left running.
      const { stdout } = await h.run('put', []);
      expect(stdout).toBe('done\n');
      expect(h.stats.runs.put).toEqual({ ok: 1, failed: 0, timedOut: 0 });
      daemon = Number(await readFile(pidFile, 'utf8'));
      await until(async () => /^(Z|gone)$/.test(await procState(daemon)), 10_000, 'the daemon killed');
      await until(() => warnings.length > 0, 10_000, 'the kill logged');
      expect(warnings).toContainEqual(expect.objectContaining({ hook: 'put', killed: 1 }));
    } finally {
      if (daemon > 0) process.kill(daemon, 'SIGKILL');
    }
  });

  it('kills a daemon and the child it started, both out of the hook\'s group', async () => {
    const dir = await tmpDir();
    const pidFiles = [join(dir, 'daemon.pid'), join(dir, 'child.pid')];
    const warnings: object[] = [];
    const h = runner('daemon-tree.sh', pidFiles, { timeoutMs: 60_000 }, { ...silent, warn: (o: object) => void warnings.push(o) });
    const pids: number[] = [];
    try {
      expect((await h.run('put', [])).stdout).toBe('done\n');
      for (const f of pidFiles) pids.push(Number(await readFile(f, 'utf8')));
      for (const pid of pids) await until(async () => /^(Z|gone)$/.test(await procState(pid)), 10_000, `process ${pid} killed`);
      await until(() => warnings.length > 0, 10_000, 'the kill logged');
      expect(warnings).toContainEqual(expect.objectContaining({ hook: 'put', killed: 2 }));
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
  });

  it('ends a run when the hook exits even if a daemon with an emptied environment holds the output open', async () => {
    const dir = await tmpDir();
    const pidFile = join(dir, 'daemon.pid');
    const warnings: object[] = [];
    const h = runner('daemon-clean-env.sh', [pidFile], { timeoutMs: 60_000 }, { ...silent, warn: (o: object) => void warnings.push(o) });
    try {
      // Out of reach of the marker (documented): the run ends once its output is cut.
      const { stdout } = await h.run('put', []);
      expect(stdout).toBe('done\n');
      expect(h.stats.runs.put).toEqual({ ok: 1, failed: 0, timedOut: 0 });
      expect(warnings).toContainEqual(expect.objectContaining({ hook: 'put', outputHeldAfterExitMs: HOOK_LIMITS.outputAfterExitMs }));
    } finally {
      const daemon = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
      if (daemon > 0) process.kill(daemon, 'SIGKILL');
    }
  });

  it('fails a hook that prints more than the output limit', async () => {
    const h = runner('noisy.sh', []);
    await expect(h.run('put', [])).rejects.toThrow(`printed more than ${HOOK_LIMITS.stdoutBytesMax} bytes`);
  });

  it('reports a program that cannot be started', async () => {
    const h = new HookRunner({ get: { cmd: '/nonexistent/tapedeck-hook', args: [] } }, { put: quick, get: quick, list: quick }, silent);
    await expect(h.run('get', [])).rejects.toThrow(/could not start: .*ENOENT/);
    expect(h.has('put')).toBe(false);
    await expect(h.run('put', [])).rejects.toThrow('no put hook is configured');
    expect(HOOK_DEFAULTS.attempts).toBeGreaterThan(1);
  });
});

describe('run markers in an environment', () => {
  const env = (...entries: string[]): Buffer => Buffer.from(entries.map((e) => `${e}\0`).join(''));
  it('match a whole entry only', () => {
    const entry = Buffer.from(`${HOOK_RUN_ENV}=12.3.abc`);
    expect(environHolds(env('A=1', `${HOOK_RUN_ENV}=12.3.abc`, 'B=2'), entry)).toBe(true);
    expect(environHolds(env(`${HOOK_RUN_ENV}=12.3.abc`), entry)).toBe(true);
    expect(environHolds(Buffer.from(`${HOOK_RUN_ENV}=12.3.abc`), entry)).toBe(true);
    expect(environHolds(env(`${HOOK_RUN_ENV}=12.3.abcd`), entry)).toBe(false);
    expect(environHolds(env(`X${HOOK_RUN_ENV}=12.3.abc`), entry)).toBe(false);
    expect(environHolds(env(`OTHER=${HOOK_RUN_ENV}=12.3.abc`), entry)).toBe(false);
    expect(environHolds(env(`X${HOOK_RUN_ENV}=12.3.abc`, `${HOOK_RUN_ENV}=12.3.abc`), entry)).toBe(true);
    expect(environHolds(Buffer.alloc(0), entry)).toBe(false);
  });
  it('are new for every run', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newRunMarker()));
    expect(seen.size).toBe(1000);
  });
});
