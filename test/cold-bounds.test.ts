/**
 * Cold storage's bounds (COLD_LIMITS), with real hooks held by FIFOs: the put queue's
 * (rotations past putQueueMax are counted as deferred, stay pending and local, and the next
 * check queues them) and the gets at once (fetches past getsConcurrentMax wait for a
 * running get to end, in the order they were asked for).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { COLD_LIMITS, ColdStorage, type ColdEvent } from '../storage/cold.js';
import { heldGets } from './helpers/held-gets.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

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

async function calls(base: string): Promise<string[]> {
  return (await readFile(join(base, 'calls.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('start ') || l.startsWith('end '));
}

describe('get slots', () => {
  it('runs at most getsConcurrentMax gets at once; the next starts when one ends, in the order asked', async () => {
    expect(COLD_LIMITS.getsConcurrentMax).toBe(2);
    const base = await tmpDir('tapedeck-gets-');
    const { a, c, hold } = await heldGets(base);
    running.push({ a, c });
    for (let i = 0; i < 4; i++) {
      a.writer!.append([['/a', i]], T0 + i * 1000);
      const put = new Promise<void>((done) => c.once('event', (e: ColdEvent) => e.type === 'put' && done()));
      await a.writer!.rotate();
      await put;
    }
    await c.check();
    const remote = a.files.filter((f) => f.location === 'remote');
    // Asked for in seq order, one after another: the queue of waiting gets keeps that order.
    const names = remote.map((f) => f.name);
    expect(names).toHaveLength(4);
    for (const n of names) execFileSync('mkfifo', [join(hold, n)]);

    const fetches = remote.map((f) => c.fetch(f));
    await until(async () => (await calls(base)).length >= 2, 30_000, 'two gets started');
    expect(c.stats.fetchesInFlight).toBe(4);
    // Both slots are held: the third get starts only once the first has ended, the fourth
    // once the second has.
    await writeFile(join(hold, names[0] as string), 'go\n');
    await until(async () => (await calls(base)).length >= 4, 30_000, 'the third get started');
    await writeFile(join(hold, names[1] as string), 'go\n');
    await until(async () => (await calls(base)).length >= 6, 30_000, 'the fourth get started');
    const log = await calls(base);
    // The first two start in either order (each removes a stale temporary file first).
    expect(new Set(log.slice(0, 2))).toEqual(new Set([`start ${names[0]}`, `start ${names[1]}`]));
    expect(log.slice(2)).toEqual([`end ${names[0]}`, `start ${names[2]}`, `end ${names[1]}`, `start ${names[3]}`]);
    for (const n of names.slice(2)) await writeFile(join(hold, n), 'go\n');
    await Promise.all(fetches);
    expect(a.files.filter((f) => names.includes(f.name)).map((f) => f.location)).toEqual(['local', 'local', 'local', 'local']);
    expect(c.stats).toMatchObject({ fetched: 4, fetchesInFlight: 0 });
  }, 60_000);
});
