/**
 * A session stream's liveness in every state of its session (paused, playing paced, playing
 * unlimited to a slow reader and paused behind its backlog, tailing, stepped, ended, waiting for a cold fetch, seeking into
 * an evicted file, closing): a client that answers pings, or reads what it is sent, stays
 * attached; one that answers none and reads nothing is closed with 4008 `unresponsive`, its
 * session living on; and in every state the client's close, a DELETE and the server's
 * shutdown end the stream promptly. Before, a slow but healthy reader was closed 4008: its
 * pong waited behind the frames before the ping, or unread while the server held the socket
 * (it stops reading a stream whose client is behind).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import WebSocket, { type WebSocket as ServerSocket } from 'ws';
import type { FastifyInstance } from 'fastify';
import type { Session } from '../server/sessions/session.js';
import type { Playhead } from '../server/sessions/playhead.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { api } from './helpers/server.js';
import { closeHeld, heldFiles, heldGets, serveHeld, type HeldServer } from './helpers/held-gets.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const T0 = 1_700_000_000_000_000;
/** Batches 1 ms apart: two rotated files of 20 (shipped, evicted), then CURRENT in `current`. */
const CURRENT = 400;
const CUR0 = T0 + 40_000;
const PATHS = 50;
const STREAM = { wsPingIntervalMs: 50, wsPongTimeoutMs: 250, wsReadBytesPerSMin: 128 * 1024, wsCloseGraceMs: 300, wsSessionOverflowBytesMax: 64 * 1024 * 1024 };
/** Several pong timeouts: a stream still open after it was not closed for silence. */
const STAYS_MS = 1_200;
/** Whatever must happen promptly (a close, an answer) happens within this, on a loaded machine too. Not a timing target. */
const PROMPT_MS = 5_000;

type Rig = HeldServer;

let rig: Rig | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await closeHeld(rig);
  rig = undefined;
});

async function start(sessionGraceMs = 60_000, stream: Partial<typeof STREAM> = {}): Promise<Rig> {
  const h = await heldGets(await tmpDir('tapedeck-audit10-live-'));
  const { a } = h;
  const row = (k: number): Array<[string, number]> => Array.from({ length: PATHS }, (_, j) => [`/sw/${j}/octets`, k * PATHS + j]);
  const { names, release } = await heldFiles(h, 2, (f) => {
    for (let i = 0; i < 20; i++) a.writer!.append(row(f * 20 + i), T0 + (f * 20 + i) * 1000);
  });
  expect(names).toHaveLength(2);
  for (let i = 0; i < CURRENT; i++) a.writer!.append(row(40 + i), CUR0 + i * 1000);
  await a.writer!.flush();
  rig = await serveHeld(h, release, { playback: { wsBufferHighBytes: 64 * 1024, sessionGraceMs }, streamLimits: { ...STREAM, ...stream } });
  return rig;
}

type Frame = { type: string; [k: string]: unknown };

/** A stream client: `answers` false turns its automatic pongs off (it still reads). */
class Client {
  readonly frames: Frame[] = [];
  code: number | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => this.frames.push(JSON.parse(d.toString()) as Frame));
    ws.on('close', (code) => (this.code = code));
  }

  static async open(url: string, answers: boolean): Promise<Client> {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { autoPong: answers });
    const c = new Client(ws);
    cleanups.push(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return c;
  }

  async next(pred: (f: Frame) => boolean): Promise<Frame> {
    let found: Frame | undefined;
    await until(() => (found = this.frames.find(pred)) !== undefined, PROMPT_MS, 'a frame');
    this.frames.splice(this.frames.indexOf(found as Frame), 1);
    return found as Frame;
  }

  control(set: object): void {
    this.ws.send(JSON.stringify({ type: 'control', set }));
  }
}

/** A session in one state, and its client. */
interface InState {
  state: string;
  id: string;
  client: Client;
}

async function session(r: Rig, body: object, answers: boolean, streamUrl?: (id: string) => string): Promise<{ id: string; client: Client }> {
  const created = await api(r.url, 'POST', '/api/v1/sessions', body);
  expect([created.status, created.body.error]).toEqual([201, undefined]);
  const id = created.body.id as string;
  const client = await Client.open(streamUrl ? streamUrl(id) : `${r.url}/api/v1/sessions/${id}/stream`, answers);
  await client.next((f) => f.type === 'controls');
  return { id, client };
}

const isInfo = (code: string) => (f: Frame): boolean => f.type === 'info' && f.code === code;

/** Every state a session can wait in, each reached and waiting when this returns. */
const STATES: Record<string, (r: Rig, answers: boolean) => Promise<{ id: string; client: Client }>> = {
  paused: (r, answers) => session(r, { pos: CUR0, state: 'pause' }, answers),
  'playing paced': (r, answers) => session(r, { pos: CUR0, speed: 0.01 }, answers),
  tailing: async (r, answers) => {
    const s = await session(r, { state: 'tail' }, answers);
    await until(() => r.app.sessions.get(s.id).waitingForData, PROMPT_MS, 'tailing');
    return s;
  },
  stepped: async (r, answers) => {
    const s = await session(r, { pos: CUR0 + 100_000, state: 'pause' }, answers);
    s.client.control({ pos: '-5' });
    await s.client.next((f) => f.type === 'state' && f.ts === CUR0 + 95_000);
    return s;
  },
  ended: async (r, answers) => {
    const s = await session(r, { pos: CUR0, end: CUR0 + 5_000, speed: 'unlimited' }, answers);
    await s.client.next((f) => f.type === 'end');
    return s;
  },
  'waiting for a cold fetch': async (r, answers) => {
    const s = await session(r, { state: 'pause' }, answers);
    s.client.control({ state: 'play', speed: 'unlimited' });
    await s.client.next(isInfo('TPD_BUFFERING'));
    return s;
  },
  'seeking into an evicted file': async (r, answers) => {
    const s = await session(r, { pos: CUR0, state: 'pause' }, answers);
    s.client.control({ pos: T0 + 30_000 });
    await s.client.next(isInfo('TPD_BUFFERING'));
    return s;
  },
};

async function allStates(r: Rig, answers: boolean): Promise<InState[]> {
  const out: InState[] = [];
  for (const [state, reach] of Object.entries(STATES)) out.push({ state, ...(await reach(r, answers)) });
  return out;
}

/**
 * A TCP proxy that hands the server's bytes to the client at `bytesPerS` (a client on a slow
 * link), and can stall: it then reads and forwards nothing more, either way (a client gone
 * without a FIN).
 */
async function slowLink(port: number, bytesPerS: number): Promise<{ url: string; stall(): void }> {
  let stalled = false;
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    pairs.push([down, up]);
    down.pipe(up);
    // At bytesPerS on average: reading pauses while what was passed on is ahead of that pace.
    const t0 = Date.now();
    let passed = 0;
    up.on('data', (chunk: Buffer) => {
      down.write(chunk);
      passed += chunk.length;
      const aheadMs = (passed / bytesPerS) * 1000 - (Date.now() - t0);
      if (aheadMs <= 5) return;
      up.pause();
      setTimeout(() => stalled || up.resume(), aheadMs);
    });
    for (const [x, y] of [[up, down], [down, up]] as const) {
      x.on('error', () => y.destroy());
      x.on('close', () => y.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const p of pairs) for (const s of p) s.destroy();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stall() {
      stalled = true;
      for (const [down, up] of pairs) {
        down.unpipe(up);
        down.pause();
        up.pause();
      }
    },
  };
}

/** The close codes the server sends on its one session stream. */
function serverCloses(app: FastifyInstance): number[] {
  const codes: number[] = [];
  for (const s of app.websocketServer.clients as Set<ServerSocket>) {
    const close = s.close.bind(s);
    s.close = (code?: number, why?: string | Buffer) => {
      if (code !== undefined) codes.push(code);
      close(code, why);
    };
  }
  return codes;
}

describe('a session stream in every state', () => {
  it('stays attached while its client answers pings', async () => {
    const r = await start();
    const all = await allStates(r, true);
    await new Promise((done) => setTimeout(done, STAYS_MS));
    expect(all.map((s) => [s.state, s.client.code, r.app.sessions.get(s.id).attached])).toEqual(all.map((s) => [s.state, undefined, true]));
  });

  it('is closed 4008 when its client answers no ping, and its session lives on, detached', async () => {
    const r = await start();
    const all = await allStates(r, false);
    await until(() => all.every((s) => s.client.code !== undefined), PROMPT_MS, 'every silent client closed');
    expect(all.map((s) => [s.state, s.client.code])).toEqual(all.map((s) => [s.state, CLOSE_CODES.unresponsive]));
    expect(all.map((s) => [s.state, r.app.sessions.get(s.id).attached])).toEqual(all.map((s) => [s.state, false]));
  });

  it('ends promptly in every state when the client closes, when the session is deleted, and at shutdown', async () => {
    const r = await start();
    const byClient = await allStates(r, true);
    for (const s of byClient) s.client.ws.close();
    await until(() => byClient.every((s) => !r.app.sessions.get(s.id).attached), PROMPT_MS, 'every stream detached');

    const deleted = await allStates(r, true);
    // One more in each state whose client reads nothing more: closing, it never answers the close.
    const deaf = await allStates(r, true);
    for (const s of deaf) s.client.ws.pause();
    const answers = await Promise.all([...deleted, ...deaf].map((s) => fetch(`${r.url}/api/v1/sessions/${s.id}`, { method: 'DELETE', signal: AbortSignal.timeout(PROMPT_MS) }).then((res) => res.status, (err: Error) => err.message)));
    expect(answers).toEqual([...deleted, ...deaf].map(() => 204));
    await until(() => deleted.every((s) => s.client.code !== undefined), PROMPT_MS, 'every deleted stream closed');
    expect(deleted.map((s) => [s.state, s.client.code, s.client.frames.some((f) => f.type === 'end' && f.reason === 'deleted')])).toEqual(deleted.map((s) => [s.state, CLOSE_CODES.normal, true]));
    for (const s of deaf) s.client.ws.resume();
    await until(() => deaf.every((s) => s.client.code !== undefined), PROMPT_MS, 'every deaf stream cut');

    const atShutdown = await allStates(r, true);
    // Every other one reads nothing more: its close is cut after wsCloseGraceMs.
    for (const [k, s] of atShutdown.entries()) if (k % 2 === 1) s.client.ws.pause();
    const closed = await Promise.race([r.app.close().then(() => 'closed'), new Promise((done) => setTimeout(() => done('still closing'), PROMPT_MS))]);
    expect(closed).toBe('closed');
    for (const s of atShutdown) s.client.ws.resume();
    await until(() => atShutdown.every((s) => s.client.code !== undefined), PROMPT_MS, 'every stream closed at shutdown');
  });
});

describe('a slow reader', () => {
  it('playing unlimited, then paused behind its backlog: stays while it reads, and is closed 4008 once it reads nothing', async () => {
    // More time for a pong than the other tests give, and a link eight times faster than the
    // slowest reading allowed: the client shares a loaded machine with the server.
    const limits = { wsPingIntervalMs: 100, wsPongTimeoutMs: 1_000, wsReadBytesPerSMin: 128 * 1024 };
    const r = await start(60_000, limits);
    const link = await slowLink((r.app.server.address() as { port: number }).port, 8 * limits.wsReadBytesPerSMin);
    // A loop over the current file at unlimited speed: more than the link carries, for ever.
    const { id, client } = await session(r, { pos: CUR0, start: CUR0, end: CUR0 + (CURRENT - 1) * 1000, loop: true, speed: 'unlimited' }, true, (sid) => `${link.url}/api/v1/sessions/${sid}/stream`);
    const codes = serverCloses(r.app);
    let batches = 0;
    client.ws.on('message', () => batches++);
    await new Promise((done) => setTimeout(done, 2 * limits.wsPongTimeoutMs));
    expect([client.code, codes, r.app.sessions.get(id).attached]).toEqual([undefined, [], true]);
    // Paused behind what it has yet to read (the server stops reading its asks meanwhile):
    // the controls frame saying so comes once the client has read everything before it.
    client.control({ state: 'pause' });
    await until(() => client.frames.some((f) => f.type === 'controls' && (f.controls as { state: string }).state === 'pause'), 4 * PROMPT_MS, 'the pause read');
    expect([client.code, codes, r.app.sessions.get(id).attached, batches > 0]).toEqual([undefined, [], true, true]);
    // Nothing waits for it now but pings: once it reads nothing, it is closed.
    link.stall();
    await until(() => !r.app.sessions.get(id).attached, PROMPT_MS, 'the stalled stream closed');
    expect(codes).toEqual([CLOSE_CODES.unresponsive]);
  });
});

describe('a client that vanishes abruptly', () => {
  it('in every state, mid-frame too: its session is detached, lets go of its column cursor, and is collected', async () => {
    const graceMs = 2_000;
    const r = await start(graceMs);
    const all = await allStates(r, true);
    // Unlimited play holds a column cursor (its block scratch and read-ahead, about 1 MB).
    const unlimited = await session(r, { pos: CUR0, start: CUR0, end: CUR0 + (CURRENT - 1) * 1000, loop: true, speed: 'unlimited' }, true);
    const head = (s: Session): Playhead => (s as unknown as { head: Playhead }).head;
    await until(() => head(r.app.sessions.get(unlimited.id)).holdsColumns, PROMPT_MS, 'unlimited play reading columns');
    const sessions = [...all, { state: 'playing unlimited', ...unlimited }].map((s) => ({ state: s.state, s: r.app.sessions.get(s.id) }));
    // Destroyed under the frames coming in: no close frame, no FIN first.
    for (const s of [...all, unlimited]) (s.client.ws as unknown as { _socket: Socket })._socket.destroy();
    // (A read waiting for a cold fetch holds its cursor until the fetch ends: HOOK_GET_DEFAULTS bound it.)
    const released = ({ state, s }: { state: string; s: Session }): boolean => !s.attached && (state === 'waiting for a cold fetch' || !head(s).holdsColumns);
    await until(() => sessions.every(released), graceMs, 'every session detached, holding no column cursor').catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(sessions.map(({ state, s }) => [state, s.attached, head(s).holdsColumns]))}`);
    });
    await until(() => r.app.sessions.size === 0, graceMs + PROMPT_MS, 'every session collected');
  });

  it('while its read waits for a cold fetch: what the read brings counts as sent to nobody; a new stream resumes where the last one was', async () => {
    const r = await start();
    const { id, client } = await STATES['waiting for a cold fetch']!(r, true);
    const s = r.app.sessions.get(id);
    (client.ws as unknown as { _socket: Socket })._socket.destroy();
    await until(() => !s.attached, PROMPT_MS, 'the session detached');
    await r.release();
    // The read returns to a session with no client: nothing sent, nothing held.
    await until(() => !(s as unknown as { head: Playhead }).head.holdsColumns, PROMPT_MS, 'the column cursor let go');
    expect(s.controls.posUs).toBe(null);
    const again = await Client.open(`${r.url}/api/v1/sessions/${id}/stream`, true);
    expect((await again.next((f) => f.type === 'state')).ts).toBe(null);
    const first = await again.next((f) => f.type === 'batch' || f.type === 'batches');
    expect(first.type === 'batch' ? first.ts : (first.batches as Array<{ ts: number }>)[0]?.ts).toBe(T0);
  });
});
