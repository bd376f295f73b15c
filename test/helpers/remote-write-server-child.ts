/**
 * Child process for the remote-write kill test: a real recording server (server/main.ts)
 * with one remote_write source (durable acknowledgements, the default) over the archive
 * given as argv[2], reopened (and repaired) after the previous SIGKILL. argv[3] is the
 * flush interval: a short one commits parts of a request between its batches, as a busy
 * archive does. Prints `READY <url>` once listening; the parent kills it with SIGKILL.
 */
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const dir = process.argv[2] as string;
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  record: { spec: ['/**'], flush_interval: process.argv[3] ?? '1h' },
  publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
  sources: [{ name: 'prom', type: 'remote_write' }],
}), { logger: pino({ level: 'silent' }) });
process.stdout.write(`READY ${srv.url}\n`);
