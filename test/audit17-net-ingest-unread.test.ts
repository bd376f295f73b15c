/**
 * A pusher on the ingest WebSocket that sends and never reads its answers cannot make the
 * server hold them without bound. Before, every answer went to the socket whatever waited
 * there: an answer to a message of bad lines lists a hundred of them (here about 300 KB for a
 * 300 KB message), and the socket's pings did not bound it either (a ping's deadline grows
 * with the bytes sent before it, and restarts while the server pauses the socket), so such a
 * client grew the server's memory by megabytes a second for tens of minutes. Now past
 * wsIngestAnswersWaitingBytesMax of answers waiting in the server the socket closes with
 * 4008 `unresponsive` (and is cut after wsCloseGraceMs), and the messages it sent that were
 * not yet ingested are dropped unanswered; a pusher that reads is never closed, and what it
 * was answered as recorded is in the archive. /health answers throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { WebSocket as ServerSocket } from 'ws';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { ingestWsServer, openWs, type IngestWsServer } from './helpers/ingest-ws-server.js';
import { until } from './helpers/until.js';

const T0 = 1_700_000_000_000_000;
const WAITING_MAX = 256 * 1024;
/** A line the push source refuses, quoting its 3000-character path in the rejection. */
const BAD_LINE = JSON.stringify({ updates: { [`/${'p'.repeat(3000)}`]: { $nope: 1 } } });
/** 100 bad lines: a 300 KB message answered by about 300 KB (the first hundred rejections are listed). */
const BAD_MESSAGE = Array.from({ length: 100 }, () => BAD_LINE).join('\n');
/** Messages a client sends at most (about 30 MB of answers: far past the kernels' buffers). */
const MESSAGES_MAX = 100;

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function start(): Promise<IngestWsServer> {
  // Pings a minute apart: only the answers waiting can close the socket here.
  const s = await ingestWsServer('tapedeck-audit17-', { wsPingIntervalMs: 60_000, wsPongTimeoutMs: 60_000, wsCloseGraceMs: 300, wsIngestAnswersWaitingBytesMax: WAITING_MAX });
  cleanup = s.close;
  return s;
}

async function healthMs(app: FastifyInstance): Promise<number> {
  const t0 = Date.now();
  const res = await app.inject({ method: 'GET', url: '/health' });
  return res.statusCode === 200 ? Date.now() - t0 : Infinity;
}

describe('a pusher that does not read its answers', () => {
  it('is closed 4008 once its answers waiting pass wsIngestAnswersWaitingBytesMax; what waits stays bounded', async () => {
    const s = await start();
    const ws = await openWs(s.url);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.pause(); // reads nothing from here on
    const server = [...s.app.websocketServer.clients][0] as ServerSocket;
    let waitingMax = 0;
    const sample = setInterval(() => (waitingMax = Math.max(waitingMax, server.bufferedAmount)), 5);
    let sent = 0;
    // As fast as the server reads (it stops reading past wsIngestPendingMessagesMax pending).
    while (sent < MESSAGES_MAX && server.readyState === server.OPEN) {
      if (ws.bufferedAmount < 2 * BAD_MESSAGE.length) {
        ws.send(BAD_MESSAGE);
        sent++;
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    await until(() => s.app.websocketServer.clients.size === 0, 15_000, 'the server\'s socket closed and cut');
    clearInterval(sample);
    expect(await healthMs(s.app)).toBeLessThan(5_000);
    // The bound, plus the one answer that passed it (about 300 KB).
    expect(waitingMax).toBeLessThanOrEqual(WAITING_MAX + 2 * BAD_MESSAGE.length);
    expect(sent, 'closed before the client had sent everything').toBeLessThan(MESSAGES_MAX);
    ws.resume();
    // Cut before or after the close frame reached the client's kernel: either way it is closed.
    expect([CLOSE_CODES.unresponsive, CLOSE_CODES.abnormal]).toContain(await closed);
  }, 60_000);

  it('is not closed while it reads, however many answers it is sent, and what it was answered is recorded', async () => {
    const s = await start();
    const ws = await openWs(s.url);
    const answers: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => answers.push(JSON.parse(String(d)) as Record<string, unknown>));
    for (let i = 0; i < 60; i++) {
      ws.send(BAD_MESSAGE);
      ws.send(JSON.stringify({ ts: T0 + i, updates: { '/w/read': i } }));
    }
    await until(() => answers.length === 120 || ws.readyState !== ws.OPEN, 30_000, 'every message answered');
    expect(ws.readyState).toBe(ws.OPEN);
    expect(answers.filter((a) => a.recorded_updates === 1)).toHaveLength(60);
    ws.close();
    await s.archive.writer?.flush();
    const c = s.archive.cursor();
    await c.seek('end');
    expect([...(await c.state())]).toEqual([['/w/read', 59]]);
  }, 60_000);
});
