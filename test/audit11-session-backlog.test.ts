/**
 * A peer that vanishes (no FIN, no RST: a cut link) behind a large backlog is found within a
 * bound that does not grow with the backlog. Before, the server filled the kernels' buffers
 * (megabytes on a loopback link) on top of its own wsBufferHighBytes, and a ping's deadline
 * was wsPongTimeoutMs plus the time to read everything sent before it at wsReadBytesPerSMin:
 * minutes with the default limits. Now the server sends no more than about wsBufferHighBytes
 * past what the peer has been seen to read (its last answered ping: each ping goes once half
 * that is unconfirmed), so a ping's deadline stays within wsPongTimeoutMs plus about
 * wsBufferHighBytes at wsReadBytesPerSMin, whatever the client asked for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import WebSocket, { type WebSocket as ServerSocket } from 'ws';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { api, startServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';
import type { Batch } from '../protocol/value.js';

const T0 = 1_700_000_000_000_000;
const BATCHES = 2_000;
const PATHS = 50;
const HIGH_BYTES = 64 * 1024;
/** The bound this promises: a pong timeout plus about HIGH_BYTES at the reading rate (under 2 s here); a backlog of megabytes took a minute and more. */
const STREAM = { wsPingIntervalMs: 1_000, wsPongTimeoutMs: 1_000, wsReadBytesPerSMin: 128 * 1024, wsCloseGraceMs: 300, wsSessionOverflowBytesMax: 64 * 1024 * 1024 };
/** Far more than the bound, far less than the backlog's reading time before. Not a timing target. */
const FOUND_MS = 10_000;

let srv: TestServer | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await srv?.close();
  srv = undefined;
});

/** A TCP proxy that can stall: it then reads and forwards nothing more, either way (a link cut without a FIN). */
async function cutLink(port: number): Promise<{ url: string; cut(): void; fromServerBytes(): number }> {
  const pairs: Array<[Socket, Socket]> = [];
  let fromServer = 0;
  const server: Server = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    pairs.push([down, up]);
    down.pipe(up);
    up.on('data', (chunk: Buffer) => (fromServer += chunk.length));
    up.pipe(down);
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
    cut() {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
    fromServerBytes: () => fromServer,
  };
}

function batches(): Batch[] {
  return Array.from({ length: BATCHES }, (_, i) => ({ ts: T0 + i * 1000, updates: Array.from({ length: PATHS }, (_, j) => [`/sw/${j}/octets`, i * PATHS + j] as [string, number]) }));
}

describe('a peer gone without a word behind a large backlog', () => {
  it('is found, closed 4008 and detached within a bound that does not grow with what was queued', async () => {
    const s = (srv = await startServer(batches(), { playback: { wsBufferHighBytes: HIGH_BYTES, sessionGraceMs: 60_000 }, streamLimits: STREAM }));
    const link = await cutLink((s.app.server.address() as { port: number }).port);
    const created = await api(s.url, 'POST', '/api/v1/sessions', { pos: T0, start: T0, end: T0 + (BATCHES - 1) * 1000, loop: true, speed: 'unlimited' });
    const id = created.body.id as string;
    const ws = new WebSocket(`${link.url.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream`);
    cleanups.push(() => ws.terminate());
    ws.on('error', () => undefined);
    let frames = 0;
    ws.on('message', () => frames++);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    await until(() => frames > 100, FOUND_MS, 'the client reading');
    // The client stops reading: whatever the server sends fills the kernels' buffers.
    ws.pause();
    const paused = link.fromServerBytes();
    const sws = [...(s.app.websocketServer.clients as Set<ServerSocket>)][0] as ServerSocket;
    const codes: number[] = [];
    const close = sws.close.bind(sws);
    sws.close = (code?: number, why?: string | Buffer) => {
      if (code !== undefined) codes.push(code);
      close(code, why);
    };
    // Then the link is cut, both ways, without a FIN: only the lack of pongs can tell.
    await until(() => link.fromServerBytes() - paused > HIGH_BYTES / 4, FOUND_MS, 'frames sent past what the client read');
    link.cut();
    await until(() => !s.app.sessions.get(id).attached, FOUND_MS, 'the gone peer detached').catch((err: Error) => {
      throw new Error(`${err.message} (the proxy had taken ${link.fromServerBytes()} bytes from the server)`);
    });
    expect(codes).toEqual([CLOSE_CODES.unresponsive]);
  });
});
