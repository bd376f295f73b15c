/**
 * Child process for the crash test: reopens the archive given as argv[2] (repairing it
 * after the previous SIGKILL), then appends deterministic batches at full speed,
 * continuing from where the archive ends. After each explicit flush completes it prints
 * `F <n>`: the first n batches are durable. The parent kills it at random moments.
 */
import { Archive } from '../../storage/archive.js';
import { crashBatch } from './crash-workload.js';

const dir = process.argv[2] as string;
const a = await Archive.open(dir, { flushFrequencyPages: 8, flushIntervalMs: 5, imageFrequencyBytes: 64 * 1024, rotateSizeBytes: 256 * 1024 });
let n = a.totals().batches;
process.stdout.write(`READY ${n}\n`);
const w = a.writer!;
for (;;) {
  for (let j = 0; j < 50; j++, n++) {
    const b = crashBatch(n);
    w.append(b.updates, b.ts);
  }
  const upto = n;
  await w.flush();
  process.stdout.write(`F ${upto}\n`);
}
