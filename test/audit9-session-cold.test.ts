/**
 * A session whose read waits for a file fetched back from cold storage (a get hook, which
 * may take minutes: HOOK_GET_DEFAULTS) is closed at once: DELETE answers, the session count
 * comes back to zero, and the server shuts down, without waiting for the fetch. Before, the
 * close waited for the session's loop, which waited for the fetch. A session whose creation
 * waits for a fetch (its position in an evicted file) gets its whole grace period from the
 * answer: before, the grace ran from the request, and a creation longer than it answered 201
 * with a session already collected. One deleted while it is created (listed, then DELETE)
 * makes its creation answer 404 TPD_SESSION_NOT_FOUND, not 201 with an id that is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { api, TestWs } from './helpers/server.js';
import { closeHeld, heldFiles, heldGets, serveHeld, type HeldServer } from './helpers/held-gets.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = 1_700_000_000_000_000;
/** An answer that does not come within this waited for the fetch (the fetch is held until the test lets it go). */
const ANSWER_MS = 5_000;

type Rig = HeldServer;

let rig: Rig | undefined;
afterEach(async () => {
  await closeHeld(rig);
  rig = undefined;
});

/** Two rotated files shipped and evicted, their fetches held until release(). */
async function start(sessionGraceMs?: number): Promise<Rig> {
  const h = await heldGets(await tmpDir('tapedeck-audit9-cold-'));
  const { a } = h;
  const { names, release } = await heldFiles(h, 2, (f) => {
    for (let i = 0; i < 20; i++) a.writer!.append([['/a', f * 20 + i], ['/b', `x${i}`]], T0 + (f * 20 + i) * 1000);
  });
  expect(names).toHaveLength(2);
  rig = await serveHeld(h, release, sessionGraceMs !== undefined ? { playback: { sessionGraceMs } } : {});
  return rig;
}

/** A playing session whose read waits for a held fetch (its client told TPD_BUFFERING). */
async function waitingForFetch(r: Rig): Promise<string> {
  const created = await api(r.url, 'POST', '/api/v1/sessions', { state: 'pause' });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const ws = await TestWs.open(`${r.url}/api/v1/sessions/${id}/stream`);
  await ws.next((f) => f.type === 'controls');
  ws.send({ type: 'control', set: { state: 'play', speed: 'unlimited' } });
  expect((await ws.next((f) => f.type === 'info')).code).toBe('TPD_BUFFERING');
  return id;
}

describe('a session waiting for a cold fetch', () => {
  it('is deleted at once, and its count comes back to zero', async () => {
    const r = await start();
    const id = await waitingForFetch(r);
    const res = await fetch(`${r.url}/api/v1/sessions/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(ANSWER_MS) }).catch((err: unknown) => err as Error);
    expect(res instanceof Error ? res.message : res.status).toBe(204);
    expect(r.app.sessions.size).toBe(0);
    expect((await api(r.url, 'GET', `/api/v1/sessions/${id}`)).status).toBe(404);
  });

  it('does not hold the server shutting down', async () => {
    const r = await start();
    await waitingForFetch(r);
    const closed = await Promise.race([r.app.close().then(() => 'closed'), new Promise((done) => setTimeout(() => done('still closing'), ANSWER_MS))]);
    expect(closed).toBe('closed');
  });

  it('while it is created: it is not collected, and its grace period runs from the answer', async () => {
    const graceMs = 1_000; // the stream below must attach within it after the answer, on a loaded machine too
    const r = await start(graceMs);
    const inEvicted = r.a.files[0]?.lastTs as number;
    const creating = api(r.url, 'POST', '/api/v1/sessions', { pos: inEvicted, state: 'pause' });
    // The creation waits for the held fetch several grace periods long, the collector running.
    await new Promise((done) => setTimeout(done, 3 * graceMs));
    expect(r.app.sessions.size).toBe(1);
    await r.release();
    const created = await creating;
    expect(created.status).toBe(201);
    // Within the grace period from the answer, the session is there and a stream attaches.
    const ws = await TestWs.open(`${r.url}/api/v1/sessions/${created.body.id as string}/stream`);
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(inEvicted);
    ws.close();
  });

  it('deleted while it is created: the creation answers that it is gone, not 201', async () => {
    const r = await start();
    const creating = api(r.url, 'POST', '/api/v1/sessions', { pos: r.a.files[0]?.lastTs as number, state: 'pause' });
    // Listed while its creation waits for the held fetch, and deleted.
    let id: string | undefined;
    while (id === undefined) id = (await api(r.url, 'GET', '/api/v1/sessions')).body.sessions[0]?.id as string | undefined;
    expect((await api(r.url, 'DELETE', `/api/v1/sessions/${id}`)).status).toBe(204);
    await r.release();
    const created = await creating;
    expect([created.status, created.body.error?.code]).toEqual([404, 'TPD_SESSION_NOT_FOUND']);
    expect(r.app.sessions.size).toBe(0);
  });
});
