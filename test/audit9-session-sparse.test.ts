/**
 * A session whose filter matches a rare path reads on (a step, a burst, paced play) or steps
 * back over every batch between two matching ones; over cached blocks that was one piece of
 * work as long as the cache (up to decodedCacheUpdatesMax updates), holding the server. The
 * cursor now yields every STORAGE_LIMITS.passedBatchesPerYield batches it passes: /health is
 * answered while such a read runs, and the read lands where it did.
 *
 * The server runs in this process, so the tests see the event loop it runs on. What decides
 * is counted, not raced: a chain of setImmediate counts the loop's turns, and each block the
 * walk reads (archive.readBlock for steps, archive.payloadOf for play by columns, observed
 * and passed through unchanged) is stamped with the turn it was read at. A walk that lets
 * the loop run between its blocks reads no two at the same turn; one that holds it does,
 * whatever the machine's speed. For steps, /health is asked only once the walk is past its
 * first block: a walk that holds the loop cannot answer it before the step.
 *
 * AUDIT9_SPARSE_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, Update } from '../protocol/value.js';
import type { Archive } from '../storage/index.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const BATCHES = 400_000;
const T0 = 1_700_000_000_000_000;
const STEP_US = 10_000;

const seed = scheduleSeed('AUDIT9_SPARSE_SEED', 'audit9-session-sparse');
const rand = rng(seed);
/** The batches holding /rare: a few near each end. */
const rare = [0, 1 + Math.floor(rand() * 5), BATCHES - 2 - Math.floor(rand() * 5), BATCHES - 1];

let server: TestServer;
beforeAll(async () => {
  const batches: Batch[] = Array.from({ length: BATCHES }, (_, i) => ({ ts: T0 + i * STEP_US, updates: [[`/p/${i % 3}`, i] as Update, ...(rare.includes(i) ? [['/rare', i] as Update] : [])] }));
  server = await startServer(batches);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/**
 * Stamps each call of the archive's `method` with the event loop's turn (a setImmediate
 * chain's count) until stop(); the calls go through unchanged. `second` resolves at the
 * second call.
 */
function blockTurns(a: Archive, method: 'readBlock' | 'payloadOf'): { second: Promise<void>; stop(): number[] } {
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const at: number[] = [];
  let secondCall = (): void => undefined;
  const second = new Promise<void>((resolve) => (secondCall = resolve));
  const original = a[method] as (...args: unknown[]) => unknown;
  Object.defineProperty(a, method, {
    configurable: true,
    value: (...args: unknown[]): unknown => {
      at.push(turns);
      if (at.length === 2) secondCall();
      return original.apply(a, args);
    },
  });
  return {
    second,
    stop() {
      ticking = false;
      Reflect.deleteProperty(a, method);
      return at;
    },
  };
}

/** Pairs of consecutive block reads made at the same turn of the event loop (none when the walk yields between blocks). */
function heldPairs(at: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < at.length; i++) if (at[i] === at[i - 1]) n++;
  return n;
}

/**
 * Runs `change` on the session and asks /health once the change's walk has read its second
 * block; answers which was answered first, the change's answer, and the turns its blocks
 * were read at.
 */
async function raced(id: string, change: Record<string, unknown>): Promise<{ order: string[]; posUs: unknown; turns: number[] }> {
  const order: string[] = [];
  const probe = blockTurns(server.archive, 'readBlock');
  const patched = api(server.url, 'PATCH', `/api/v1/sessions/${id}`, change).then((r) => {
    order.push('change');
    return r;
  });
  await Promise.race([probe.second, patched]);
  const health = fetch(`${server.url}/health`).then((r) => {
    order.push('health');
    return r.status;
  });
  const [res, status] = await Promise.all([patched, health]);
  const turns = probe.stop();
  expect(res.status).toBe(200);
  expect(status).toBe(200);
  return { order, posUs: res.body.controls.posUs, turns };
}

describe('a session whose filter matches a rare path', () => {
  it('steps forward and back across the batches between: /health is answered meanwhile, and each step lands on the next rare batch', async () => {
    const id = (await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', filter: ['/rare'] })).body.id as string;
    // Every block read once (the whole archive fits the block cache): the reads below need no I/O.
    const warm = (await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause' })).body.id as string;
    for (let k = 0; k < BATCHES / 100_000; k++) await api(server.url, 'PATCH', `/api/v1/sessions/${warm}`, { pos: '+100000' });
    await api(server.url, 'DELETE', `/api/v1/sessions/${warm}`);
    const at = (i: number): number => T0 + (rare[i] as number) * STEP_US;
    expect((await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { pos: '+2' })).body.controls.posUs).toBe(at(1));
    const forward = await raced(id, { pos: '+1' });
    expect(forward.posUs, `seed ${seed}`).toBe(at(2));
    // The walk passes most of the archive's blocks (all cached: no I/O lets the loop run).
    expect(forward.turns.length, `seed ${seed}`).toBeGreaterThan(10);
    expect(heldPairs(forward.turns), `seed ${seed}: blocks read at turns ${forward.turns.join(',')}`).toBe(0);
    expect(forward.order, `seed ${seed}`).toEqual(['health', 'change']);
    const back = await raced(id, { pos: '-1' });
    expect(back.posUs, `seed ${seed}`).toBe(at(1));
    expect(back.turns.length, `seed ${seed}`).toBeGreaterThan(10);
    expect(heldPairs(back.turns), `seed ${seed}: blocks read at turns ${back.turns.join(',')}`).toBe(0);
    expect(back.order, `seed ${seed}`).toEqual(['health', 'change']);
    await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
  }, 60_000);

  it('plays at unlimited speed across the blocks between: /health is answered meanwhile, and the next rare batch comes', async () => {
    const id = (await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', filter: ['/rare'], pos: T0 + (rare[1] as number) * STEP_US })).body.id as string;
    const ws = await TestWs.open(`${server.url}/api/v1/sessions/${id}/stream?coalesce=true`);
    await ws.next((f) => f.type === 'controls');
    const order: string[] = [];
    const batch = ws.batches(1, 30_000).then((b) => {
      order.push('batch');
      return b;
    });
    // Play reads frames of consecutive blocks together (cursorReadAheadBytes): only the reads of
    // those spans wait for I/O; the blocks within one are passed without any.
    const probe = blockTurns(server.archive, 'payloadOf');
    expect((await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { state: 'play', speed: 'unlimited' })).status).toBe(200);
    const health = await fetch(`${server.url}/health`);
    order.push('health');
    expect(health.status).toBe(200);
    expect((await batch)[0]?.ts, `seed ${seed}`).toBe(T0 + (rare[2] as number) * STEP_US);
    const turns = probe.stop();
    expect(turns.length, `seed ${seed}`).toBeGreaterThan(10);
    expect(heldPairs(turns), `seed ${seed}: blocks read at turns ${turns.join(',')}`).toBe(0);
    expect(order, `seed ${seed}`).toEqual(['health', 'batch']);
    ws.close();
    await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
  }, 60_000);
});
