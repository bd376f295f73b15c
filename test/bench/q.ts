import { Archive } from '../../storage/archive.js';
import { mkdtempSync, rmSync } from 'node:fs';
const dir = mkdtempSync('/tmp/tpq-');
const a = await Archive.open(dir, {});
const paths = Array.from({ length: 1000 }, (_, i) => `/bench/dev-${i % 50}/metric-${i}`);
const size = 100;
let v = 0; let p = 0;
const pool = Array.from({ length: 1000 }, () => Array.from({ length: size }, () => { const u: [string, number] = [paths[p]!, (v += 0.37)]; p = (p + 1) % 1000; return u; }));
const batchesN = 100_000;
const t0 = performance.now();
for (let b = 0; b < batchesN; b++) {
  a.writer!.append(pool[b % 1000]!);
  if (a.writer!.needsDrain) await a.writer!.drain();
}
await a.writer!.flush();
const s = (performance.now() - t0) / 1000;
console.log(size, Math.round(batchesN * size / s), 'upd/s');
await a.close();
rmSync(dir, { recursive: true });
