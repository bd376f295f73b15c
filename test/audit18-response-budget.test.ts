/**
 * Every poller of a process (http-json sources, prometheus-scrape targets) holds at most
 * sourceResponseBytesInFlightMax bytes of upstream responses together: each body alone may
 * be up to sourceResponseBytesMax (64 MiB), and 1 024 scrape targets answering that much at
 * once held 64 GiB. Here more sources than the budget holds read bodies of 60 MiB from
 * upstreams that send them and then stall: the bytes held never pass the budget, the poll
 * that would pass it fails naming the limit, and once the upstreams let go the bytes are
 * given back and the sources poll again.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVER_LIMITS } from '../server/limits.js';
import { responseBytesHeld } from '../server/sources/response-budget.js';
import { recordingServer } from './helpers/recording-server.js';
import { until } from './helpers/until.js';

const BODY = 60 * 1024 * 1024;
const SOURCES = Math.floor(SERVER_LIMITS.sourceResponseBytesInFlightMax / BODY) + 2;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('response bytes held by every poller together', () => {
  it('never pass sourceResponseBytesInFlightMax; the poll that would is refused naming it, and the bytes come back', { timeout: 180_000 }, async () => {
    expect(BODY).toBeLessThanOrEqual(SERVER_LIMITS.sourceResponseBytesMax);
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const sockets = new Set<Socket>();
    let stall = true;
    const upstream = createServer((_req, res) => {
      if (!stall) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BODY + 2) });
      // 60 MiB of white space, then nothing: the JSON never ends while `stall` holds.
      let sent = 0;
      const more = (): void => {
        while (sent < BODY) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
    });
    upstream.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      upstream.close(() => resolve());
    }));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
    const srv = await recordingServer({
      sources: Array.from({ length: SOURCES }, (_, i) => ({ name: `big${i}`, type: 'http-json', url, interval: '1s', timeout: '120s', backoff_initial: '200ms', backoff_max: '1s' })),
    });
    closers.push(() => srv.close());
    let most = 0;
    const sample = setInterval(() => { most = Math.max(most, responseBytesHeld()); }, 5);
    try {
      const errorsOf = async (): Promise<string[]> => {
        const r = (await (await fetch(`${srv.url}/api/v1/sources`)).json()) as { sources: Array<{ last_error: { message: string } | null }> };
        return r.sources.map((s) => s.last_error?.message ?? '').filter((m) => m !== '');
      };
      // Every source has either its 60 MiB in hand or been refused.
      // As many bodies held as the budget takes, and the sources past it refused.
      const fits = Math.floor(SERVER_LIMITS.sourceResponseBytesInFlightMax / BODY);
      await until(async () => responseBytesHeld() >= fits * BODY && (await errorsOf()).length >= SOURCES - fits, 120_000, 'the budget full and the other sources refused');
      const errors = await errorsOf();
      for (const m of errors) expect(m).toContain('sourceResponseBytesInFlightMax');
      expect(responseBytesHeld()).toBeLessThanOrEqual(SERVER_LIMITS.sourceResponseBytesInFlightMax);
      // The upstreams let go: the bytes are given back and every source polls again.
      stall = false;
      for (const s of sockets) s.destroy();
      await until(() => responseBytesHeld() === 0, 60_000, 'the held bytes given back');
      await until(async () => {
        const r = (await (await fetch(`${srv.url}/api/v1/sources`)).json()) as { sources: Array<{ last_success: string | null }> };
        return r.sources.every((s) => s.last_success !== null);
      }, 120_000, 'every source polled whole once the upstream answers');
      expect(most).toBeLessThanOrEqual(SERVER_LIMITS.sourceResponseBytesInFlightMax);
      expect(most).toBeGreaterThan(SERVER_LIMITS.sourceResponseBytesInFlightMax - BODY);
    } finally {
      clearInterval(sample);
    }
  });
});
