/**
 * The first read of one series through a sealed file's sidecar, series after series: CPU and
 * wall milliseconds per series (p50, p90), as a fresh query of a series not yet in the series
 * cache pays them. Over a day written by promql-sidecar-profile.ts (its DAY_DIR/archive):
 *
 *   node --import tsx test/bench/sidecar-first-read.ts --archive /tmp/day/archive [--series 200]
 *
 * The sidecars are those in the archive's series-index/ (built with the build of the tree
 * that wrote them: delete the directory and run once with --build to build them with this one).
 * The first 20 series warm the code and are not counted. Prints one JSON object.
 */
import { parseArgs } from 'node:util';
import { Archive } from '../../storage/index.js';
import { readSeries } from '../../storage/series-read.js';
import { startSeriesIndex } from '../../server/series-index.js';

const { values: args } = parseArgs({
  options: { archive: { type: 'string' }, series: { type: 'string', default: '200' }, build: { type: 'boolean', default: false } },
});
if (!args.archive) throw new Error('--archive: a day written by test/bench/promql-sidecar-profile.ts (DAY_DIR/archive)');
const WARM = 20;
const a = await Archive.open(args.archive, { readonly: !args.build });
const built0 = process.cpuUsage();
const store = await startSeriesIndex(a);
await store.whenIdle();
const buildCpuMs = (process.cpuUsage(built0).user + process.cpuUsage(built0).system) / 1000;
const f = a.files.find((x) => x.sealed);
if (!f || f.firstTs === null || f.lastTs === null) throw new Error('no sealed file with batches');
const ids = a.paths.map((_, i) => i).filter((i) => i % 37 === 5).slice(0, WARM + Number(args.series));
const cpu: number[] = [];
const wall: number[] = [];
let samples = 0;
for (const [k, id] of ids.entries()) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for await (const pieces of readSeries(a, [id], f.firstTs - 1, f.lastTs, { sidecars: true })) for (const p of pieces) samples += p.to - p.from;
  const c = process.cpuUsage(c0);
  if (k >= WARM) {
    cpu.push((c.user + c.system) / 1000);
    wall.push(performance.now() - t0);
  }
}
const pct = (x: number[], p: number): number => Number(([...x].sort((u, v) => u - v)[Math.min(x.length - 1, Math.floor(x.length * p))] as number).toFixed(3));
const out = {
  bench: 'sidecar-first-read',
  archive: args.archive,
  series: cpu.length,
  samplesRead: samples,
  sidecarReads: store.stats.reads,
  fallbacks: store.stats.fallbacks,
  built: args.build ? { sidecars: store.stats.built, cpuMs: Math.round(buildCpuMs) } : undefined,
  cpuMsPerSeries: { p50: pct(cpu, 0.5), p90: pct(cpu, 0.9) },
  wallMsPerSeries: { p50: pct(wall, 0.5), p90: pct(wall, 0.9) },
  loadavg: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(2))),
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
await a.close();
