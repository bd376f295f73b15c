/**
 * The push ingest WebSocket is pinged like a session stream (server/routes/ws-liveness.ts): a
 * peer that answers no ping within wsPongTimeoutMs (gone without a FIN, or stopped reading)
 * is closed with 4008 `unresponsive` and cut after wsCloseGraceMs, so it does not hold the
 * socket for ever; a pusher that answers stays, and what it pushed is recorded and answered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { ingestWsServer, openWs, type IngestWsServer } from './helpers/ingest-ws-server.js';
import { until } from './helpers/until.js';

const T0 = 1_700_000_000_000_000;

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function start(): Promise<IngestWsServer> {
  const s = await ingestWsServer('tapedeck-hostile2-', { wsPingIntervalMs: 100, wsPongTimeoutMs: 300, wsCloseGraceMs: 300 });
  cleanup = s.close;
  return s;
}

function answer(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>)));
}

describe('the ingest WebSocket', () => {
  it('closes a peer that answers no ping with 4008 and cuts it; a pusher that answers stays and is recorded', async () => {
    const s = await start();
    const alive = await openWs(s.url, { autoPong: true });
    // Answers no ping, as a peer gone without a FIN: nothing of it reaches the server after its push.
    const silent = await openWs(s.url, { autoPong: false });
    const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    const pushed = answer(silent);
    silent.send(JSON.stringify({ ts: T0, updates: { '/w/silent': 1 } }));
    expect(await pushed).toMatchObject({ accepted_lines: 1, recorded_updates: 1 });
    await until(() => s.app.websocketServer.clients.size === 1, 10_000, 'the silent socket closed');
    expect(await silentClosed).toBe(CLOSE_CODES.unresponsive);
    // The one that answers pings is still open, many intervals later, and still taken.
    await new Promise((res) => setTimeout(res, 1000));
    expect(alive.readyState).toBe(WebSocket.OPEN);
    const later = answer(alive);
    alive.send(JSON.stringify({ ts: T0 + 1, updates: { '/w/alive': 2 } }));
    expect(await later).toMatchObject({ accepted_lines: 1, recorded_updates: 1 });
    alive.close();
    const c = s.archive.cursor();
    await s.archive.writer?.flush();
    await c.seek('end');
    expect([...(await c.state())]).toEqual([['/w/silent', 1], ['/w/alive', 2]]);
  });

  it('cuts a peer that neither answers pings nor the close', async () => {
    const s = await start();
    const ws = await openWs(s.url, { autoPong: false });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    // Reads nothing from here on: the close frame waits unread, so only the cut ends it.
    ws.pause();
    await until(() => s.app.websocketServer.clients.size === 0, 10_000, 'the socket cut');
    ws.resume();
    expect([CLOSE_CODES.unresponsive, CLOSE_CODES.abnormal]).toContain(await closed);
  });
});
