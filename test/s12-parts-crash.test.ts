/**
 * SIGKILL of a writer whose images and path dictionaries are cut into parts (cac490d): the
 * parts of one image or dictionary are consecutive frames, and a kill can land between any
 * two writes. After every kill the archive verifies clean, every flushed batch is there as
 * written, and the state at every sampled time (and at the end) is the batches' state: no
 * image is ever served with parts missing.
 *
 * PARTS_CRASH_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { BlockType } from '../storage/codec/frame.js';
import type { Batch, Value } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { childArgs } from './helpers/built.js';
import { lowerPartBytes, partsBatch } from './helpers/s12-parts-workload.js';

lowerPartBytes();
const KILLS = 16;

/** Starts the writer child, SIGKILLs it `delayMs` after it is ready, returns the batches it said were durable. */
function runAndKill(dir: string, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, childArgs('s12-parts-crash-child', dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    let durable = 0;
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: p.stdout }).on('line', (line) => {
      const [tag, n] = line.split(' ');
      if (tag === 'READY') timer = setTimeout(() => p.kill('SIGKILL'), delayMs);
      else if (tag === 'F') durable = Number(n);
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(durable);
      else reject(new Error(`child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

function key(m: Map<string, Value>): string {
  return JSON.stringify([...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
}

/** Rows of IMAGE frames in a file that share their time with the one before (parts after the first). */
function laterParts(a: Archive): number {
  let n = 0;
  for (const f of a.files) {
    const rows = a.table(f).rows;
    for (let i = 1; i < rows.length; i++) if (rows[i]!.type === BlockType.IMAGE && rows[i - 1]!.type === BlockType.IMAGE && rows[i]!.lastTs === rows[i - 1]!.lastTs) n++;
  }
  return n;
}

describe('SIGKILL while images and dictionaries are written in parts', () => {
  it(`survives ${KILLS} kills: verifies clean, keeps every flushed batch, every state is the batches' state`, async () => {
    const dir = await tmpDir('tapedeck-parts-crash-');
    const seed = Number(process.env.PARTS_CRASH_SEED ?? Date.now() % 100000);
    console.log(`s12-parts-crash seed ${seed} (PARTS_CRASH_SEED=${seed} to replay)`);
    const r = rng(seed);
    let durableMax = 0;
    let parts = 0;
    let files = 0;
    for (let i = 0; i < KILLS; i++) {
      const where = `seed ${seed}, kill ${i}`;
      durableMax = Math.max(durableMax, await runAndKill(dir, Math.floor(r() * 300)));
      expect((await verifyArchive(dir)).problems, where).toEqual([]);
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(a.problems, where).toEqual([]);
        const c = a.cursor();
        const served: Batch[] = [];
        for (let b = await c.next(); b; b = await c.next()) {
          const want = partsBatch(served.length);
          expect(b.ts === want.ts && JSON.stringify(b.updates) === JSON.stringify(want.updates), `${where}: batch ${served.length} differs`).toBe(true);
          served.push(b);
        }
        expect(served.length, `${where}: lost flushed batches`).toBeGreaterThanOrEqual(durableMax);
        durableMax = served.length;
        // The state at each sampled batch's time (what comes before the batch a read there
        // gives next), and at the end.
        const step = Math.max(1, Math.floor(served.length / 40));
        for (let k = 0; k <= served.length; k += k === served.length ? 1 : Math.min(step, served.length - k)) {
          const s = a.cursor();
          await s.seek(k === served.length ? 'end' : { ts: served[k]!.ts });
          const state = await s.state();
          const next = await s.next();
          const truth = new Map<string, Value>();
          for (const b of served) if (next === null || b.ts < next.ts) for (const [p, v] of b.updates) truth.set(p, v);
          expect(key(state), `${where}: state at batch ${k}`).toBe(key(truth));
        }
        parts = laterParts(a);
        files = a.files.length;
      } finally {
        await a.close();
      }
    }
    expect(durableMax).toBeGreaterThan(0);
    expect(parts, `seed ${seed}: images in several parts`).toBeGreaterThan(10);
    expect(files, `seed ${seed}: kills across rotations`).toBeGreaterThan(2);
  }, 300_000);
});
