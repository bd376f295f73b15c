/**
 * History answers whose client stops reading (SERVER_LIMITS.historyStallMs, shortened here):
 * the answer waited for the socket for ever, holding the connection, a cursor and the block
 * the cursor holds. A client that takes no chunk in time is now cut, in every format, and
 * the server holds none of its connections after; a client that reads slowly but steadily
 * gets the whole answer, and one that resets after the first bytes is let go at once.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { noiseBatches } from './helpers/noise-batches.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { historyStallMs: limits.historyStallMs, historyReadBytesPerSMin: limits.historyReadBytesPerSMin };
const T0 = 1_763_000_000_000_000;
const FORMATS = ['ndjson', 'csv', 'parquet'] as const;

let server: TestServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = await startServer(noiseBatches(T0));
});

afterAll(async () => {
  await server?.close();
});

afterEach(() => {
  Object.assign(limits, saved);
  for (const s of sockets.splice(0)) s.destroy();
});

/**
 * A raw GET over its own connection (Connection: close), paused once the first bytes came
 * when `stop`; `closed` resolves with the bytes read once the socket closes, and `tail` is
 * the last of them.
 */
function get(path: string, stop: boolean): Promise<{ socket: Socket; closed: Promise<number>; tail: () => string }> {
  const u = new URL(server.url);
  const s = connect(Number(u.port), u.hostname);
  sockets.push(s);
  let bytes = 0;
  let tail = '';
  const closed = new Promise<number>((resolve) => s.on('close', () => resolve(bytes)));
  s.on('error', () => undefined);
  s.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
  return new Promise((resolve) => {
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      tail = (tail + d.toString('latin1')).slice(-16);
      if (bytes === d.length) {
        if (stop) s.pause();
        resolve({ socket: s, closed, tail: () => tail });
      }
    });
  });
}

/** A whole chunked body ends with its last, empty chunk. */
const WHOLE = '0\r\n\r\n';

async function openConnections(): Promise<number> {
  return new Promise((resolve, reject) => server.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

describe('a history answer whose client stops reading', () => {
  it('is cut once the client takes no chunk in time, in every format, and its connection let go', async () => {
    limits.historyStallMs = 500;
    limits.historyReadBytesPerSMin = 16 * 1024 * 1024;
    const stuck = await Promise.all(FORMATS.map((f) => get(`/api/v1/history?format=${f}`, true)));
    // The server closes them (a paused client sees it only once it reads again).
    await until(async () => (await openConnections()) === 0, 5000, 'the stuck answers cut');
    for (const s of stuck) s.socket.resume();
    for (const s of stuck) {
      expect(await s.closed).toBeGreaterThan(0);
      // Cut, not ended: the body lacks its last chunk, so a client knows it is short.
      expect(s.tail().endsWith(WHOLE), `${await s.closed} bytes`).toBe(false);
    }
    // The server answers the same question in full after.
    const res = await request(`${server.url}/api/v1/history?format=ndjson`, { reset: true });
    expect((await res.body.text()).split('\n').length).toBe(1001);
  }, 30_000);

  it('is not cut while the client reads slowly but takes every chunk in time', async () => {
    limits.historyStallMs = 1000;
    limits.historyReadBytesPerSMin = 1024 * 1024;
    // About 7 MB, read one socket read (at most 64 KiB) every 20 ms: a few seconds, past
    // the kernel's buffers, so the answer waits for this client all along.
    const { socket, closed, tail } = await get('/api/v1/history?format=ndjson&glob=/s/p1*', true);
    const pacer = setInterval(() => {
      socket.once('data', () => socket.pause());
      socket.resume();
    }, 20);
    const t = performance.now();
    await closed;
    clearInterval(pacer);
    expect(performance.now() - t).toBeGreaterThan(1000);
    expect(tail().endsWith(WHOLE)).toBe(true);
  }, 60_000);

  it('lets go at once of a client that resets after the first bytes', async () => {
    for (const f of FORMATS) {
      const { socket, closed } = await get(`/api/v1/history?format=${f}`, true);
      socket.resetAndDestroy();
      await closed;
    }
    await until(async () => (await openConnections()) === 0, 5000, 'no connection left');
  });
});
