/**
 * A client that leaves abruptly is noticed at once, in every state of its session, whatever
 * waits for it: a TCP FIN, a TCP RST or a WebSocket close frame detaches the session, lets go
 * of its column cursor, and the server's socket is gone within wsCloseGraceMs, not at the next
 * ping's deadline. Pings here are far apart (a minute): only the socket's own events can tell.
 *
 * Before, a client held "because behind" (the server waits for it to read its backlog) that
 * closed was noticed only by pings: its FIN and its close frame waited behind the backlog (ws
 * ends its side and waits for the writes, which the client never reads), and once the server
 * had stopped reading the stream (a control frame came while behind), nothing of it was read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import WebSocket, { type WebSocket as ServerSocket } from 'ws';
import type { Session } from '../server/sessions/session.js';
import type { Playhead } from '../server/sessions/playhead.js';
import { api, startServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';
import type { Batch } from '../protocol/value.js';

const T0 = 1_700_000_000_000_000;
const BATCHES = 400;
const PATHS = 50;
const HIGH_BYTES = 64 * 1024;
const STREAM = { wsPingIntervalMs: 60_000, wsPongTimeoutMs: 60_000, wsCloseGraceMs: 300, wsSessionOverflowBytesMax: 64 * 1024 * 1024 };
/** Far below the ping interval; generous for a loaded machine. Not a timing target. */
const PROMPT_MS = 5_000;

let srv: TestServer | undefined;
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  await srv?.close();
  srv = undefined;
});

function batches(): Batch[] {
  return Array.from({ length: BATCHES }, (_, i) => ({ ts: T0 + i * 1000, updates: Array.from({ length: PATHS }, (_, j) => [`/sw/${j}/octets`, i * PATHS + j] as [string, number]) }));
}

type Frame = { type: string; [k: string]: unknown };

interface Open {
  state: string;
  id: string;
  ws: WebSocket;
  frames: Frame[];
}

async function open(s: TestServer, state: string, body: object): Promise<Open> {
  const created = await api(s.url, 'POST', '/api/v1/sessions', body);
  expect([created.status, created.body.error]).toEqual([201, undefined]);
  const id = created.body.id as string;
  const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream`);
  clients.push(ws);
  const frames: Frame[] = [];
  ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as Frame));
  ws.on('error', () => undefined);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  await until(() => frames.some((f) => f.type === 'controls'), PROMPT_MS, 'the first controls frame');
  return { state, id, ws, frames };
}

const head = (s: Session): Playhead => (s as unknown as { head: Playhead }).head;
const serverSockets = (s: TestServer): ServerSocket[] => [...(s.app.websocketServer.clients as Set<ServerSocket>)];
const UNLIMITED = { pos: T0, start: T0, end: T0 + (BATCHES - 1) * 1000, loop: true, speed: 'unlimited' };

/** Every state a session waits in, reached; the last two held because the client is behind. */
async function allStates(s: TestServer): Promise<Open[]> {
  const out: Open[] = [];
  out.push(await open(s, 'paused', { pos: T0, state: 'pause' }));
  out.push(await open(s, 'playing paced', { pos: T0, speed: 0.01 }));
  const tail = await open(s, 'tailing', { state: 'tail' });
  await until(() => s.app.sessions.get(tail.id).waitingForData, PROMPT_MS, 'tailing');
  out.push(tail);
  const ended = await open(s, 'ended', { pos: T0, end: T0 + 5_000, speed: 'unlimited' });
  await until(() => ended.frames.some((f) => f.type === 'end'), PROMPT_MS, 'the end');
  out.push(ended);
  for (const state of ['held because behind', 'held because behind, its asks unread']) {
    const o = await open(s, state, UNLIMITED);
    o.ws.pause(); // reads nothing more: the server stops past the high mark
    await until(() => s.app.sessions.get(o.id).waitingForClient, PROMPT_MS, `${state}: the server holding frames for it`);
    // A control frame sent while behind: the server read no more of the stream after it.
    if (state.endsWith('unread')) o.ws.send(JSON.stringify({ type: 'control', set: { speed: 'unlimited' } }));
    await until(() => head(s.app.sessions.get(o.id)).holdsColumns, PROMPT_MS, 'reading columns');
    out.push(o);
  }
  return out;
}

const LEAVES: Record<string, (ws: WebSocket) => void> = {
  'a TCP FIN': (ws) => (ws as unknown as { _socket: Socket })._socket.end(),
  'a TCP RST': (ws) => (ws as unknown as { _socket: Socket })._socket.resetAndDestroy(),
  'a WebSocket close frame': (ws) => ws.close(1000, 'bye'),
};

describe('a client that leaves abruptly', () => {
  for (const [how, leave] of Object.entries(LEAVES)) {
    it(`by ${how}, in every state (held because behind too): its session and socket are let go promptly`, async () => {
      const s = (srv = await startServer(batches(), { playback: { wsBufferHighBytes: HIGH_BYTES, sessionGraceMs: 60_000 }, streamLimits: STREAM }));
      const all = await allStates(s);
      expect(serverSockets(s)).toHaveLength(all.length);
      for (const o of all) leave(o.ws);
      const left = (o: Open): boolean => {
        const session = s.app.sessions.get(o.id);
        return !session.attached && !head(session).holdsColumns;
      };
      await until(() => all.every(left) && serverSockets(s).length === 0, PROMPT_MS, 'every session detached and every server socket gone').catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(all.map((o) => [o.state, left(o)]))}, ${serverSockets(s).length} server sockets left`);
      });
      // The sessions live on, detached, to be collected (or attached again).
      expect(all.map((o) => [o.state, s.app.sessions.get(o.id).attached])).toEqual(all.map((o) => [o.state, false]));
    });
  }
});
