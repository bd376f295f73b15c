/**
 * SIGKILL at seeded random moments of a server whose archive rotates, ships each rotated file
 * through the put hook, removes shipped files at once (retention) and fetches them back with
 * get when read: kills land in rotations, puts, evictions, fetches and catalog updates. After
 * each kill the archive opens and verifies clean, and after the last a server reads every
 * durable batch back exactly, in order, fetching what was evicted; no half-written file (a
 * `.fetching` copy, `current.tmp`) is ever used.
 *
 * DAMAGE_KILL_COLD_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { verifyArchive } from '../storage/verify.js';
import { crashBatch } from './helpers/crash-workload.js';
import { childArgs } from './helpers/built.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const SEED = scheduleSeed('DAMAGE_KILL_COLD_SEED', 'damage-kill-cold');
const KILLS = 5;
const FIX = resolve('test/fixtures/hooks');

/** Starts the child, SIGKILLs it `delayMs` after it is ready; returns the durable count it printed. */
function runAndKill(dir: string, cold: string, delayMs: number): Promise<number> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, childArgs('damage-cold-child', dir, cold, FIX), { stdio: ['ignore', 'pipe', 'pipe'] });
    let durable = 0;
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: p.stdout }).on('line', (line) => {
      const [tag, n] = line.split(' ');
      if (tag === 'READY') timer = setTimeout(() => p.kill('SIGKILL'), delayMs);
      else if (tag === 'D') durable = Number(n);
    });
    p.on('error', fail);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') done(durable);
      else fail(new Error(`child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

describe('SIGKILL during rotation, put, eviction, fetch and catalog updates', () => {
  it('keeps every durable batch, exactly, local or shipped', async () => {
    const r = rng(SEED);
    const base = await tmpDir('tapedeck-kill-cold-');
    const dir = join(base, 'archive');
    const cold = join(base, 'cold');
    await mkdir(cold);
    let durable = 0;
    for (let k = 0; k < KILLS; k++) {
      const where = `kill ${k} (seed ${SEED})`;
      durable = Math.max(durable, await runAndKill(dir, cold, 100 + Math.floor(r() * 900)));
      const report = await verifyArchive(dir);
      // Files shipped and removed are in the catalog as remote: verify reads what is local.
      expect(report.problems, where).toEqual([]);
    }
    const config = resolveConfig({
      archive_directory: dir,
      archive_cmds: { list: [join(FIX, 'list-dir.sh'), [cold]], get: [join(FIX, 'get-copy.sh'), [cold]] },
      archive_hooks: { attempts: 1, list_interval: null },
      record: { flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [],
    });
    const s = await startServer(config, { logger: pino({ level: 'silent' }) });
    try {
      expect(s.archive.problems, `seed ${SEED}`).toEqual([]);
      const c = s.archive.cursor();
      let n = 0;
      for (let b = await c.next(); b; b = await c.next(), n++) {
        const want = crashBatch(n);
        if (b.ts !== want.ts || JSON.stringify(b.updates) !== JSON.stringify(want.updates)) throw new Error(`seed ${SEED}: batch ${n} differs from what was written`);
      }
      expect(n, `seed ${SEED}: lost durable batches`).toBeGreaterThanOrEqual(durable);
      console.log(JSON.stringify({ seed: SEED, durable, read: n, files: s.archive.files.length, remote: s.archive.files.filter((f) => f.location === 'remote').length, fetched: s.cold!.stats.fetched }));
      expect(s.archive.files.some((f) => f.location === 'remote') || s.cold!.stats.fetched > 0, `seed ${SEED}: nothing was evicted`).toBe(true);
    } finally {
      await s.close();
    }
  }, 120_000);
});
