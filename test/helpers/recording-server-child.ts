/**
 * Child process for the kill tests (durable, prom-remote-write-kill): a real recording server
 * (server/main.ts) with one source of the type given as argv[3] (`push`, named push, or
 * `remote_write`, named prom) over the archive given as argv[2], reopened (and repaired)
 * after the previous SIGKILL. argv[4] is the flush interval: 1h when absent (no timed flush,
 * and no size-triggered commit for small loads, so only an `ack=durable` write or a graceful
 * close commits); a short one commits parts of a request between its batches, as a busy
 * archive does. argv[5], when given, is record.rotate_size: files rotate and the server
 * compacts each in the background (storage/live-compact.ts) while the kills go on. Prints `READY <url>` once listening; the parent kills it with SIGKILL
 * (test/helpers/recording-child.ts).
 */
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const NAMES: Record<string, string> = { push: 'push', remote_write: 'prom' };

const dir = process.argv[2] as string;
const type = process.argv[3] as string;
const name = NAMES[type];
if (name === undefined) throw new Error(`recording-server-child: source type ${type} is not one of ${Object.keys(NAMES).join(', ')}`);
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  // argv[5]: rotate_size (rotations, and the server's compaction of each rotated file, happen between the kills).
  record: { spec: ['/**'], flush_interval: process.argv[4] ?? '1h', ...(process.argv[5] === undefined ? {} : { rotate_size: Number(process.argv[5]) }) },
  // The writers all come from one address: the per-client rate limit must not answer 429.
  publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
  sources: [{ name, type }],
}), { logger: pino({ level: 'silent' }) });
process.stdout.write(`READY ${srv.url}\n`);
