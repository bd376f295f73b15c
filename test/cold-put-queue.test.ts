/**
 * The put queue's bound (COLD_LIMITS.putQueueMax): rotations past it are not queued but
 * counted (putsDeferred), stay pending and local, and the next check queues them.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { COLD_LIMITS, ColdStorage, type ColdEvent } from '../storage/cold.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
const running: Array<{ a: Archive; c: ColdStorage }> = [];

afterEach(async () => {
  for (const { a, c } of running.splice(0)) {
    await c.stop();
    await a.close();
  }
});

/** Resolves once `n` more puts ended well; rejects on a failed one. */
function shipped(c: ColdStorage, n: number): Promise<void> {
  return new Promise((res, rej) => {
    let left = n;
    const on = (e: ColdEvent): void => {
      if (e.type !== 'put') return;
      if (!e.ok) rej(new Error(`put of ${e.name} failed: ${e.error ?? ''}`));
      if (--left > 0) return;
      c.off('event', on);
      res();
    };
    c.on('event', on);
  });
}

describe('put queue', () => {
  it('defers rotations past putQueueMax, keeps them local and pending, and ships them at the next check', async () => {
    const base = await tmpDir('tapedeck-putq-');
    const cold = join(base, 'cold');
    const gate = join(base, 'gate');
    await mkdir(cold);
    // The first put waits on the gate: every later rotation queues behind it.
    execFileSync('mkfifo', [gate]);
    const a = await Archive.open(join(base, 'archive'), { flushIntervalMs: 0, rotateIntervalMs: 0 });
    const c = await ColdStorage.start(a, { hooks: { put: { cmd: join(FIX, 'put-gated.sh'), args: [cold, gate] } }, checkIntervalMs: 0, listIntervalMs: 0 });
    running.push({ a, c });
    const max = COLD_LIMITS.putQueueMax;
    const rotations = max + 3;
    for (let i = 0; i < rotations; i++) {
      a.writer!.append([['/a', i]], T0 + i * 1000);
      await a.writer!.rotate();
    }
    expect(c.stats).toMatchObject({ putQueue: max, putsDeferred: 3, putsPending: rotations });

    const queuedShipped = shipped(c, max);
    await writeFile(gate, 'go\n');
    await queuedShipped;
    // The deferred files were never queued: they wait, local, for the next check.
    expect(c.stats).toMatchObject({ putQueue: 0, putsDeferred: 3, putsPending: 3 });
    const pending = a.files.filter((f) => f.name !== 'current' && c.putStatus(f.name)?.status !== 'done');
    expect(pending.map((f) => f.location)).toEqual(['local', 'local', 'local']);

    const restShipped = shipped(c, 3);
    await c.check();
    await restShipped;
    expect(c.stats).toMatchObject({ putQueue: 0, putsPending: 0 });
    expect((await readdir(cold)).sort()).toEqual(a.files.filter((f) => f.name !== 'current').map((f) => f.name).sort());
  }, 120_000);
});
