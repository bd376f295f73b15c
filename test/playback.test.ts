import { afterEach, describe, expect, it } from 'vitest';
import { startServer, TestWs, api, type TestServer } from './helpers/server.js';
import { naiveState, plain } from './helpers/replay.js';
import { randomBatches, rng } from './helpers/workload.js';
import type { Batch } from '../protocol/value.js';
import { formatTs } from '../protocol/time.js';

let server: TestServer | undefined;
const sockets: TestWs[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await server?.close();
  server = undefined;
});

async function open(id: string, format: 'json' | 'msgpack' = 'json'): Promise<TestWs> {
  const ws = await TestWs.open(`${server!.url}/api/v1/sessions/${id}/stream`, format);
  sockets.push(ws);
  return ws;
}

function allPathsState(batches: Batch[], t: number | null, filter?: string[]) {
  const s = naiveState(batches, t, filter);
  return s;
}

/** Batches 10 ms apart, for pacing. */
function evenBatches(n: number, stepUs = 10_000): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: 1_800_000_000_000_000 + i * stepUs, updates: [['/p/a', i], ['/p/b', i * 2]] }));
}

describe('sessions over REST', () => {
  it('creates, reads, lists, changes and deletes a session', async () => {
    server = await startServer(randomBatches(1, 50));
    const c = await api(server.url, 'POST', '/api/v1/sessions', { speed: 2, state: 'pause', filter: ['/w1/**'] });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ controls: { speed: 2, state: 'pause', start: 'unbounded', end: 'unbounded', loop: false }, filter: ['/w1/**'] });
    expect(c.body.stream).toBe(`/api/v1/sessions/${c.body.id}/stream`);
    expect((await api(server.url, 'GET', `/api/v1/sessions/${c.body.id}`)).body.id).toBe(c.body.id);
    expect((await api(server.url, 'GET', '/api/v1/sessions')).body.sessions).toHaveLength(1);
    const p = await api(server.url, 'PATCH', `/api/v1/sessions/${c.body.id}`, { speed: 'unlimited', loop: true });
    expect(p.body.controls).toMatchObject({ speed: 'unlimited', loop: true });
    expect((await api(server.url, 'DELETE', `/api/v1/sessions/${c.body.id}`)).status).toBe(204);
    const gone = await api(server.url, 'GET', `/api/v1/sessions/${c.body.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('TPD_SESSION_NOT_FOUND');
  });

  it('rejects bad controls with 400, a code and the control named', async () => {
    server = await startServer(randomBatches(1, 10));
    const cases: Array<[unknown, string, RegExp]> = [
      [{ speed: 0 }, 'TPD_BAD_CONTROL', /speed/],
      [{ speed: 5000 }, 'TPD_BAD_CONTROL', /speed/],
      [{ pos: '-0' }, 'TPD_BAD_CONTROL', /pos/],
      [{ start: 'yesterday' }, 'TPD_BAD_CONTROL', /start/],
      [{ state: 'rewind' }, 'TPD_BAD_REQUEST', /state/],
      [{ loop: 'yes' }, 'TPD_BAD_REQUEST', /loop/],
      [{ bogus: 1 }, 'TPD_BAD_REQUEST', /bogus|additional/],
      [{ filter: 'not-an-array' }, 'TPD_BAD_REQUEST', /filter/],
    ];
    for (const [body, code, msg] of cases) {
      const r = await api(server.url, 'POST', '/api/v1/sessions', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(msg);
    }
    expect((await api(server.url, 'GET', '/api/v1/sessions')).body.sessions).toHaveLength(0);
  });

  it('enforces max_sessions and max_sessions_per_client with 429 TPD_SESSION_LIMIT', async () => {
    server = await startServer(randomBatches(1, 10), { playback: { maxSessions: 3, maxSessionsPerClient: 2 } });
    expect((await api(server.url, 'POST', '/api/v1/sessions', {})).status).toBe(201);
    expect((await api(server.url, 'POST', '/api/v1/sessions', {})).status).toBe(201);
    const r = await api(server.url, 'POST', '/api/v1/sessions', {});
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('TPD_SESSION_LIMIT');
    expect(r.body.error.message).toMatch(/max_sessions_per_client/);
  });

  it('collects a session whose client is gone after the grace period; REST calls keep it', async () => {
    server = await startServer(randomBatches(1, 10), { playback: { sessionGraceMs: 300 } });
    const c = await api(server.url, 'POST', '/api/v1/sessions', {});
    const ws = await open(c.body.id);
    await ws.next((f) => f.type === 'state');
    ws.close();
    // A client driving its session over REST alone, for well past the grace period.
    for (let i = 0; i < 10; i++) {
      expect((await api(server.url, 'PATCH', `/api/v1/sessions/${c.body.id}`, { speed: 1 + i })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
    }
    const listed = async (): Promise<boolean> => ((await api(server!.url, 'GET', '/api/v1/sessions')).body.sessions as Array<{ id: string }>).some((s) => s.id === c.body.id);
    expect(await listed()).toBe(true);
    const deadline = Date.now() + 5000;
    while (await listed()) {
      if (Date.now() > deadline) throw new Error('session was not collected');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(server.app.sessions.stats.collected).toBe(1);
  });
});

describe('session stream', () => {
  for (const format of ['json', 'msgpack'] as const) {
    it(`replays every batch bit-exact at unlimited speed (${format}), after a full state frame`, async () => {
      const batches = randomBatches(21, 1500, { paths: 80, maxUpdates: 25 });
      server = await startServer(batches);
      const c = await api(server.url, 'POST', '/api/v1/sessions', { speed: 'unlimited' });
      const ws = await open(c.body.id, format);
      const state = await ws.next();
      expect(state.type).toBe('state');
      // Every path of the archive, null where it had no value at the beginning.
      expect(Object.keys(state.values as object).sort()).toEqual([...server.archive.paths].sort());
      expect(Object.values(state.values as object).every((v) => v === null)).toBe(true);
      expect((await ws.next()).type).toBe('controls');
      const got = await ws.batches(batches.length);
      expect(plain(got)).toStrictEqual(plain(batches));
      // The archive ended with an unbounded end: the session now follows live data.
      const ctl = await ws.next((f) => f.type === 'controls');
      expect((ctl.controls as { state: string }).state).toBe('tail');
    });
  }

  it('seeks by time, offset and ±N batches; each seek sends the state equal to naive replay', async () => {
    const batches = randomBatches(9, 800, { paths: 40, maxUpdates: 8 });
    server = await startServer(batches);
    const filter = ['/w2/dev-1/*', '/w2/dev-3/**'];
    const c = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', filter });
    const ws = await open(c.body.id);
    await ws.next((f) => f.type === 'state');
    const r = rng(4);
    for (let i = 0; i < 15; i++) {
      const t = batches[Math.floor(r() * batches.length)]!.ts + Math.floor(r() * 3);
      ws.send({ type: 'control', set: { pos: i % 2 ? formatTs(t) : t } });
      const st = await ws.next((f) => f.type === 'state');
      const want = Object.fromEntries(server.archive.paths.filter((p) => /^\/w2\/dev-(1\/[^/]*|3\/.*)$/.test(p)).map((p) => [p, null]));
      Object.assign(want, Object.fromEntries(allPathsState(batches, t, filter)));
      expect(plain(st.values)).toStrictEqual(plain(want));
      expect(st.ts).toBe(t);
    }
    // ±N batches from a known batch.
    ws.send({ type: 'control', set: { pos: batches[500]!.ts } });
    await ws.next((f) => f.type === 'state');
    ws.send({ type: 'control', set: { pos: '-10' } });
    let st = await ws.next((f) => f.type === 'state');
    const visible = batches.filter((b) => b.updates.some(([p]) => /^\/w2\/dev-(1\/[^/]*|3\/.*)$/.test(p)));
    const k = visible.findIndex((b) => b.ts > batches[500]!.ts) - 1;
    expect(st.ts).toBe(visible[k - 10]!.ts);
    ws.send({ type: 'control', set: { pos: '+3' } });
    st = await ws.next((f) => f.type === 'state');
    expect(st.ts).toBe(visible[k - 7]!.ts);
    // An offset from now before the whole archive: empty state, next batch is the first.
    ws.send({ type: 'control', set: { pos: '-10y', state: 'play', speed: 'unlimited' } });
    st = await ws.next((f) => f.type === 'state');
    expect(Object.values(st.values as object).every((v) => v === null)).toBe(true);
    expect((await ws.batches(1))[0]!.ts).toBe(visible[0]!.ts);
  });

  it('answers a bad control with an error frame naming it and keeps the session alive', async () => {
    server = await startServer(randomBatches(2, 20));
    const c = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause' });
    const ws = await open(c.body.id);
    await ws.next((f) => f.type === 'controls');
    ws.send({ type: 'control', set: { speed: -1 } });
    const e = await ws.next((f) => f.type === 'error');
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', control: 'speed' });
    // Control frames pass the same JSON Schema as PATCH bodies (lengths, unknown controls).
    ws.send({ type: 'control', set: { pos: 'x'.repeat(100) } });
    expect(await ws.next((f) => f.type === 'error')).toMatchObject({ code: 'TPD_BAD_CONTROL', control: 'pos' });
    ws.send({ type: 'control', set: { rewind: true } });
    expect(await ws.next((f) => f.type === 'error')).toMatchObject({ code: 'TPD_BAD_CONTROL', control: 'rewind', message: 'rewind: is not a control' });
    ws.ws.send('{not json');
    expect(await ws.next((f) => f.type === 'error')).toMatchObject({ code: 'TPD_BAD_FRAME' });
    ws.send({ type: 'control', set: { speed: 4 } });
    const ctl = await ws.next((f) => f.type === 'controls');
    expect((ctl.controls as { speed: number }).speed).toBe(4);
  });

  it('pauses, steps one batch while paused, and resumes', async () => {
    const batches = evenBatches(200);
    server = await startServer(batches);
    const c = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', pos: batches[10]!.ts });
    const ws = await open(c.body.id);
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(batches[10]!.ts);
    ws.send({ type: 'control', set: { pos: '+1' } });
    const st = await ws.next((f) => f.type === 'state');
    expect(st.ts).toBe(batches[11]!.ts);
    expect(st.values).toEqual({ '/p/a': 11, '/p/b': 22 });
    ws.send({ type: 'control', set: { state: 'play', speed: 'unlimited' } });
    const got = await ws.batches(5);
    expect(got.map((b) => b.ts)).toEqual(batches.slice(12, 17).map((b) => b.ts));
  });

  it('stops at a bounded end with an end frame, or loops back to start', async () => {
    const batches = evenBatches(100);
    server = await startServer(batches);
    const c = await api(server.url, 'POST', '/api/v1/sessions', { speed: 'unlimited', start: batches[10]!.ts, end: batches[19]!.ts });
    const ws = await open(c.body.id);
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(batches[10]!.ts);
    const got = await ws.batches(9);
    expect(got.map((b) => b.ts)).toEqual(batches.slice(11, 20).map((b) => b.ts));
    await ws.next((f) => f.type === 'end');
    expect(ws.frames.some((f) => f.type === 'batch' || f.type === 'batches')).toBe(false);
    ws.send({ type: 'control', set: { loop: true, pos: batches[15]!.ts, state: 'play', speed: 1 } });
    await ws.next((f) => f.type === 'state');
    expect((await ws.batches(4)).map((b) => b.ts)).toEqual(batches.slice(16, 20).map((b) => b.ts));
    // Loop: back to start with a fresh state, then the same batches again.
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(batches[10]!.ts);
    expect((await ws.batches(3)).map((b) => b.ts)).toEqual(batches.slice(11, 14).map((b) => b.ts));
  });

  it('at a future bounded end: tails live data until then, then ends even when nothing more comes', async () => {
    const t0 = (Date.now() - 60_000) * 1000;
    server = await startServer(Array.from({ length: 5 }, (_, i) => ({ ts: t0 + i * 10_000, updates: [['/p/a', i]] })));
    const endMs = Date.now() + 2000;
    const c = await api(server.url, 'POST', '/api/v1/sessions', { start: 'unbounded', end: endMs, speed: 'unlimited' });
    const ws = await open(c.body.id);
    await ws.next((f) => f.type === 'state');
    expect(await ws.batches(5)).toHaveLength(5);
    expect(((await ws.next((f) => f.type === 'controls' && (f.controls as { state: string }).state === 'tail')).controls as { state: string }).state).toBe('tail');
    const live = server.archive.writer!.append([['/p/a', 99]]);
    await server.archive.writer!.flush();
    expect((await ws.batches(1))[0]!.ts).toBe(live);
    await ws.next((f) => f.type === 'end', 15_000);
    expect(Date.now()).toBeGreaterThan(endMs);
  });

  it('follows live data in tail while a writer appends, across a rotation, without loss or duplicates', async () => {
    server = await startServer(evenBatches(10));
    const c = await api(server.url, 'POST', '/api/v1/sessions', { state: 'tail' });
    const ws = await open(c.body.id);
    await ws.next((f) => f.type === 'state');
    const w = server.archive.writer!;
    const sent: Batch[] = [];
    for (let i = 0; i < 60; i++) {
      const b: Batch = { ts: 1_900_000_000_000_000 + i, updates: [[`/live/${i % 4}`, i]] };
      w.append(b.updates, b.ts);
      sent.push(b);
      if (i % 7 === 6) await w.flush();
      if (i === 30) await w.rotate();
    }
    await w.flush();
    const got = await ws.batches(60);
    expect(got.map((b) => b.ts)).toStrictEqual(sent.map((b) => b.ts));
    expect(got).toStrictEqual(sent);
  });

  it('paces batches by recorded time / speed without drift (loose bounds; precise figures in the benchmark)', async () => {
    const batches = evenBatches(60, 20_000); // 20 ms apart: 1.2 s of data
    server = await startServer(batches);
    for (const speed of [1, 10]) {
      const c = await api(server.url, 'POST', '/api/v1/sessions', { speed });
      const ws = await open(c.body.id);
      await ws.next((f) => f.type === 'state');
      const arrivals: number[] = [];
      const ts: number[] = [];
      while (ts.length < 60) {
        const f = await ws.next((x) => x.type === 'batch' || x.type === 'batches');
        const now = performance.now();
        const bs = f.type === 'batch' ? [f as unknown as Batch] : (f.batches as Batch[]);
        for (const b of bs) {
          ts.push(b.ts);
          arrivals.push(now);
        }
      }
      const errors = ts.map((t, i) => arrivals[i]! - arrivals[0]! - (t - ts[0]!) / 1000 / speed);
      const p99 = errors.map(Math.abs).sort((a, b) => a - b)[Math.floor(errors.length * 0.99)]!;
      expect(p99, `speed ${speed}`).toBeLessThan(50);
      // No drift: the last batch lands when its recorded offset says.
      expect(Math.abs(errors[errors.length - 1]!), `speed ${speed}`).toBeLessThan(50);
      ws.close();
    }
  });
});

describe('archive listing', () => {
  it('lists files with time ranges and locations', async () => {
    const batches = evenBatches(50);
    server = await startServer(batches, {}, { rotateSizeBytes: 1 });
    await server.archive.writer!.rotate();
    const r = await api(server.url, 'GET', '/api/v1/archive');
    expect(r.status).toBe(200);
    expect(r.body.firstTs).toBe(batches[0]!.ts);
    expect(r.body.lastTs).toBe(batches[49]!.ts);
    expect(r.body.files.length).toBeGreaterThan(1);
    expect(r.body.files.every((f: { location: string }) => f.location === 'local')).toBe(true);
  });
});
