/**
 * Play-next (`next: true`) and burst (`burst: N`) over a real server and real WebSockets,
 * batch-exact: the batches that follow the control are the next ones GET /api/v1/history
 * answers, nothing else comes between (no state frame), and the controls frame that
 * follows marks the end. Then the edges: the end of the archive, a bounded end, tail, a
 * filter matching nothing, bad N, a burst without a stream, and a client leaving or the
 * session closing mid-burst (nothing hangs, every state stays closable).
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, startServer, type TestServer } from './helpers/server.js';
import { batchesIn, FramesWs, historyBatches } from './helpers/frames-ws.js';
import { until } from './helpers/until.js';
import { scheduleSeed } from './helpers/seed.js';
import type { DecodedFrame } from '../protocol/frames.js';
import type { ControlsView } from '../protocol/controls.js';
import type { Batch } from '../protocol/value.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

let server: TestServer | undefined;
const sockets: FramesWs[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await server?.close();
  server = undefined;
});

const T0 = 1_700_000_000_000_000;
const SECOND_US = 1_000_000;

/** `n` batches a second apart, in the past (history and tail see them), two paths each, values that differ per batch. */
function batchesEvery(n: number, stepUs = SECOND_US, t0 = T0): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: t0 + i * stepUs, updates: [['/p/a', i], ['/p/s', `v${i}`]] }));
}

async function createSession(body: Record<string, unknown>): Promise<string> {
  const c = await api(server!.url, 'POST', '/api/v1/sessions', body);
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  return c.body.id as string;
}

async function open(id: string, opts: { format?: 'json' | 'msgpack'; coalesce?: boolean } = {}): Promise<FramesWs> {
  const ws = await FramesWs.open(server!.url, id, opts);
  sockets.push(ws);
  return ws;
}

const isControls = (pred: (c: ControlsView) => boolean = () => true) => (f: DecodedFrame): boolean => f.type === 'controls' && pred(f.controls);
const isClamped = (f: DecodedFrame): boolean => f.type === 'info' && f.code === 'TPD_CLAMPED';

/** Opens a stream and waits for its first controls frame; answers the index after it. */
async function settled(ws: FramesWs): Promise<number> {
  return (await ws.waitFor(isControls())) + 1;
}

/** Sends `set`, waits for the controls frame that ends it; answers the frames in between and that controls frame. */
async function act(ws: FramesWs, from: number, set: Record<string, unknown>): Promise<{ between: DecodedFrame[]; controls: ControlsView; next: number }> {
  ws.control(set);
  const at = await ws.waitFor(isControls(), from);
  return { between: ws.frames(from, at), controls: (ws.seen[at]!.frame as { controls: ControlsView }).controls, next: at + 1 };
}

describe('play-next', () => {
  it.each([
    ['json', false],
    ['json', true],
    ['msgpack', false],
    ['msgpack', true],
  ] as const)('sends exactly the next batch and pauses, press after press (%s, coalesce %s)', async (format, coalesce) => {
    server = await startServer(batchesEvery(12));
    const history = await historyBatches(server.url);
    expect(history).toHaveLength(12);
    const id = await createSession({ state: 'pause', pos: history[3]!.ts });
    const ws = await open(id, { format, coalesce });
    let from = await settled(ws);
    for (let k = 4; k < 8; k++) {
      const r = await act(ws, from, { next: true });
      // Only the batch: no state frame (the client's view moves on as if played), no info.
      expect(r.between.map((f) => f.type)).toEqual(['batch']);
      expect(batchesIn(r.between)).toEqual([history[k]]);
      expect(r.controls).toMatchObject({ state: 'pause', posUs: history[k]!.ts });
      from = r.next;
    }
  });

  it('pauses a playing session after the next batch, whatever the speed', async () => {
    server = await startServer(batchesEvery(10, 60 * SECOND_US));
    const history = await historyBatches(server.url);
    // At 0.01x a minute apart the second batch is 100 minutes away: only play-next brings it.
    const id = await createSession({ state: 'play', speed: 0.01 });
    const ws = await open(id);
    const first = await ws.waitFor((f) => f.type === 'batch');
    expect(batchesIn(ws.frames(first, first + 1))).toEqual([history[0]]);
    const r = await act(ws, first + 1, { next: true });
    expect(batchesIn(r.between)).toEqual([history[1]]);
    expect(r.controls).toMatchObject({ state: 'pause', posUs: history[1]!.ts });
  });

  it('from the beginning sends the first batch', async () => {
    server = await startServer(batchesEvery(5));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    const ws = await open(id);
    const r = await act(ws, await settled(ws), { next: true });
    expect(batchesIn(r.between)).toEqual([history[0]]);
  });
});

describe('burst', () => {
  it.each([false, true])('sends the next N batches at once and stays paused (coalesce %s)', async (coalesce) => {
    server = await startServer(batchesEvery(40));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: history[9]!.ts });
    const ws = await open(id, { coalesce });
    let from = await settled(ws);
    let r = await act(ws, from, { burst: 7 });
    expect(r.between.every((f) => f.type === 'batch'), ws.types(from)).toBe(true);
    expect(batchesIn(r.between)).toEqual(history.slice(10, 17));
    expect(r.controls).toMatchObject({ state: 'pause', posUs: history[16]!.ts });
    from = r.next;
    // N as text (what a URL or a terminal sends) reads the same.
    r = await act(ws, from, { burst: '3' });
    expect(batchesIn(r.between)).toEqual(history.slice(17, 20));
    if (coalesce) expect(ws.seen.slice(from).some((s) => s.wireType === 'batches'), 'a burst goes in batches frames when the client takes them').toBe(true);
  });

  it('keeps a playing session playing, paced again from the last batch of the burst', async () => {
    server = await startServer(batchesEvery(30, 60 * SECOND_US));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'play', speed: 0.01 });
    const ws = await open(id);
    const first = await ws.waitFor((f) => f.type === 'batch');
    const r = await act(ws, first + 1, { burst: 5 });
    expect(batchesIn(r.between)).toEqual(history.slice(1, 6));
    expect(r.controls).toMatchObject({ state: 'play', posUs: history[5]!.ts });
    // Playing on: at 100x the next batch (a minute on) comes at its pace, the one after it.
    const p = await act(ws, r.next, { speed: 100 });
    expect(p.controls.state).toBe('play');
    const next = await ws.waitFor((f) => f.type === 'batch', p.next);
    expect(batchesIn(ws.frames(next, next + 1))).toEqual([history[6]]);
  });

  it('goes after the other controls of the same change: a seek then the first N from there', async () => {
    server = await startServer(batchesEvery(20));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: history[15]!.ts });
    const ws = await open(id);
    const r = await act(ws, await settled(ws), { pos: 'beginning', burst: 4 });
    // The seek's state frame first (the view starts over), then the batches.
    expect(r.between.map((f) => f.type)).toEqual(['state', 'batch', 'batch', 'batch', 'batch']);
    expect(batchesIn(r.between)).toEqual(history.slice(0, 4));
  });

  it('sends a burst larger than a frame in several frames, every batch once, in order', async () => {
    server = await startServer(batchesEvery(700), { playback: { frameBatchesMax: 64 } });
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    const ws = await open(id, { coalesce: true, format: 'msgpack' });
    const r = await act(ws, await settled(ws), { burst: 650 });
    expect(batchesIn(r.between)).toEqual(history.slice(0, 650));
    expect(r.controls.posUs).toBe(history[649]!.ts);
  });

  it('answers a PATCH when the burst has gone out, with the position after it', async () => {
    server = await startServer(batchesEvery(20));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: history[1]!.ts });
    const ws = await open(id);
    const from = await settled(ws);
    const r = await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: 6 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.controls).toMatchObject({ state: 'pause', posUs: history[7]!.ts });
    const end = await ws.waitFor(isControls((c) => c.posUs === history[7]!.ts), from);
    expect(batchesIn(ws.frames(from, end))).toEqual(history.slice(2, 8));
  });
});

describe('play-next and burst at the edges', () => {
  it('at the end of the archive (end unbounded): sends what there is, says TPD_CLAMPED, stays paused; again: 0 batches', async () => {
    server = await startServer(batchesEvery(10));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: history[7]!.ts });
    const ws = await open(id);
    let r = await act(ws, await settled(ws), { burst: 5 });
    expect(batchesIn(r.between)).toEqual(history.slice(8, 10));
    const info = r.between.find(isClamped) as { message: string } | undefined;
    expect(info?.message).toMatch(/^burst 5: sent 2 of 5 batches and stopped at the newest recorded batch/);
    expect(r.controls).toMatchObject({ state: 'pause', posUs: history[9]!.ts });
    r = await act(ws, r.next, { next: true });
    expect(batchesIn(r.between)).toEqual([]);
    expect((r.between.find(isClamped) as { message: string }).message).toMatch(/^burst 1: sent 0 of 1 batches/);
    expect(r.controls.state).toBe('pause');
  });

  it('at a bounded end: stops at the end, says so, sends no end frame, and the batch after the end is never sent', async () => {
    server = await startServer(batchesEvery(10));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: history[2]!.ts, end: history[5]!.ts });
    const ws = await open(id);
    let r = await act(ws, await settled(ws), { burst: 8 });
    expect(batchesIn(r.between)).toEqual(history.slice(3, 6));
    expect((r.between.find(isClamped) as { message: string }).message).toMatch(/^burst 8: sent 3 of 8 batches and stopped at the session's end/);
    expect(r.between.some((f) => f.type === 'end')).toBe(false);
    r = await act(ws, r.next, { burst: 2 });
    expect(batchesIn(r.between)).toEqual([]);
    expect((r.between.find(isClamped) as { message: string }).message).toMatch(/sent 0 of 2/);
  });

  it('a playing session that bursts into a bounded end then ends as play does (end frame)', async () => {
    server = await startServer(batchesEvery(10, 60 * SECOND_US));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'play', speed: 0.01, end: history[4]!.ts });
    const ws = await open(id);
    const first = await ws.waitFor((f) => f.type === 'batch');
    ws.control({ burst: 9 });
    const end = await ws.waitFor((f) => f.type === 'end', first + 1);
    expect(batchesIn(ws.frames(first + 1, end))).toEqual(history.slice(1, 5));
    expect(ws.frames(first + 1, end).some(isClamped)).toBe(true);
  });

  it('in tail: sends nothing that is not recorded yet, says so at once and keeps tailing; live batches still come', async () => {
    const now = Date.now() * 1000;
    server = await startServer(batchesEvery(5, SECOND_US, now - 60 * SECOND_US));
    const id = await createSession({ state: 'tail' });
    const ws = await open(id);
    const from = await settled(ws);
    const r = await act(ws, from, { burst: 3 });
    expect(batchesIn(r.between)).toEqual([]);
    expect((r.between.find(isClamped) as { message: string }).message).toMatch(/^burst 3: sent 0 of 3 batches and stopped at the newest recorded batch/);
    expect(r.controls.state).toBe('tail');
    const live: Batch = { ts: now + SECOND_US, updates: [['/p/a', 99]] };
    server.archive.writer!.append(live.updates, live.ts);
    await server.archive.writer!.flush();
    const got = await ws.waitFor((f) => f.type === 'batch', r.next);
    expect(batchesIn(ws.frames(got, got + 1))).toEqual([live]);
    // Play-next in tail: the newest is sent already; it pauses, and says it sent nothing.
    const n = await act(ws, got + 1, { next: true });
    expect(batchesIn(n.between)).toEqual([]);
    expect(n.controls.state).toBe('pause');
  });

  it('with a filter matching nothing: 0 batches, TPD_CLAMPED, no hang', async () => {
    server = await startServer(batchesEvery(50));
    const id = await createSession({ state: 'pause', filter: ['/nothing/**'] });
    const ws = await open(id);
    const r = await act(ws, await settled(ws), { burst: 10 });
    expect(batchesIn(r.between)).toEqual([]);
    expect((r.between.find(isClamped) as { message: string }).message).toMatch(/sent 0 of 10/);
  });

  it('with a filter: the next batches holding a matching update, only the matching updates (as history with the glob)', async () => {
    const batches: Batch[] = Array.from({ length: 30 }, (_, i) => ({ ts: T0 + i * SECOND_US, updates: i % 3 === 0 ? [['/x/a', i], ['/y/b', i]] : [['/y/b', i]] }));
    server = await startServer(batches);
    const history = await historyBatches(server.url, '&glob=/x/**');
    expect(history).toHaveLength(10);
    const id = await createSession({ state: 'pause', pos: 'beginning', filter: ['/x/**'] });
    const ws = await open(id, { format: 'msgpack' });
    const r = await act(ws, await settled(ws), { burst: 4 });
    expect(batchesIn(r.between)).toEqual(history.slice(0, 4));
  });
});

describe('bad play-next and burst controls', () => {
  const max = PROTOCOL_LIMITS.burstBatchesMax;

  it.each([
    [{ burst: max + 1 }, 'burst', /burstBatchesMax/],
    [{ burst: 0 }, 'burst', /1 to/],
    [{ burst: -3 }, 'burst', /1 to/],
    [{ burst: 1.5 }, 'burst', /1 to/],
    [{ burst: '2x' }, 'burst', /1 to/],
    [{ burst: '' }, 'burst', /1 to/],
    [{ burst: true }, 'burst', /string|number/, 'TPD_BAD_REQUEST'],
    [{ next: false }, 'next', /must be true/],
    [{ next: 1 }, 'next', /boolean/, 'TPD_BAD_REQUEST'],
    [{ next: true, burst: 2 }, 'next', /either/],
    [{ next: true, state: 'play' }, 'next', /cannot go with state "play"/],
  ] as Array<[Record<string, unknown>, string, RegExp, string?]>)('%j answers TPD_BAD_CONTROL naming the control; the session lives on', async (set, control, message, restCode = 'TPD_BAD_CONTROL') => {
    server = await startServer(batchesEvery(5));
    const history = await historyBatches(server.url);
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    const ws = await open(id);
    const from = await settled(ws);
    ws.control(set);
    const e = await ws.waitFor((f) => f.type === 'error', from);
    expect(ws.seen[e]!.frame).toMatchObject({ code: 'TPD_BAD_CONTROL', control });
    expect((ws.seen[e]!.frame as { message: string }).message).toMatch(message);
    const r = await act(ws, e + 1, { next: true });
    expect(batchesIn(r.between)).toEqual([history[0]]);
    // The REST door takes the same controls and refuses them too (a wrong JSON type is its
    // schema's TPD_BAD_REQUEST, as for every control).
    const p = await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, set);
    expect(p.status).toBe(400);
    expect(p.body.error.code).toBe(restCode);
  });

  it('refuses a burst on a session with no stream attached (over PATCH, and at creation)', async () => {
    server = await startServer(batchesEvery(5));
    const id = await createSession({ state: 'pause' });
    const p = await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: 2 });
    expect(p.status).toBe(400);
    expect(p.body.error).toMatchObject({ code: 'TPD_BAD_CONTROL' });
    expect(p.body.error.message).toMatch(/^burst: no stream is attached/);
    const c = await api(server.url, 'POST', '/api/v1/sessions', { next: true });
    expect(c.status).toBe(400);
    expect(c.body.error.code).toBe('TPD_BAD_CONTROL');
  });
});

describe('a burst cut short', () => {
  /** Batches big enough that a burst of all of them fills the socket's buffers many times over. */
  function heavyBatches(n: number): Batch[] {
    const blob = 'x'.repeat(2000);
    return Array.from({ length: n }, (_, i) => ({ ts: T0 + i * 1000, updates: Array.from({ length: 8 }, (_, k) => [`/h/${k}`, `${i}:${blob}`] as [string, string]) }));
  }

  it('by the client dropping its socket: the PATCH answers, the session stays paused where it got to, and deletes', async () => {
    server = await startServer(heavyBatches(3000));
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    // A client that stops reading at once: the burst stalls on backpressure.
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const s = server.app.sessions.get(id);
    const patch = api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: 3000 });
    await until(() => s.controls.posUs !== null, 20_000, 'the burst to start');
    ws.terminate();
    const r = await patch;
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.controls.state).toBe('pause');
    expect(r.body.controls.posUs).toBeLessThan(T0 + 2999 * 1000);
    // A new stream starts at the position reached, paused: nothing more is sent by itself.
    const again = await open(id);
    const from = await settled(again);
    expect(again.frames(0, from).find((f) => f.type === 'state')).toMatchObject({ ts: r.body.controls.posUs });
    const d = await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
    expect(d.status).toBe(204);
  }, 60_000);

  it('by a delete: the PATCH answers TPD_SESSION_NOT_FOUND and the stream ends', async () => {
    server = await startServer(heavyBatches(3000));
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream`);
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const s = server.app.sessions.get(id);
    const patch = api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: 3000 });
    await until(() => s.controls.posUs !== null, 20_000, 'the burst to start');
    const d = await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
    expect(d.status).toBe(204);
    const r = await patch;
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('TPD_SESSION_NOT_FOUND');
    ws.terminate();
  }, 60_000);

  it('by a seek: the burst stops where it is and the seek goes on from there', async () => {
    server = await startServer(heavyBatches(3000));
    const id = await createSession({ state: 'pause', pos: 'beginning' });
    const ws = await open(id);
    (ws.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const s = server.app.sessions.get(id);
    ws.control({ burst: 3000 });
    await until(() => s.controls.posUs !== null, 20_000, 'the burst to start');
    ws.control({ pos: 'beginning' });
    await until(() => s.controls.posUs === null, 20_000, 'the seek');
    (ws.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const st = await ws.waitFor((f) => f.type === 'state' && f.ts === null, 1);
    const sent = batchesIn(ws.frames(0, st));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(3000);
    // Every batch sent before the seek in order from the first, none twice.
    expect(sent.map((b) => b.ts)).toEqual(Array.from({ length: sent.length }, (_, i) => T0 + i * 1000));
    const c = await ws.waitFor(isControls((x) => x.posUs === null), st);
    expect((ws.seen[c]!.frame as { controls: ControlsView }).controls.state).toBe('pause');
  }, 60_000);

  it('by the client vanishing at seeded random instants, in every state: each session stays closable and the server answers', async () => {
    const seed = scheduleSeed('BURST_DROP_SEED', 'burst drop');
    let x = seed >>> 0 || 1;
    /** xorshift32: the schedule of this run, replayed by its seed. */
    const rnd = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    server = await startServer(heavyBatches(1500), { playback: { frameBatchesMax: 8 } });
    const states = ['pause', 'play', 'tail'] as const;
    for (let round = 0; round < 9; round++) {
      const state = states[round % 3]!;
      const id = await createSession({ state, pos: state === 'tail' ? 'end' : 'beginning', speed: rnd() < 0.5 ? 'unlimited' : 0.01 });
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream${rnd() < 0.5 ? '?coalesce=true' : ''}`);
      const dropAfter = Math.floor(rnd() * 30);
      const how = rnd() < 0.5 ? 'terminate' : 'close';
      let seen = 0;
      let controlsFrames = 0;
      const dropped = new Promise<void>((resolve) => {
        ws.on('message', (data: Buffer) => {
          // The second controls frame ends the burst: drop there at the latest (a short burst
          // may bring fewer frames than the drawn instant).
          if (data.toString('utf8').startsWith('{"type":"controls"')) controlsFrames++;
          if (++seen !== dropAfter + 1 && controlsFrames < 2) return;
          if (how === 'terminate') ws.terminate();
          else ws.close();
          resolve();
        });
        ws.once('close', () => resolve());
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'control', set: rnd() < 0.3 ? { next: true } : { burst: 1 + Math.floor(rnd() * 1500) } })));
      await dropped;
      ws.terminate();
      await until(() => !server!.app.sessions.get(id).attached, 20_000, `round ${round}: the session to see its client gone`);
      const h = await api(server.url, 'GET', '/health');
      expect(h.status, `round ${round} (seed ${seed})`).toBe(200);
      const d = await api(server.url, 'DELETE', `/api/v1/sessions/${id}`);
      expect(d.status, `round ${round} (seed ${seed})`).toBe(204);
    }
    expect(server.app.sessions.size).toBe(0);
  }, 120_000);
});
