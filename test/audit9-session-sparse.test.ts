/**
 * A session whose filter matches a rare path reads on (a step, a burst, paced play) or steps
 * back over every batch between two matching ones; over cached blocks that was one piece of
 * work as long as the cache (up to decodedCacheUpdatesMax updates), holding the server. The
 * cursor now yields every STORAGE_LIMITS.passedBatchesPerYield batches it passes: /health is
 * answered while such a read runs, and the read lands where it did.
 *
 * AUDIT9_SPARSE_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, Update } from '../protocol/value.js';
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

/** Runs `change` on the session while asking /health; answers which was answered first, and the change's answer. */
async function raced(id: string, change: Record<string, unknown>): Promise<{ order: string[]; posUs: unknown }> {
  const order: string[] = [];
  const patched = api(server.url, 'PATCH', `/api/v1/sessions/${id}`, change).then((r) => {
    order.push('change');
    return r;
  });
  const health = fetch(`${server.url}/health`).then((r) => {
    order.push('health');
    return r.status;
  });
  const [res, status] = await Promise.all([patched, health]);
  expect(res.status).toBe(200);
  expect(status).toBe(200);
  return { order, posUs: res.body.controls.posUs };
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
    expect(forward.order, `seed ${seed}`).toEqual(['health', 'change']);
    const back = await raced(id, { pos: '-1' });
    expect(back.posUs, `seed ${seed}`).toBe(at(1));
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
    expect((await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { state: 'play', speed: 'unlimited' })).status).toBe(200);
    const health = await fetch(`${server.url}/health`);
    order.push('health');
    expect(health.status).toBe(200);
    expect((await batch)[0]?.ts, `seed ${seed}`).toBe(T0 + (rare[2] as number) * STEP_US);
    expect(order, `seed ${seed}`).toEqual(['health', 'batch']);
    ws.close();
    await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
  }, 60_000);
});
