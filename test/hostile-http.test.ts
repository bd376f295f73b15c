/**
 * Requests that arrive slowly (slowloris) cannot hold connections for ever: headers or a
 * body trickled byte by byte (with a Content-Length or chunked) get 408 TPD_REQUEST_TIMEOUT
 * in our error shape and the connection closes, while /health keeps answering. A WebSocket
 * stream, once upgraded, is not bounded by these timeouts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { Batch } from '../protocol/value.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';

const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;
/** A trickling client gives up by itself after this (the server must have closed well before). */
const CLIENT_PATIENCE_MS = 15_000;

const batches: Batch[] = Array.from({ length: 5 }, (_, i) => ({ ts: 1_700_000_000_000_000 + i * 1_000_000, updates: [['/a', i]] }));

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(): Promise<TestServer> {
  server = await startServer(batches, { httpTimeouts: { httpHeadersTimeoutMs: HEADERS_TIMEOUT_MS, httpRequestTimeoutMs: REQUEST_TIMEOUT_MS, httpTimeoutsCheckMs: 100 } });
  return server;
}

/** Sends `head` at once, then one byte of `drip` every 100 ms; resolves with what came back once the server closes. */
function trickle(url: string, head: string, drip: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let got = '';
    let i = 0;
    socket.write(head);
    const timer = setInterval(() => {
      if (!socket.destroyed && !socket.writableEnded) socket.write(drip[i++ % drip.length] as string);
    }, 100);
    const patience = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${CLIENT_PATIENCE_MS} ms; got ${JSON.stringify(got.slice(0, 200))}`));
    }, CLIENT_PATIENCE_MS);
    socket.on('data', (d) => (got += String(d)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(patience);
      resolve(got);
    });
  });
}

async function healthAnswers(s: TestServer): Promise<boolean> {
  const res = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  return res?.status === 200;
}

describe('slow requests', () => {
  const cases: Array<[string, string, string]> = [
    ['its headers', 'GET /health HTTP/1.1\r\nHost: x\r\n', 'X-Slow: yes\r\n'],
    ['a body (Content-Length)', 'POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{', ' '],
    ['a body (chunked)', 'POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n', '1\r\n \r\n'],
  ];
  for (const [what, head, drip] of cases) {
    it(`closes a connection trickling ${what} byte by byte with 408 TPD_REQUEST_TIMEOUT; /health answers meanwhile`, async () => {
      const s = await start();
      const answer = trickle(s.url, head, drip);
      expect(await healthAnswers(s)).toBe(true);
      const got = await answer;
      expect(got).toMatch(/^HTTP\/1\.1 408 /);
      expect(got).toContain('"TPD_REQUEST_TIMEOUT"');
      expect(await healthAnswers(s)).toBe(true);
    }, 30_000);
  }

  it('closes a connection that never sends a byte once httpHeadersTimeoutMs has passed; /health answers meanwhile', async () => {
    const s = await start();
    const { port } = new URL(s.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const opened = Date.now();
    socket.resume(); // flowing, so the server's close is seen
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - opened)));
    socket.on('error', () => undefined);
    const patience = new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), CLIENT_PATIENCE_MS));
    expect(await healthAnswers(s)).toBe(true);
    const after = await Promise.race([closed, patience]);
    socket.destroy();
    expect(after).not.toBe('still open');
    // Node's headers timeout runs from the connection's start, not from its first byte.
    expect(after as number).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
  }, 30_000);

  it('leaves an upgraded session stream open past the request timeout', async () => {
    const s = await start();
    const id = (await api(s.url, 'POST', '/api/v1/sessions', { state: 'pause' })).body.id as string;
    const ws = await TestWs.open(`${s.url}/api/v1/sessions/${id}/stream`);
    await ws.next((f) => f.type === 'controls');
    await new Promise((r) => setTimeout(r, REQUEST_TIMEOUT_MS + 1_000));
    expect(ws.closed).toBe(false);
    ws.send({ type: 'control', set: { pos: 'beginning' } });
    expect((await ws.next((f) => f.type === 'state')).type).toBe('state');
    ws.close();
  }, 30_000);
});
