/**
 * Child process for the durable-ack tests: a real recording server (server/main.ts) with one
 * push source over the archive given as argv[2], reopened (and repaired) after the previous
 * SIGKILL. No timed flush (flush_interval 1h) and no size-triggered commit for small loads, so
 * only an `ack=durable` push or a graceful close commits. Prints `READY <url>` once listening;
 * the parent kills it with SIGKILL.
 */
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const dir = process.argv[2] as string;
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  record: { spec: ['/**'], flush_interval: process.argv[3] ?? '1h' },
  // The pushers all come from one address: the per-client rate limit must not answer 429.
  publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
  sources: [{ name: 'push', type: 'push' }],
}), { logger: pino({ level: 'silent' }) });
process.stdout.write(`READY ${srv.url}\n`);
