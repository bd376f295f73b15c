/**
 * One query against a day loaded as test/bench/promql.ts loads it, rotated into a sealed
 * file with its per-series sidecar, without a server or Prometheus: each run's wall and CPU
 * milliseconds. For profiling: node --cpu-prof --import tsx test/bench/promql-sidecar-profile.ts.
 *
 *   QUERY='sum by (job) (rate(bench_requests_total[5m]))' SERIES=10000 INTERVAL_S=15 node --max-old-space-size=8192 --import tsx test/bench/promql-sidecar-profile.ts
 *
 * DAY_DIR=<dir>: the day is written there once and kept; later runs with the same DAY_DIR
 * (and the same SERIES, INTERVAL_S, HOURS) open it instead of loading it again, so that
 * builds can be compared A/B on the same bytes in a few seconds a run. A sidecar of another
 * format version is rebuilt at open (as a server does).
 */
import { access, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import type { Value } from '../../protocol/value.js';
import { runQuery } from '../../server/promql/engine.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { SERVER_LIMITS } from '../../server/limits.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';

const SERIES = Number(process.env.SERIES ?? 1000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 60);
const HOURS = Number(process.env.HOURS ?? 24);
const RUNS = Number(process.env.RUNS ?? 5);
const STEP_S = Number(process.env.STEP_S ?? 120);
const QUERIES = (process.env.QUERY ?? 'sum by (job) (rate(bench_requests_total[5m]))|topk(5, bench_temperature)').split('|');
const T0_MS = 1_700_000_000_000;

// STREAM_BATCH=n: promqlStreamSeriesBatch for this run (series read and evaluated together).
if (process.env.STREAM_BATCH) (SERVER_LIMITS as { promqlStreamSeriesBatch: number }).promqlStreamSeriesBatch = Number(process.env.STREAM_BATCH);
// HELD_BYTES_MAX=n: seriesIndexHeldBytesMax for this run (0: sidecar chunks read span by span, never held).
if (process.env.HELD_BYTES_MAX) (STORAGE_LIMITS as { seriesIndexHeldBytesMax: number }).seriesIndexHeldBytesMax = Number(process.env.HELD_BYTES_MAX);
const DAY_DIR = process.env.DAY_DIR;
const dir = DAY_DIR ?? (await mkdtemp(join(tmpdir(), 'tapedeck-promql-profile-')));
if (DAY_DIR) await mkdir(DAY_DIR, { recursive: true });
const reuse = DAY_DIR !== undefined && (await access(join(dir, 'archive', 'series-index')).then(() => true, () => false));
const archive = await Archive.open(join(dir, 'archive'), { flushIntervalMs: 0 });
try {
  if (!reuse) await load();
  const buildStarted = performance.now();
  if (process.env.SIDECARS !== '0') await (await startSeriesIndex(archive)).whenIdle();
  const sidecar = { reused: reuse, buildS: Math.round(performance.now() - buildStarted) / 1000, bytes: await dirBytes(join(archive.dir, 'series-index')), segmentBytes: 0 };
  for (const f of archive.files) if (f.sealed) sidecar.segmentBytes += (await stat(join(archive.dir, f.name))).size;
  const out: Record<string, unknown> = {};
  for (const query of QUERIES) {
    const runs: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const c = process.cpuUsage();
      const t = performance.now();
      await runQuery(archive, { query, startMs: T0_MS, endMs: T0_MS + HOURS * 3_600_000, stepMs: STEP_S * 1000, lookbackMs: 300_000, timeoutMs: 600_000 });
      runs.push(Math.round((performance.now() - t) * 10) / 10);
      const used = process.cpuUsage(c);
      cpu.push(Math.round((used.user + used.system) / 100) / 10);
    }
    out[query] = { runsMs: runs, cpuMs: cpu };
  }
  console.log(JSON.stringify({ bench: 'promql-sidecar-profile', series: SERIES, intervalS: INTERVAL_S, hours: HOURS, sidecar, queries: out }));
} finally {
  await archive.close();
  if (!DAY_DIR) await rm(dir, { recursive: true, force: true });
}

/** The day, one batch per scrape as remote_write records it, rotated into one sealed file. */
async function load(): Promise<void> {
  const paths = Array.from({ length: SERIES }, (_, i) => seriesToPath({ name: i % 2 === 0 ? 'bench_requests_total' : 'bench_temperature', labels: { job: `job${i % 10}`, instance: `i${Math.floor(i / 2)}` } }));
  const steps = Math.floor((HOURS * 3600) / INTERVAL_S) + 1;
  for (let k = 0; k < steps; k++) {
    const updates: Array<[string, Value]> = paths.map((p, i) => [p, i % 2 === 0 ? k * ((i % 7) + 1) + ((k * 31 + i) % 5) : 20 + ((i * 13 + k * 7) % 100) / 10]);
    archive.writer!.append(updates, (T0_MS + k * INTERVAL_S * 1000) * 1000);
    if (archive.writer!.needsDrain) await archive.writer!.drain();
  }
  await archive.writer!.rotate();
}

async function dirBytes(d: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isFile()) n += (await stat(join(d, e.name))).size;
  return n;
}
