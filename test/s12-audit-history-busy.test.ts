/**
 * History answers streamed at once are bounded (SERVER_LIMITS.historyAnswersMax, shortened
 * here): each holds a cursor, its decoded block and a chunk in the socket, and clients that
 * stopped reading at different times held about 2 MB each (a hundred: 190 MB) until the
 * stall bound let them go. Past the bound a request is refused 503 TPD_BUSY with
 * Retry-After; a slot is free again once its answer ends, is cut, or was refused before
 * streaming (a bad range), so none leaks.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/until.js';
import { noiseBatches } from './helpers/noise-batches.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = limits.historyAnswersMax;
const T0 = 1_763_000_000_000_000;

let server: TestServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = await startServer(noiseBatches(T0));
});

afterAll(async () => {
  await server?.close();
});

afterEach(() => {
  limits.historyAnswersMax = saved;
  for (const s of sockets.splice(0)) s.destroy();
});

/** A history request over a raw socket that reads the first bytes and then stops reading. */
async function stuck(format: string): Promise<Socket> {
  const u = new URL(server.url);
  const s = connect(Number(u.port), u.hostname);
  sockets.push(s);
  s.on('error', () => undefined);
  s.write(`GET /api/v1/history?format=${format} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  s.pause();
  return s;
}

async function history(query: string): Promise<{ status: number; retryAfter: unknown; body: string }> {
  const res = await request(`${server.url}/api/v1/history?${query}`, { reset: true });
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], body: await res.body.text() };
}

describe('history answers streamed at once', () => {
  it('are refused 503 TPD_BUSY with Retry-After past historyAnswersMax, and taken again once one ends', async () => {
    limits.historyAnswersMax = 3;
    // Refusals before streaming free their slot.
    for (let i = 0; i < 5; i++) expect((await history(`from=${T0 + 5}&to=${T0}`)).status).toBe(400);
    await Promise.all([stuck('ndjson'), stuck('csv'), stuck('parquet')]);
    const busy = await history('glob=/s/p1');
    expect(busy.status).toBe(503);
    expect(busy.retryAfter).toBe(String(SERVER_LIMITS.historyBusyRetryAfterS));
    const { error } = JSON.parse(busy.body) as { error: { code: string; message: string } };
    expect(error.code).toBe('TPD_BUSY');
    expect(error.message).toContain('historyAnswersMax');
    // Other queries are not held back.
    expect((await request(`${server.url}/api/v1/paths`, { reset: true })).statusCode).toBe(200);
    // The stuck clients gone, a slot is free again.
    for (const s of sockets.splice(0)) s.destroy();
    const whole = await waitFor(async () => {
      const r = await history('glob=/s/p1');
      return r.status === 200 ? r : undefined;
    }, 5000, 'a history answer once the stuck clients left');
    expect(whole.body.trimEnd().split('\n')).toHaveLength(1000);
  }, 60_000);
});
