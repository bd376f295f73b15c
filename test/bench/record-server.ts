/**
 * The server side of `npm run bench:record`, run in a worker thread so that its event loop
 * is measured apart from the load generators on the main thread. Answers messages:
 * `start` (phase name: resets the event-loop delay histogram), `stats` (the histogram and
 * the recorder's counters), `flush` (resolves when everything recorded is committed),
 * `close`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const { dir } = workerData as { dir: string };
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  record: { spec: ['/**'], flush_interval: '1s' },
  publish: { bind: '127.0.0.1:0' },
  sources: [{ name: 'push', type: 'push' }],
}), { logger: pino({ level: 'silent' }) });
const RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
loop.enable();
// The histogram holds the whole interval between samples: the delay is what exceeds it.
const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e4) / 100 - RESOLUTION_MS);

parentPort!.on('message', async (m: { cmd: string; id: number }) => {
  const reply = (data: unknown): void => parentPort!.postMessage({ id: m.id, data });
  switch (m.cmd) {
    case 'start':
      loop.reset();
      return reply(null);
    case 'stats':
      return reply({
        eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
        recorder: srv.recorder!.stats,
        archiveBytes: srv.archive.totals().bytes,
      });
    case 'flush':
      await srv.recorder!.flush();
      return reply(null);
    case 'close':
      loop.disable();
      await srv.close();
      return reply(null);
  }
});
parentPort!.postMessage({ id: 0, data: { url: srv.url } });
