/**
 * Child process for test/damage-kill-cold.test.ts: a server (in this process) over the archive
 * argv[2] with put/list/get hooks copying to and from argv[3] (test/fixtures/hooks), retention
 * removing every shipped file at once, and rotations every 150 batches. It appends the crash
 * workload (crashBatch) from where the archive ends, prints `D <n>` once batches 0..n-1 are
 * durable, runs retention after each rotation and reads back an early batch now and then
 * (fetching an evicted file), so SIGKILLs land in rotations, puts, evictions, fetches and
 * catalog updates. The parent kills it at random moments.
 */
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';
import { crashBatch } from './crash-workload.js';

const [dir, cold, fixtures] = process.argv.slice(2) as [string, string, string];
const hooks = resolve(fixtures);
const config = resolveConfig({
  archive_directory: dir,
  archive_cmds: {
    put: [join(hooks, 'put-copy.sh'), [cold]],
    list: [join(hooks, 'list-dir.sh'), [cold]],
    get: [join(hooks, 'get-copy.sh'), [cold]],
  },
  archive_hooks: { attempts: 1, list_interval: null },
  retention: { max_bytes: 1, check_interval: '1h', keep_fetched: '0s' },
  record: { flush_interval: '0' },
  publish: { bind: '127.0.0.1:0' },
  sources: [],
});
const s = await startServer(config, { logger: pino({ level: 'silent' }) });
const a = s.archive;
const w = a.writer!;
// Batch i is at crashBatch(0).ts + i ms: the archive's last batch says where to go on (its files may be remote).
let n = a.lastTs > 0 ? (a.lastTs - crashBatch(0).ts) / 1000 + 1 : 0;
process.stdout.write(`READY ${n}\n`);
for (let round = 0; ; round++) {
  for (let j = 0; j < 25; j++, n++) {
    const b = crashBatch(n);
    w.append(b.updates, b.ts);
  }
  const upto = n;
  await w.flush();
  process.stdout.write(`D ${upto}\n`);
  if (round % 6 === 5) {
    await w.rotate();
    await s.cold!.check();
  }
  if (round % 4 === 3 && n > 50) {
    // Read an early batch: its file is likely evicted, so this fetches it back.
    const c = a.cursor();
    await c.seek({ ts: crashBatch(Math.floor((n * (round % 7)) / 7)).ts });
    await c.next();
  }
}
