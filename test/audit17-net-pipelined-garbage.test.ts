/**
 * Garbage pipelined behind a request whose answer is streaming. Node's HTTP parser reads the
 * next request while the first answer is still being written, and the server's handler of
 * malformed requests (server/app.ts clientErrorHandler) wrote its 400 answer to the socket at
 * once: into the middle of the first answer's chunked body (a history export), where a client
 * reads it as body bytes. Now, with an answer under way (its headers sent), the connection is
 * only cut, as Node's own handler does; garbage on an idle connection, or after an answer that
 * is complete, is still answered 400 TPD_BAD_REQUEST in the error shape. /health answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { Batch, Update } from '../protocol/value.js';
import { startServer, type TestServer } from './helpers/server.js';

/** A history answer of about 16 MiB: far more than loopback's socket buffers take at once. */
const batches: Batch[] = Array.from({ length: 16 }, (_, i) => ({ ts: 1_700_000_000_000_000 + i * 1_000_000, updates: [[`/big/${i}`, 'v'.repeat(1024 * 1024)] as Update] }));
const GARBAGE = 'GARBAGE \x01\x02 NOT HTTP\r\n\r\n';
const PATIENCE_MS = 20_000;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * Sends `request`, then, once the first answer's headers have come, `GARBAGE` on the same
 * connection, pausing its reading meanwhile so that a long answer is still under way; reads
 * everything until the server closes.
 */
function pipelined(url: string, request: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    let sent = false;
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (sent || !Buffer.concat(chunks).includes('\r\n\r\n')) return;
      sent = true;
      socket.pause();
      socket.write(GARBAGE);
      setTimeout(() => socket.resume(), 300);
    });
    const patience = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${PATIENCE_MS} ms`));
    }, PATIENCE_MS);
    socket.on('close', () => {
      clearTimeout(patience);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(request);
  });
}

async function healthAnswers(s: TestServer): Promise<boolean> {
  const res = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  return res?.status === 200;
}

describe('garbage pipelined behind a request', () => {
  it('whose answer is streaming: the connection is cut, no answer is written into the body', async () => {
    server = await startServer(batches);
    const got = await pipelined(server.url, 'GET /api/v1/history?glob=/big/** HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    // Before: "HTTP/1.1 400 Bad Request ... TPD_BAD_REQUEST" came within the chunked body.
    expect(got.indexOf('HTTP/1.1 ', 1)).toBe(-1);
    expect(got).not.toContain('TPD_BAD_REQUEST');
    expect(await healthAnswers(server)).toBe(true);
  }, 60_000);

  it('whose answer is complete: the garbage is answered 400 TPD_BAD_REQUEST after it', async () => {
    server = await startServer(batches);
    // Sent once the answer to /health has come whole (it is one small write).
    const got = await pipelined(server.url, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    const second = got.indexOf('HTTP/1.1 ', 1);
    expect(second).toBeGreaterThan(0);
    expect(got.slice(second)).toMatch(/^HTTP\/1\.1 400 /);
    expect(got.slice(second)).toContain('"TPD_BAD_REQUEST"');
    expect(await healthAnswers(server)).toBe(true);
  }, 60_000);
});
