/**
 * Child process of test/s12-parts-crash.test.ts: reopens the archive given as argv[2]
 * (repairing it after the previous SIGKILL) with images and dictionaries cut into parts of
 * PARTS_TEST_BYTES, then appends partsBatch(n) at full speed from where the archive ends,
 * with frequent images and rotations. After each flush it prints `F <n>`: the first n
 * batches are durable. The parent kills it at random moments.
 */
import { Archive } from '../../storage/archive.js';
import { lowerPartBytes, partsBatch } from './s12-parts-workload.js';

lowerPartBytes();
const dir = process.argv[2] as string;
const a = await Archive.open(dir, { flushFrequencyPages: 8, flushIntervalMs: 5, imageFrequencyBytes: 24 * 1024, rotateSizeBytes: 160 * 1024 });
let n = a.totals().batches;
process.stdout.write(`READY ${n}\n`);
const w = a.writer!;
for (;;) {
  for (let j = 0; j < 20; j++, n++) {
    const b = partsBatch(n);
    w.append(b.updates, b.ts);
  }
  const upto = n;
  await w.flush();
  process.stdout.write(`F ${upto}\n`);
}
