/**
 * How WebSocket failures are logged. A client breaking the WebSocket protocol (a frame over
 * the size limit, text that is not UTF-8) is the client's fault: ws closes with its own code
 * (1009, 1007) and the server logs one info line without a stack. A fault on the server's
 * side of a socket stays an error with its stack.
 *
 * A real server on a free port, a pino logger writing into an array, real clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { api, startServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';

/** Small, so an oversize frame is cheap to send. */
const WS_MAX_PAYLOAD_BYTES = 1024;

interface LogLine {
  level: number;
  msg?: string;
  code?: string;
  err?: { stack?: string; message?: string };
  stack?: string;
  [k: string]: unknown;
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(): Promise<{ srv: TestServer; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  const batches = [{ ts: 1_000_000, updates: [['/a', 1]] as Array<[string, number]> }];
  const srv = await startServer(batches, { loggerInstance: pino({ level: 'info' }, sink), wsMaxPayloadBytes: WS_MAX_PAYLOAD_BYTES });
  server = srv;
  return { srv, lines };
}

/** A stream of a new paused session, open. */
async function openStream(url: string): Promise<WebSocket> {
  const created = await api(url, 'POST', '/api/v1/sessions', { state: 'pause' });
  expect(created.status).toBe(201);
  const ws = new WebSocket(url.replace(/^http/, 'ws') + (created.body as { stream: string }).stream);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
}

/** The line about ws's error `code`, wherever the logger put the code. */
const about = (code: string) => (l: LogLine): boolean => l.code === code || (l.err as { code?: string } | undefined)?.code === code;

/** Anything at warn or above, or carrying a stack: what an operator would be paged for. */
const loud = (l: LogLine): boolean => l.level >= 40 || l.err?.stack !== undefined || l.stack !== undefined;

describe('WebSocket error logging', () => {
  it('logs an oversize frame at info without a stack, and the client gets 1009', async () => {
    const { srv, lines } = await start();
    const ws = await openStream(srv.url);
    const closed = closeCode(ws);
    ws.on('error', () => {}); // the close is what we look at
    ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(WS_MAX_PAYLOAD_BYTES * 2) }));
    expect(await closed).toBe(CLOSE_CODES.tooBig);
    await until(() => lines.some(about('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')), 10_000, 'the log line of the oversize frame');
    const line = lines.find(about('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')) as LogLine;
    expect(line.level).toBe(30);
    expect(typeof line.message).toBe('string');
    expect(line.err).toBeUndefined();
    expect(line.stack).toBeUndefined();
    expect(lines.filter(loud)).toEqual([]);
  });

  it('logs text that is not UTF-8 at info without a stack, and the client gets 1007', async () => {
    const { srv, lines } = await start();
    const ws = await openStream(srv.url);
    const closed = closeCode(ws);
    ws.on('error', () => {});
    ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await closed).toBe(CLOSE_CODES.badPayload);
    await until(() => lines.some(about('WS_ERR_INVALID_UTF8')), 10_000, 'the log line of the bad text');
    const line = lines.find(about('WS_ERR_INVALID_UTF8')) as LogLine;
    expect(line.level).toBe(30);
    expect(line.err).toBeUndefined();
    expect(lines.filter(loud)).toEqual([]);
  });

  it('keeps a server-side socket fault at error level with its stack, and ends the socket', async () => {
    const { srv, lines } = await start();
    const ws = await openStream(srv.url);
    const closed = closeCode(ws);
    ws.on('error', () => {});
    // A fault of the server's own socket (not one ws raises for client input): emitted on
    // the server's side, it goes through the plugin's error handler like any socket error.
    const [serverSide] = [...srv.app.websocketServer.clients];
    expect(serverSide).toBeDefined();
    serverSide?.emit('error', Object.assign(new Error('the server broke'), { code: 'ESOMETHING' }));
    expect(await closed).toBe(CLOSE_CODES.abnormal);
    await until(() => lines.some((l) => l.level === 50), 10_000, 'the error line');
    const line = lines.find((l) => l.level === 50) as LogLine;
    expect(line.err?.message).toBe('the server broke');
    expect(line.err?.stack).toContain('the server broke');
  });
});
