/**
 * SIGKILL of `tapedeck reindex` (the CLI as a process) at seeded instants: while it moves
 * the catalog aside, while it indexes the files into a new one (one transaction a file, bulk
 * checkpoints of the dictionary), while it repairs and closes. After each kill the archive
 * opens without a problem, verify is clean, every batch is read back exactly once with its
 * values, and a writer appends on from where it ended. AUDIT11_KILL_REINDEX_SEED=<n> replays.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { tmpDir } from './helpers/tmp.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { crashBatch } from './helpers/crash-workload.js';
import { tapedeckArgs } from './helpers/built.js';

const KILLS = 8;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024, rotateSizeBytes: 48 * 1024 };

/** Runs `tapedeck reindex dir`, SIGKILLed after `killAfterMs` (never, when undefined); resolves with its wall time. */
function reindex(dir: string, killAfterMs?: number): Promise<{ ms: number; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, tapedeckArgs('reindex', dir), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve({ ms: performance.now() - t0, killed: true });
      else if (code === 0) resolve({ ms: performance.now() - t0, killed: false });
      else reject(new Error(`reindex exited ${code}: ${stderr}`));
    });
  });
}

async function appendBatches(dir: string, from: number, n: number): Promise<void> {
  const a = await Archive.open(dir, STORAGE);
  try {
    for (let i = from; i < from + n; i++) {
      const b = crashBatch(i);
      a.writer!.append(b.updates, b.ts);
      if (i % 100 === 99) await a.writer!.flush();
    }
    await a.writer!.flush();
  } finally {
    await a.close();
  }
}

describe('SIGKILL during tapedeck reindex', () => {
  it('leaves an archive that opens clean, verifies clean and holds every batch exactly once', async () => {
    const seed = scheduleSeed('AUDIT11_KILL_REINDEX_SEED', 'audit11-storage-kill-reindex');
    const r = rng(seed);
    const dir = await tmpDir('tapedeck-a11-kill-reindex-');
    let total = 3000;
    await appendBatches(dir, 0, total);
    const full = await reindex(dir);
    expect(full.killed).toBe(false);
    const asides = async (): Promise<number> => (await readdir(dir)).filter((n) => /^catalog\.sqlite\.old-\d+$/.test(n)).length;
    let reached = 0;
    for (let k = 0; k < KILLS; k++) {
      const before = await asides();
      const where = `seed ${seed}, kill ${k}`;
      // Most of the wall time is the process starting: the kills land mostly in its second half.
      await reindex(dir, Math.floor(full.ms * (0.4 + 0.6 * r())));
      if ((await asides()) > before) reached++;
      const report = await verifyArchive(dir);
      expect(report.problems, where).toEqual([]);
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(a.problems, where).toEqual([]);
        const c = a.cursor();
        let n = 0;
        for (let b = await c.next(); b; b = await c.next(), n++) {
          const want = crashBatch(n);
          if (b.ts !== want.ts || JSON.stringify(b.updates) !== JSON.stringify(want.updates)) throw new Error(`${where}: batch ${n} differs from what was written`);
        }
        expect(n, where).toBe(total);
      } finally {
        await a.close();
      }
      await appendBatches(dir, total, 50);
      total += 50;
    }
    expect(reached, `seed ${seed}: no kill landed after the catalog was moved aside`).toBeGreaterThan(0);
  }, 60_000);
});
