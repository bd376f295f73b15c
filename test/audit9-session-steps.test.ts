/**
 * Steps are long work (a step of seekStepsMax batches reads every batch it passes) and a
 * stream may send CONTROLS_PER_SECOND_MAX control frames a second, which arrive in one read:
 * the session applies them one change at a time and a step in slices of stepBatchesPerYield
 * batches, with the event loop's turn between, so /health and every other client are served
 * while they run. Before, all of them ran in one piece: fifty steps of 100 000 batches over
 * cached blocks held the server about 8 s. Where each step lands is unchanged.
 *
 * AUDIT9_STEPS_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import type { Batch, Update } from '../protocol/value.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { CONTROLS_PER_SECOND_MAX } from '../server/routes/sessions.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const BATCHES = 200_000;
const T0 = 1_700_000_000_000_000;
const STEP_US = 10_000;

let server: TestServer;
beforeAll(async () => {
  const batches: Batch[] = Array.from({ length: BATCHES }, (_, i) => ({ ts: T0 + i * STEP_US, updates: [[`/p/${i % 3}`, i] as Update] }));
  server = await startServer(batches);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('a stream sending as many long steps as it may at once', () => {
  it('is served one step at a time: /health answers before the last of them lands, and each lands where it should', async () => {
    const seed = scheduleSeed('AUDIT9_STEPS_SEED', 'audit9-session-steps');
    const rand = rng(seed);
    const id = (await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause' })).body.id as string;
    const ws = await TestWs.open(`${server.url}/api/v1/sessions/${id}/stream`);
    await ws.next((f) => f.type === 'controls');
    // Every block read once, so the steps below run over cached blocks (no read yields).
    for (const pos of ['+100000', '+100000', 'beginning']) await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { pos });
    // The stream's bucket is full again after a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const max = PROTOCOL_LIMITS.seekStepsMax;
    const steps = Array.from({ length: CONTROLS_PER_SECOND_MAX - 1 }, (_, k) => (k % 2 === 0 ? 1 : -1) * (max - Math.floor(rand() * (max / 4))));
    // The index the steps land on (-1: before the first batch).
    const at = steps.reduce((p, s) => Math.max(-1, Math.min(BATCHES - 1, p + s)), -1);
    // All in one write, so the server reads them in one piece; the last frame marks the end.
    const raw = (ws.ws as unknown as { _socket: Socket })._socket;
    raw.cork();
    for (const s of steps) ws.send({ type: 'control', set: { pos: s > 0 ? `+${s}` : String(s) } });
    ws.send({ type: 'control', set: { speed: 7 } });
    raw.uncork();
    const order: string[] = [];
    const health = fetch(`${server.url}/health`).then((r) => {
      order.push('health');
      return r.status;
    });
    const last = await ws.next((f) => f.type === 'controls' && (f.controls as { speed: unknown }).speed === 7, 60_000);
    order.push('steps done');
    expect(await health).toBe(200);
    expect(order, `seed ${seed}`).toEqual(['health', 'steps done']);
    expect((last.controls as { posUs: unknown }).posUs, `seed ${seed}`).toBe(at < 0 ? null : T0 + at * STEP_US);
    ws.close();
    await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
  }, 60_000);

  it('land where one step of the whole length lands, with a filter and slices of a few batches', async () => {
    const seed = scheduleSeed('AUDIT9_STEPS_SEED', 'audit9-session-steps sliced');
    const rand = rng(seed);
    const n = 300;
    // /v/k is in some batches only: a step counts the batches the filter shows.
    const batches: Batch[] = Array.from({ length: n }, (_, i) => ({ ts: T0 + i * STEP_US, updates: [[`/p/${i % 3}`, i] as Update, ...(rand() < 0.3 ? [[`/v/${i % 2}`, i] as Update] : [])] }));
    const shown = batches.filter((b) => b.updates.some(([p]) => p.startsWith('/v/'))).map((b) => b.ts);
    const sliced = await startServer(batches, { playback: { stepBatchesPerYield: 1 + Math.floor(rand() * 5) } });
    try {
      const id = (await api(sliced.url, 'POST', '/api/v1/sessions', { state: 'pause', filter: ['/v/*'] })).body.id as string;
      // The index in `shown` of the position (-1: before the first shown batch).
      let at = -1;
      for (let k = 0; k < 40; k++) {
        const step = (rand() < 0.5 ? -1 : 1) * (1 + Math.floor(rand() * 30));
        const res = await api(sliced.url, 'PATCH', `/api/v1/sessions/${id}`, { pos: step > 0 ? `+${step}` : String(step) });
        expect(res.status).toBe(200);
        at = Math.max(-1, Math.min(shown.length - 1, at + step));
        expect(res.body.controls.posUs, `seed ${seed}, step ${k}: ${step}`).toBe(at < 0 ? null : shown[at]);
      }
    } finally {
      await sliced.close();
    }
  });
});
