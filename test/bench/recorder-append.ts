/**
 * The recorder's own cost: batches already decoded (as a push line or a Kafka message gives
 * them) through Recorder.record into an archive, no HTTP, no parsing. Prints one JSON object
 * with updates per CPU-second of this process (process.cpuUsage: steady under load, where
 * wall time is not), for A/B runs of the recorder and the writer:
 *
 *   node --import tsx test/bench/recorder-append.ts [--updates 5000000] [--paths 1000]
 *     [--batch 100] [--spec /**] [--values numbers|mixed] [--dir /tmp/x]
 *
 * The first tenth of the batches warms the JIT up and is not counted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Archive } from '../../storage/archive.js';
import { Recorder } from '../../server/recorder.js';
import type { Update, Value } from '../../protocol/value.js';
import { rng } from '../helpers/workload.js';

const { values: args } = parseArgs({
  options: {
    updates: { type: 'string', default: '5000000' },
    paths: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '100' },
    spec: { type: 'string', default: '/**' },
    values: { type: 'string', default: 'numbers' },
    dir: { type: 'string' },
  },
});
const UPDATES = Number(args.updates);
const PATHS = Number(args.paths);
const BATCH = Number(args.batch);
const SPEC = args.spec.split(',');
/** Distinct batches built before timing, used in turn (their values differ, their paths repeat). */
const BATCHES_BUILT = 200;

const r = rng(11);
const paths = Array.from({ length: PATHS }, (_, i) => `/bench/sw-${String(i >> 3).padStart(4, '0')}/m${i & 7}`);
function valueFor(i: number): Value {
  const x = Math.round(r() * 100000) / 100;
  if (args.values === 'numbers') return x;
  // One value in ten is not a number: a block of these is stored as generic values.
  return i % 10 === 0 ? `s${Math.floor(x)}` : x;
}
const built: Update[][] = [];
for (let b = 0, k = 0; b < BATCHES_BUILT; b++) {
  const u: Update[] = [];
  for (let i = 0; i < BATCH; i++, k++) u.push([paths[k % PATHS] as string, valueFor(k)]);
  built.push(u);
}

const dir = args.dir ?? (await mkdtemp(join(tmpdir(), 'tapedeck-bench-recorder-')));
const archive = await Archive.open(dir, { flushIntervalMs: 0 });
const rec = await Recorder.open(archive, { spec: SPEC });
const batches = Math.ceil(UPDATES / BATCH);
const warm = Math.ceil(batches / 10);
let ts = 1_700_000_000_000_000;
for (let b = 0; b < warm; b++) await rec.record('bench', built[b % BATCHES_BUILT] as Update[], (ts += 1000));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let b = 0; b < batches; b++) await rec.record('bench', built[b % BATCHES_BUILT] as Update[], (ts += 1000));
await rec.flush();
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
const updates = batches * BATCH;
const bytes = archive.totals().bytes;
await archive.close();
if (!args.dir) await rm(dir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({
  bench: 'recorder-append',
  options: { updates, paths: PATHS, batch: BATCH, spec: SPEC, values: args.values },
  secs: Math.round(secs * 1000) / 1000,
  updatesPerSec: Math.round(updates / secs),
  cpuSecs: Math.round(cpuSecs * 1000) / 1000,
  updatesPerCpuSec: Math.round(updates / cpuSecs),
  bytesPerUpdate: Math.round((bytes / updates) * 1000) / 1000,
})}\n`);
