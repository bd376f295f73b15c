/**
 * A session change or read that fails leaves nothing half done and loses nothing read:
 * - a frame of batches whose read runs into a gone file (a rotated file deleted) sends the
 *   batches read before it, then (since test/audit10-session-gaps.test.ts: the gap is
 *   crossed) the gap, the state after it and the batches after it (a coalesced burst, or play
 *   faster than real time, dropped them and the position stayed before them);
 * - a step that fails at a gone file (back over it: a step forward crosses it) moves
 *   nothing: the position shown and the next step count from where the session was (the
 *   cursor stayed where the failed step had read to);
 * - a change whose range would end before its start (with the session's other bound, not
 *   only within the change) is refused whole, naming the control, over REST and the stream.
 *
 * AUDIT9_SESSION_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../storage/archive.js';
import type { FileEntry } from '../storage/file-list.js';
import { buildServer } from '../server/app.js';
import type { Batch, Update } from '../protocol/value.js';
import { api, TestWs } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const OPTIONS = { imageFrequencyBytes: 3000, flushIntervalMs: 0, rotateSizeBytes: 9000 };
const BATCHES = 1200;
const T0 = 1_700_000_000_000_000;

const seed = scheduleSeed('AUDIT9_SESSION_SEED', 'audit9-session-changes');
const rand = rng(seed);

/** Batches of a few string values each (every value unique), 1 to 3 ms apart. */
function workload(): Batch[] {
  let ts = T0;
  return Array.from({ length: BATCHES }, (_, i) => {
    ts += 1000 + Math.floor(rand() * 2000);
    const updates: Update[] = Array.from({ length: 1 + Math.floor(rand() * 6) }, (_, k) => [`/sw/${Math.floor(rand() * 30)}/if${k}`, `v${i}.${k}.${Math.floor(rand() * 1e9).toString(36)}`]);
    return { ts, updates };
  });
}

/** The archive's directory, kept for every test of the file (helpers/tmp removes its own after each test). */
let dir: string;
let app: FastifyInstance;
let archive: Archive;
let url: string;
let batches: Batch[];
/** Index in `batches` of the last batch before the gone file, and of the first after it. */
let lastBefore: number;
let firstAfter: number;
let goneName: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tapedeck-audit9-'));
  batches = workload();
  const w = await Archive.open(dir, OPTIONS);
  for (let i = 0; i < batches.length; i++) {
    w.writer!.append((batches[i] as Batch).updates, (batches[i] as Batch).ts);
    if (i % 30 === 29) await w.writer!.flush();
  }
  await w.close();
  const ref = await Archive.open(dir, { readonly: true });
  const rotated = ref.files.filter((f) => f.sealed);
  await ref.close();
  expect(rotated.length, `seed ${seed}`).toBeGreaterThanOrEqual(4);
  // A rotated file gone, not the first: the file before it holds batches to read up to it.
  const g = 1 + Math.floor(rand() * (rotated.length - 2));
  goneName = (rotated[g] as FileEntry).name;
  await rm(join(dir, goneName));
  lastBefore = batches.findIndex((b) => b.ts === (rotated[g - 1] as FileEntry).lastTs);
  firstAfter = batches.findIndex((b) => b.ts === (rotated[g + 1] as FileEntry).firstTs);
  expect(lastBefore, `seed ${seed}`).toBeGreaterThan(20);
  archive = await Archive.open(dir, OPTIONS);
  app = await buildServer({ archive });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
  await archive?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A paused session at batch `i`, its coalesced stream past the first controls frame. */
async function pausedAt(i: number): Promise<{ id: string; ws: TestWs }> {
  const created = await api(url, 'POST', '/api/v1/sessions', { pos: (batches[i] as Batch).ts, state: 'pause' });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const ws = await TestWs.open(`${url}/api/v1/sessions/${id}/stream?coalesce=true`);
  await ws.next((f) => f.type === 'state');
  await ws.next((f) => f.type === 'controls');
  return { id, ws };
}

/** Batches `k` (1 to 10) before the last one ahead of the gone file. */
function someBefore(): number {
  return lastBefore - 1 - Math.floor(rand() * 10);
}

describe('a session read that runs into a gone file', () => {
  /** The gap frame after the last batch before the gone file, and the state after it. */
  async function crossed(ws: TestWs): Promise<void> {
    const gap = await ws.next((f) => f.type === 'gap' || f.type === 'error');
    expect([gap.type, gap.fromUs, gap.files]).toEqual(['gap', (batches[lastBefore] as Batch).ts, [goneName]]);
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(gap.toUs);
  }

  it('in a burst on a coalesced stream: every batch before it goes out, then the gap, and the burst goes on after it', async () => {
    const from = someBefore();
    const { id, ws } = await pausedAt(from);
    const res = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { burst: lastBefore - from + 5 });
    expect(res.status).toBe(200);
    const got = await ws.batches(lastBefore - from, 5000);
    expect(got, `seed ${seed}`).toEqual(batches.slice(from + 1, lastBefore + 1));
    await crossed(ws);
    expect(await ws.batches(5, 5000), `seed ${seed}`).toEqual(batches.slice(firstAfter, firstAfter + 5));
    expect(res.body.controls.posUs).toBe((batches[firstAfter + 4] as Batch).ts);
    ws.close();
    await api(url, 'DELETE', `/api/v1/sessions/${id}`);
  });

  it('playing faster than real time on a coalesced stream: every batch before it goes out, then the gap and the batches after it', async () => {
    const from = someBefore();
    const { id, ws } = await pausedAt(from);
    ws.send({ type: 'control', set: { speed: 1000, state: 'play' } });
    const got = await ws.batches(lastBefore - from, 5000);
    expect(got, `seed ${seed}`).toEqual(batches.slice(from + 1, lastBefore + 1));
    await crossed(ws);
    expect(await ws.batches(5, 5000), `seed ${seed}`).toEqual(batches.slice(firstAfter, firstAfter + 5));
    ws.close();
    await api(url, 'DELETE', `/api/v1/sessions/${id}`);
  });

  it('in a step: nothing moves, and the next step counts from the position shown', async () => {
    // Forward, the step crosses the gone file, counting the batches it could read.
    const from = someBefore();
    const { id, ws } = await pausedAt(from);
    const over = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { pos: `+${lastBefore - from + 3}` });
    expect([over.status, over.body.controls?.posUs]).toEqual([200, (batches[firstAfter + 2] as Batch).ts]);
    // Back over it, the step fails: nothing moves.
    const failed = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { pos: '-6' });
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('TPD_FILE_UNAVAILABLE');
    expect((await api(url, 'GET', `/api/v1/sessions/${id}`)).body.controls.posUs).toBe((batches[firstAfter + 2] as Batch).ts);
    const back = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { pos: '-1' });
    expect(back.status).toBe(200);
    expect(back.body.controls.posUs, `seed ${seed}`).toBe((batches[firstAfter + 1] as Batch).ts);
    ws.close();
    await api(url, 'DELETE', `/api/v1/sessions/${id}`);
  });
});

describe('a change whose range would end before its start', () => {
  it('is refused whole, naming the control, over REST and on the stream', async () => {
    const a = 1 + Math.floor(rand() * (lastBefore - 2));
    const b = a + 1 + Math.floor(rand() * (lastBefore - a - 1));
    const [ta, tb] = [(batches[a] as Batch).ts, (batches[b] as Batch).ts];
    const created = await api(url, 'POST', '/api/v1/sessions', { start: tb, state: 'pause' });
    const id = created.body.id as string;
    const before = created.body.controls;
    const endFirst = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { end: ta, speed: 7, loop: true });
    expect(endFirst.status, `seed ${seed}`).toBe(400);
    expect(endFirst.body.error.code).toBe('TPD_BAD_CONTROL');
    expect(endFirst.body.error.message).toMatch(/^end: /);
    expect((await api(url, 'GET', `/api/v1/sessions/${id}`)).body.controls).toEqual(before);
    // The range the other way round: end first, then a start after it.
    expect((await api(url, 'PATCH', `/api/v1/sessions/${id}`, { start: ta, end: tb })).status).toBe(200);
    const kept = (await api(url, 'GET', `/api/v1/sessions/${id}`)).body.controls;
    const startAfter = await api(url, 'PATCH', `/api/v1/sessions/${id}`, { start: tb + 1, pos: 'beginning' });
    expect(startAfter.status).toBe(400);
    expect(startAfter.body.error.message).toMatch(/^start: /);
    expect((await api(url, 'GET', `/api/v1/sessions/${id}`)).body.controls).toEqual(kept);
    // On the stream: an error frame naming the control, the session unchanged.
    const ws = await TestWs.open(`${url}/api/v1/sessions/${id}/stream`);
    await ws.next((f) => f.type === 'controls');
    ws.send({ type: 'control', set: { end: ta - 1, speed: 3 } });
    const err = await ws.next((f) => f.type === 'error');
    expect([err.code, err.control]).toEqual(['TPD_BAD_CONTROL', 'end']);
    expect((await api(url, 'GET', `/api/v1/sessions/${id}`)).body.controls).toEqual(kept);
    ws.close();
    await api(url, 'DELETE', `/api/v1/sessions/${id}`);
  });
});
