/**
 * A session stream whose client does not read cannot grow the server's memory or hold a
 * session for ever: whatever the client asks (control frames, malformed frames, REST
 * changes), the bytes waiting on its socket stay bounded; a stream that overflows or answers
 * no ping closes with 4008 `unresponsive`; the session lives on, detached, and is collected,
 * so the session count comes back to where it was. /health answers throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket as ServerSocket } from 'ws';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { Batch, Update } from '../protocol/value.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { until } from './helpers/until.js';

/** Paths of every batch: a state frame is about 60 KB, so a few seeks would fill any socket. */
const PATHS = 2000;
const HIGH_BYTES = 64 * 1024;
const OVERFLOW_BYTES_MAX = 128 * 1024;
/**
 * A session without a stream is collected after this. Its grace runs from the POST's answer
 * until the stream's upgrade (and from a detach until the next stream): 200 ms ran out before
 * the upgrade of a paused session in a full CI run (404), the test's process starved at load
 * 10, so a few seconds. Collection is awaited for the grace plus COLLECT_MS.
 */
const SESSION_GRACE_MS = 3_000;
/** A session's collection, once its grace has run out, within this (not a timing target). */
const COLLECT_MS = 10_000;
/** /health must answer at all within this (not a timing target). */
const HEALTH_ANSWER_MS = 5_000;

const batches: Batch[] = Array.from({ length: 50 }, (_, i) => ({
  ts: 1_700_000_000_000_000 + i * 1_000_000, // in the past: a bounded end there is not live
  updates: Array.from({ length: PATHS }, (_, j) => [`/sw/${j}/octets_in`, i * PATHS + j] as Update),
}));

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(streamLimits: Record<string, number> = {}): Promise<TestServer> {
  server = await startServer(batches, {
    playback: { wsBufferHighBytes: HIGH_BYTES, sessionGraceMs: SESSION_GRACE_MS },
    streamLimits: { wsSessionOverflowBytesMax: OVERFLOW_BYTES_MAX, wsCloseGraceMs: 300, ...streamLimits },
  });
  return server;
}

async function healthAnswers(s: TestServer): Promise<boolean> {
  const res = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch(() => undefined);
  return res?.status === 200;
}

/** The server's side of the one stream open, sampled for its largest queue. */
function serverSocket(s: TestServer): ServerSocket {
  const all = [...s.app.websocketServer.clients];
  expect(all).toHaveLength(1);
  return all[0] as ServerSocket;
}

async function openPaused(s: TestServer): Promise<{ id: string; ws: TestWs; closed: Promise<number> }> {
  const id = (await api(s.url, 'POST', '/api/v1/sessions', { state: 'pause' })).body.id as string;
  const ws = await TestWs.open(`${s.url}/api/v1/sessions/${id}/stream`);
  await ws.next((f) => f.type === 'controls');
  const closed = new Promise<number>((resolve) => ws.ws.once('close', (code) => resolve(code)));
  ws.ws.pause(); // reads nothing from here on
  return { id, ws, closed };
}

describe('a client that does not read', () => {
  it('floods control frames: what waits for it stays bounded, /health answers, and the session is collected once it goes', async () => {
    const s = await start();
    const seed = scheduleSeed('HOSTILE_STREAMS_SEED', 'control flood');
    let r = seed;
    const rand = (): number => ((r = (Math.imul(r, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const { ws } = await openPaused(s);
    const sws = serverSocket(s);
    const kinds = [
      () => 'x', // not JSON
      () => JSON.stringify({ type: 'control', set: { pos: 'beginning' } }), // a seek: a state frame
      () => JSON.stringify({ type: 'control', set: { pos: `-${1 + Math.floor(rand() * 9)}` } }),
      () => JSON.stringify({ type: 'control', set: { speed: 'fast' } }), // a bad control
      () => JSON.stringify({ type: 'nope' }),
    ];
    let bufferedMax = 0;
    const sample = setInterval(() => (bufferedMax = Math.max(bufferedMax, sws.bufferedAmount)), 5);
    // About 100 000 frames, each answered by an error, a state or a controls frame.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 2000; i++) ws.ws.send((kinds[Math.floor(rand() * kinds.length)] as () => string)());
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(await healthAnswers(s)).toBe(true);
    // Until the server has read what it will read (it stops reading a client it waits for).
    let seen = -1;
    while (seen !== sws.bufferedAmount) {
      seen = sws.bufferedAmount;
      await new Promise((res) => setTimeout(res, 200));
    }
    clearInterval(sample);
    // The mark, one state frame (about 60 KB) and what may come past the mark.
    expect(bufferedMax).toBeLessThanOrEqual(HIGH_BYTES + 128 * 1024 + OVERFLOW_BYTES_MAX);
    ws.ws.terminate();
    await until(() => s.app.sessions.size === 0, SESSION_GRACE_MS + COLLECT_MS, 'the session collected');
  });

  it('whose session is changed over REST again and again: the stream closes with 4008 and the session lives on', async () => {
    // Time enough for the client to read the close once it reads again.
    const s = await start({ wsCloseGraceMs: 30_000 });
    const { id, ws, closed } = await openPaused(s);
    const sws = serverSocket(s);
    let bufferedMax = 0;
    let n = 0;
    // Each seek answers a controls frame and asks for a state frame.
    while (sws.readyState === sws.OPEN && n < 3000) {
      expect((await api(s.url, 'PATCH', `/api/v1/sessions/${id}`, { pos: n % 2 === 0 ? 'beginning' : 'end' })).status).toBe(200);
      bufferedMax = Math.max(bufferedMax, sws.bufferedAmount);
      n++;
    }
    expect(sws.readyState, `still open after ${n} changes, ${sws.bufferedAmount} bytes waiting`).not.toBe(sws.OPEN);
    expect(bufferedMax).toBeLessThanOrEqual(HIGH_BYTES + 128 * 1024 + OVERFLOW_BYTES_MAX);
    expect(await healthAnswers(s)).toBe(true);
    ws.ws.resume(); // reads again: what waited, then the close
    expect(await closed).toBe(CLOSE_CODES.unresponsive);
    expect((await api(s.url, 'GET', `/api/v1/sessions/${id}`)).body.attached).toBe(false);
    // The session lives on: a new stream starts with its state.
    const again = await TestWs.open(`${s.url}/api/v1/sessions/${id}/stream`);
    expect((await again.next((f) => f.type === 'state')).type).toBe('state');
    again.close();
  });

  it('answers no ping: the stream closes, the socket is cut, and the session is collected', async () => {
    const s = await start({ wsPingIntervalMs: 100, wsPongTimeoutMs: 300 });
    // A client that reads answers pings: its stream stays.
    const id = (await api(s.url, 'POST', '/api/v1/sessions', { state: 'pause' })).body.id as string;
    const reader = await TestWs.open(`${s.url}/api/v1/sessions/${id}/stream`);
    await new Promise((res) => setTimeout(res, 1000));
    expect(reader.closed).toBe(false);
    reader.close();
    await until(() => s.app.sessions.size === 0, SESSION_GRACE_MS + COLLECT_MS, 'the first session collected');
    const { ws, closed } = await openPaused(s);
    expect(s.app.sessions.size).toBe(1);
    // Never answered, so never closed from its side: the server cuts it after the grace.
    await until(() => s.app.sessions.size === 0, SESSION_GRACE_MS + COLLECT_MS, 'the session collected');
    expect(await healthAnswers(s)).toBe(true);
    ws.ws.resume();
    // Cut before or after the close frame reached the client's kernel: either way it is closed.
    expect([CLOSE_CODES.unresponsive, CLOSE_CODES.abnormal]).toContain(await closed);
  });

  it('while its session plays: a change over REST is answered, not left waiting for the client to read', async () => {
    const s = await start();
    const first = batches[0] as Batch;
    const last = batches[batches.length - 1] as Batch;
    const id = (await api(s.url, 'POST', '/api/v1/sessions', { state: 'pause', start: new Date(first.ts / 1000).toISOString(), end: new Date(last.ts / 1000).toISOString(), loop: true })).body.id as string;
    const ws = await TestWs.open(`${s.url}/api/v1/sessions/${id}/stream`);
    await ws.next((f) => f.type === 'controls');
    ws.ws.pause();
    serverSocket(s); // its one stream
    expect((await api(s.url, 'PATCH', `/api/v1/sessions/${id}`, { state: 'play', speed: 'unlimited' })).status).toBe(200);
    // Held: more than the high mark sent and not read (it waits in the server or the kernels' buffers).
    await until(() => s.app.sessions.get(id).waitingForClient, 20_000, 'the session waiting for its client to read');
    for (const set of [{ speed: 2 }, { pos: 'beginning' }, { state: 'pause' }]) {
      const res = await fetch(`${s.url}/api/v1/sessions/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(set), signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch((err: unknown) => err as Error);
      expect(res instanceof Error ? res.message : res.status, JSON.stringify(set)).toBe(200);
    }
    ws.ws.terminate();
  });
});

