/**
 * A playback session's storage reads stop when the one who waits for them leaves. Before,
 * a session's cursors carried no signal (server/sessions/playhead.ts): a seek, a step back
 * or play reading into a file held in cold storage waited for the get hook (up to
 * HOOK_GET_DEFAULTS: 120 s a run, 3 runs) whoever still waited, after its stream had gone:
 * the session's loop was held in the read (a new stream to it got nothing), and a creation
 * whose POST's client left held its slot among max_sessions until the fetch ended.
 *
 * Now (server/sessions/read-stops.ts) the loop's reads stop when the stream leaves, a
 * change's when who asked it leaves, every read when the session ends: counted in
 * tapedeck_requests_canceled_total{at="session"}; the fetch goes on for other readers.
 * Each test holds a file's get (test/helpers/held-gets.ts), destroys the client's socket
 * once the hook has started, and checks the stop is counted, the session's slot comes back
 * and, once the file is back, another session's seek into it answers right. Without the
 * fix (the cursors given no signal) none is counted and every test fails.
 */
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canceledCount } from './helpers/hang-up.js';
import { closeHeld, heldFiles, heldGets, serveHeld, type HeldServer } from './helpers/held-gets.js';
import { api, TestWs } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

/** The hook holds its fetch for good: anything within this time is the stop's doing. */
const WITHIN_MS = 5_000;
/** A stream attaches well within it after its session's creation, on a loaded machine too. */
const GRACE_MS = 1_000;
const T0 = 1_765_000_000_000_000;
const iso = (us: number): string => new Date(us / 1000).toISOString();
/** /v is f through file f (its batches 1 ms apart), 2 in `current` (local). */
const IN_FILE0 = T0 + 5_000;
const IN_CURRENT = T0 + 2_000_000_000;

let server: HeldServer | undefined;
afterEach(async () => {
  await closeHeld(server);
  server = undefined;
});

/** Two rotated files of ten batches shipped to cold storage, their gets held; a local `current`. */
async function coldServer(sessionGraceMs = GRACE_MS): Promise<{ srv: HeldServer; base: string; names: string[] }> {
  const base = await tmpDir('audit20-session-');
  const h = await heldGets(base);
  const files = await heldFiles(h, 2, (f) => {
    for (let b = 0; b < 10; b++) h.a.writer!.append([['/v', f], [`/f${f}/b${b}`, b]], T0 + f * 1_000_000_000 + b * 1_000);
  });
  h.a.writer!.append([['/v', 2]], IN_CURRENT);
  await h.a.writer!.flush();
  const srv = await serveHeld(h, files.release, { playback: { sessionGraceMs } });
  server = srv;
  return { srv, base, names: files.names };
}

/** Whether the get hook has started on `name` (test/fixtures/hooks/get-held.sh logs it). */
async function getStarted(base: string, name: string): Promise<boolean> {
  return (await readFile(join(base, 'calls.log'), 'utf8').catch(() => '')).includes(`start ${name}`);
}

/** Sends a JSON request over a raw socket and returns the socket, to be destroyed unread (a client that hangs up). */
async function sendLater(url: string, method: string, path: string, json: object): Promise<Socket> {
  const u = new URL(url);
  const body = JSON.stringify(json);
  const s = connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  s.write(`${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return s;
}

/** A paused session at `pos` with a stream attached, its first state read. */
async function attached(url: string, pos: string | number): Promise<{ id: string; ws: TestWs }> {
  const created = await api(url, 'POST', '/api/v1/sessions', { pos, state: 'pause' });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const ws = await TestWs.open(`${url}/api/v1/sessions/${id}/stream`);
  await ws.next((f) => f.type === 'controls');
  return { id, ws };
}

/**
 * The fetch of `fetched` went on (nobody reads it now): once let go, the file is local. And
 * another session's seek into file 0 gets its state; then it is deleted.
 */
async function answersOnceBack(srv: HeldServer, fetched: string): Promise<void> {
  await srv.release();
  await until(() => srv.a.files.find((f) => f.name === fetched)?.location === 'local', WITHIN_MS, 'the fetch to finish');
  const { id, ws } = await attached(srv.url, iso(IN_FILE0));
  expect((await ws.next((f) => f.type === 'state')).values).toMatchObject({ '/v': 0 });
  ws.close();
  expect((await api(srv.url, 'DELETE', `/api/v1/sessions/${id}`)).status).toBe(204);
}

describe('a playback session reading a file held in cold storage, whose client leaves', () => {
  for (const [what, set, file] of [
    ['a seek by time', { pos: iso(IN_FILE0) }, 0],
    ['a step back', { pos: '-3' }, 1],
  ] as const) {
    it(`${what} asked over the stream stops when the stream drops; the slot comes back; the fetch goes on`, async () => {
      const { srv, base, names } = await coldServer();
      const before = await canceledCount(srv.url, 'session');
      const { ws } = await attached(srv.url, IN_CURRENT);
      ws.send({ type: 'control', set });
      await until(() => getStarted(base, names[file] as string), WITHIN_MS, 'the get hook to start');
      ws.ws.terminate(); // no close frame: the socket destroyed
      await until(async () => (await canceledCount(srv.url, 'session')) === before + 1, WITHIN_MS, 'the stopped read counted canceled');
      // Detached, it is collected after its grace period, its slot free.
      await until(() => srv.app.sessions.size === 0, GRACE_MS + WITHIN_MS, 'the session collected');
      await answersOnceBack(srv, names[file] as string);
      expect(await canceledCount(srv.url, 'session')).toBe(before + 1);
    }, 60_000);
  }

  for (const speed of ['unlimited', 1] as const) {
    it(`play (speed ${speed}) waiting for a cold file stops when the stream drops; a new stream gets its state at once`, async () => {
      const { srv, base, names } = await coldServer(30_000);
      const before = await canceledCount(srv.url, 'session');
      // At the beginning: nothing read yet; play reads file 0.
      const { id, ws } = await attached(srv.url, 'beginning');
      ws.send({ type: 'control', set: { state: 'play', speed } });
      expect((await ws.next((f) => f.type === 'info')).code).toBe('TPD_BUFFERING');
      await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
      ws.ws.terminate();
      await until(async () => (await canceledCount(srv.url, 'session')) === before + 1, WITHIN_MS, 'the stopped read counted canceled');
      // The loop is free: a stream attaching gets the state where the session stood, while the fetch is still held.
      const again = await TestWs.open(`${srv.url}/api/v1/sessions/${id}/stream`);
      const state = await again.next((f) => f.type === 'state', WITHIN_MS);
      expect(state.ts).toBeNull();
      expect(Object.values(state.values as object).every((v) => v === null)).toBe(true);
      again.close();
      expect((await api(srv.url, 'DELETE', `/api/v1/sessions/${id}`)).status).toBe(204);
      expect(srv.app.sessions.size).toBe(0);
      await answersOnceBack(srv, names[0] as string);
    }, 60_000);
  }

  it('a PATCH seek whose client leaves stops; the session stays where it was, its stream served', async () => {
    const { srv, base, names } = await coldServer(30_000);
    const before = await canceledCount(srv.url, 'session');
    const { id, ws } = await attached(srv.url, IN_CURRENT);
    const s = await sendLater(srv.url, 'PATCH', `/api/v1/sessions/${id}`, { pos: iso(IN_FILE0) });
    await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
    s.destroy();
    await until(async () => (await canceledCount(srv.url, 'session')) === before + 1, WITHIN_MS, 'the stopped read counted canceled');
    // Nothing moved; the stream attached all along answers its next change.
    expect((await api(srv.url, 'GET', `/api/v1/sessions/${id}`)).body.controls.posUs).toBe(IN_CURRENT);
    ws.send({ type: 'control', set: { pos: iso(IN_CURRENT) } });
    expect((await ws.next((f) => f.type === 'state', WITHIN_MS)).values).toMatchObject({ '/v': 2 });
    ws.close();
    expect((await api(srv.url, 'DELETE', `/api/v1/sessions/${id}`)).status).toBe(204);
    await answersOnceBack(srv, names[0] as string);
  }, 60_000);

  it('a creation whose POST\'s client leaves stops its seek and frees its slot at once', async () => {
    const { srv, base, names } = await coldServer(30_000);
    const before = await canceledCount(srv.url, 'session');
    const s = await sendLater(srv.url, 'POST', '/api/v1/sessions', { pos: iso(IN_FILE0), state: 'pause' });
    await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
    expect(srv.app.sessions.size).toBe(1);
    s.destroy();
    await until(() => srv.app.sessions.size === 0, WITHIN_MS, 'the creation\'s slot freed');
    expect(await canceledCount(srv.url, 'session')).toBe(before + 1);
    await answersOnceBack(srv, names[0] as string);
  }, 60_000);
});
