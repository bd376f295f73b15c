/**
 * The server side of `npm run bench:record`, run in a child process (`fork`) so that its
 * event loop and GC are measured apart from the load generators. Answers IPC messages:
 * `start` (phase name: resets the event-loop delay histogram), `stats` (the histogram and
 * the recorder's counters), `flush` (resolves when everything recorded is committed),
 * `baseline` (starts a bare node:http server answering the given body: the ceiling),
 * `close`.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const dir = process.argv[2] as string;
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  record: { spec: ['/**'], flush_interval: '1s' },
  // The load comes from one address, so the per-client rate limit (2000/s by default) would
  // answer most requests with 429: it stays on (its cost is measured) but high enough.
  publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
  sources: [{ name: 'push', type: 'push' }],
}), { logger: pino({ level: 'silent' }) });
const RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
loop.enable();
// The histogram holds the whole interval between samples: the delay is what exceeds it.
const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e4) / 100 - RESOLUTION_MS);

// GC pauses of this thread's heap during a phase (count, total and longest, ms).
const gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

let bare: Server | undefined;
process.on('message', async (m: { cmd: string; id: number; arg?: unknown }) => {
  const reply = (data: unknown): void => void process.send?.({ id: m.id, data });
  switch (m.cmd) {
    case 'start':
      loop.reset();
      Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0 });
      return reply(null);
    case 'stats':
      return reply({
        eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
        gcPauses: { count: gc.count, totalMs: Math.round(gc.totalMs * 10) / 10, maxMs: Math.round(gc.maxMs * 10) / 10 },
        recorder: srv.recorder!.stats,
        archiveBytes: srv.archive.totals().bytes,
      });
    case 'flush':
      await srv.recorder!.flush();
      return reply(null);
    case 'baseline': {
      // The machine's ceiling: the same answer from a server that does nothing else.
      const body = Buffer.from(String(m.arg));
      bare = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
        res.end(body);
      });
      await new Promise<void>((resolve) => bare?.listen(0, '127.0.0.1', resolve));
      const addr = bare.address();
      return reply({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` });
    }
    case 'close':
      bare?.close();
      bare?.closeAllConnections();
      loop.disable();
      await srv.close();
      reply(null);
      process.disconnect();
      return;
  }
});
process.send?.({ id: 0, data: { url: srv.url } });
