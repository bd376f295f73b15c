import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { crashBatch } from './helpers/crash-workload.js';
import { childArgs } from './helpers/built.js';

const KILLS = 36;

interface RunResult {
  durable: number;
  ready: boolean;
}

/** Starts the writer child, SIGKILLs it after `delayMs`, returns what it promised. */
function runAndKill(dir: string, delayMs: number, afterReady: boolean): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, childArgs('crash-child', dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    const res: RunResult = { durable: 0, ready: false };
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => p.kill('SIGKILL'), delayMs);
    };
    createInterface({ input: p.stdout }).on('line', (line) => {
      const [tag, n] = line.split(' ');
      if (tag === 'READY') {
        res.ready = true;
        if (afterReady) arm();
      } else if (tag === 'F') {
        res.durable = Number(n);
      }
    });
    if (!afterReady) arm();
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(res);
      else reject(new Error(`child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

describe('crash safety', () => {
  it(`survives ${KILLS} SIGKILLs at random moments: opens, verifies clean, keeps every flushed batch`, async () => {
    const dir = await tmpDir('tapedeck-crash-');
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
    console.log(`crash.test seed ${seed} (CRASH_SEED=${seed} to replay)`);
    const r = rng(seed);
    let durableMax = 0;
    let kills = 0;
    let files = 0;
    for (let i = 0; i < KILLS; i++) {
      // Mostly kill while writing; sometimes during startup, repair or file creation.
      const afterReady = r() < 0.8;
      const delay = afterReady ? Math.floor(r() * 250) : Math.floor(r() * 900);
      const res = await runAndKill(dir, delay, afterReady).catch((err: Error) => {
        throw new Error(`seed ${seed}, kill ${i}: ${err.message}`);
      });
      kills++;
      durableMax = Math.max(durableMax, res.durable);

      const report = await verifyArchive(dir);
      expect(report.problems, `seed ${seed}, kill ${i}`).toEqual([]);
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(a.problems, `seed ${seed}, kill ${i}`).toEqual([]);
        const c = a.cursor();
        let n = 0;
        for (let b = await c.next(); b; b = await c.next(), n++) {
          const want = crashBatch(n);
          if (b.ts !== want.ts || JSON.stringify(b.updates) !== JSON.stringify(want.updates)) {
            throw new Error(`seed ${seed}, kill ${i}: batch ${n} differs from what was written`);
          }
        }
        expect(n, `seed ${seed}, kill ${i}: lost flushed batches`).toBeGreaterThanOrEqual(durableMax);
        durableMax = n;
        files = a.files.length;
      } finally {
        await a.close();
      }
    }
    expect(kills).toBe(KILLS);
    expect(durableMax).toBeGreaterThan(0);
    expect(files, `seed ${seed}: kills should also land across rotations`).toBeGreaterThan(1);
  }, 300_000);
});
