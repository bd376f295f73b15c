/**
 * query_range latency over a day of series, Tapedeck beside a real Prometheus (2.42, on
 * this machine) loaded with the same samples: p50 and p99 per query, one JSON object.
 *
 *   npm run bench:promql                         # defaults below (scaled down, see docs/performance.md)
 *   SERIES=10000 INTERVAL_S=15 npm run bench:promql   # the issue's full size: 57.6 M samples
 *
 * Half the series are counters (bench_requests_total), half gauges (bench_temperature);
 * labels job (10 values) and instance. Tapedeck gets the day through its storage API (one
 * batch per timestamp, as remote_write records them); Prometheus through its remote-write
 * receiver, in time order. Both then answer the same queries over HTTP (form POST, as
 * Grafana sends them), RUNS times each after one warm-up. Tapedeck's day is one sealed file
 * (rotated after loading) with its per-series sidecar built before the queries; SIDECARS=0
 * leaves the sidecar out (reads scan the blocks).
 *
 * Tapedeck serves from a process of its own (test/bench/promql-server.ts), as Prometheus
 * does, and both servers' CPU is read from /proc (10 ms ticks); TAPEDECK_PROCESS=same serves
 * from the benchmark's own process instead (the figures before 2026-12-03 16:00: its CPU
 * then counts the client and the process carries the garbage of loading the day).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { sidecarDir } from '../../storage/series-index/build.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import type { Value } from '../../protocol/value.js';
import { startReceiver } from '../helpers/promql-peers.js';
import { encodeLabels, postWrite, writeRequestBody } from './prom-write-body.js';

const SERIES = Number(process.env.SERIES ?? 1000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 60);
const HOURS = Number(process.env.HOURS ?? 24);
const RUNS = Number(process.env.RUNS ?? 10);
const STEP_S = Number(process.env.STEP_S ?? 120);
/** Runs before the RUNS timed ones, on both servers (the first is reported as firstMs); more lets a fresh Node process's JIT settle. */
const WARMUP = Math.max(1, Number(process.env.WARMUP ?? 1));
/** SIDECARS=0: no per-series sidecar, every read scans the blocks (the figures before sidecars). */
const SIDECARS = process.env.SIDECARS !== '0';
/** child (default): Tapedeck serves from a process of its own; same: from this one. */
/** ONLY=selector,rate: time only these queries (names as in the output), e.g. for the one-series figures in a shorter run. */
const ONLY = process.env.ONLY?.split(',');
const SAME_PROCESS = process.env.TAPEDECK_PROCESS === 'same';
const T0_MS = 1_700_000_000_000;
const SPAN_MS = HOURS * 3_600_000;

interface Def {
  labels: Record<string, string>;
  path: string;
  counter: boolean;
}

function defs(): Def[] {
  const out: Def[] = [];
  for (let i = 0; i < SERIES; i++) {
    const counter = i % 2 === 0;
    const name = counter ? 'bench_requests_total' : 'bench_temperature';
    const labels = { job: `job${i % 10}`, instance: `i${Math.floor(i / 2)}` };
    out.push({ labels: { __name__: name, ...labels }, path: seriesToPath({ name, labels }), counter });
  }
  return out;
}

/** The value of series i at step k: deterministic, counters rising, gauges wandering. */
function valueAt(i: number, k: number, counter: boolean): number {
  return counter ? k * ((i % 7) + 1) + ((k * 31 + i) % 5) : 20 + ((i * 13 + k * 7) % 100) / 10;
}

/** Progress on stderr (the 10 000-series run takes many minutes); the result is stdout's one JSON line. */
function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Timing {
  /** The first run (Tapedeck: its series cache is cold; Prometheus: its page cache may be warm). */
  firstMs: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU the server spent per run (user + system): what the query costs, whatever else runs on the machine. */
  cpuP50Ms: number;
  cpuP99Ms: number;
  series: number;
}

/** CPU milliseconds a server has used so far. */
type CpuClock = () => Promise<number>;

/** This process (Tapedeck serves in it; the client's share of a run is small and counted against Tapedeck). */
const ownCpu: CpuClock = () => {
  const u = process.cpuUsage();
  return Promise.resolve((u.user + u.system) / 1000);
};

/** Another process, from /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms). */
function procCpu(pid: number): CpuClock {
  return async () => {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
}

/** The pid of the Prometheus listening on `url` (test/helpers/prometheus.ts does not expose it). */
async function prometheusPid(url: string): Promise<number> {
  const port = new URL(url).port;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('prometheus') && cmd.includes(`--web.listen-address=127.0.0.1:${port}`)) return Number(name);
  }
  throw new Error(`no Prometheus process listens on ${url}`);
}

/** Times RUNS runs after a first one; a refused query is reported, not thrown. */
async function timeQuery(url: string, query: string, cpu: CpuClock): Promise<Timing | { error: string }> {
  try {
    return await timeRuns(url, query, cpu);
  } catch (err) {
    return { error: (err as Error).message.slice(0, 300) };
  }
}

async function timeRuns(url: string, query: string, cpu: CpuClock): Promise<Timing> {
  const body = new URLSearchParams({ query, start: String(T0_MS / 1000), end: String((T0_MS + SPAN_MS) / 1000), step: String(STEP_S) });
  const once = async (): Promise<{ ms: number; cpuMs: number; series: number }> => {
    const c = await cpu();
    const t = performance.now();
    const r = await fetch(`${url}/api/v1/query_range`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const j = (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    if (j.status !== 'success') throw new Error(`${url}: ${query}: ${j.error}`);
    const ms = performance.now() - t;
    return { ms, cpuMs: (await cpu()) - c, series: j.data?.result.length ?? 0 };
  };
  const warm = await once();
  for (let i = 1; i < WARMUP; i++) await once();
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await once();
    times.push(run.ms);
    cpus.push(run.cpuMs);
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  return {
    firstMs: round(warm.ms),
    p50Ms: round(percentile(times, 50)),
    p99Ms: round(percentile(times, 99)),
    cpuP50Ms: round(percentile(cpus, 50)),
    cpuP99Ms: round(percentile(cpus, 99)),
    series: warm.series,
  };
}

/** Builds the sealed day's sidecar as the server does after a rotation; its time, size, and the segment's size. */
async function buildSidecars(archive: Archive): Promise<{ buildS: number; bytes: number; segmentBytes: number }> {
  const t = performance.now();
  const store = await startSeriesIndex(archive);
  await store.whenIdle();
  if (store.stats.built !== 1) throw new Error(`sidecar build failed: ${JSON.stringify(store.stats)}`);
  let bytes = 0;
  for (const name of await readdir(sidecarDir(archive))) bytes += (await stat(join(sidecarDir(archive), name))).size;
  const segmentBytes = archive.files.filter((f) => f.sealed).reduce((n, f) => n + f.committedBytes, 0);
  return { buildS: Math.round((performance.now() - t) / 100) / 10, bytes, segmentBytes };
}

interface Served {
  url: string;
  cpu: CpuClock;
  stop: () => Promise<void>;
}

async function serveHere(archive: Archive): Promise<Served> {
  const app = await buildServer({ archive });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, cpu: ownCpu, stop: () => app.close() };
}

/** The archive closed here and served by test/bench/promql-server.ts in a child process (it opens the same directory). */
async function serveInChild(archive: Archive): Promise<Served> {
  const dir = archive.dir;
  await archive.close();
  const child: ChildProcess = spawn(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', new URL('./promql-server.ts', import.meta.url).pathname, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`promql-server exited (${code}) before listening`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    cpu: procCpu(child.pid as number),
    stop: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const all = defs();
  const steps = Math.floor(SPAN_MS / (INTERVAL_S * 1000)) + 1;
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-promql-'));
  const archive = await Archive.open(join(dir, 'archive'), { flushIntervalMs: 0 });
  const prom = await startReceiver();
  try {
    const loadStart = performance.now();
    for (let k = 0; k < steps; k++) {
      const updates: Array<[string, Value]> = all.map((d, i) => [d.path, valueAt(i, k, d.counter)]);
      archive.writer!.append(updates, (T0_MS + k * INTERVAL_S * 1000) * 1000);
      if (archive.writer!.needsDrain) await archive.writer!.drain();
    }
    await archive.writer!.flush();
    // The day is one sealed file, as with a daily rotate_interval: the state queries read.
    await archive.writer!.rotate();
    const tapedeckLoadS = (performance.now() - loadStart) / 1000;
    progress(`Tapedeck loaded in ${tapedeckLoadS.toFixed(1)} s`);
    const sidecar = SIDECARS ? await buildSidecars(archive) : null;
    if (sidecar) progress(`sidecar built in ${sidecar.buildS} s, ${sidecar.bytes} bytes`);
    const promStart = performance.now();
    const sliceSteps = Math.max(1, Math.floor(600 / INTERVAL_S));
    const labels = all.map((d) => encodeLabels(d.labels));
    const tsMs = (k: number): number => T0_MS + k * INTERVAL_S * 1000;
    for (let k0 = 0; k0 < steps; k0 += sliceSteps) {
      const k1 = Math.min(steps, k0 + sliceSteps);
      for (let s = 0; s < all.length; s += 2000) {
        const value = (j: number, k: number): number => valueAt(s + j, k, (all[s + j] as Def).counter);
        await postWrite(`${prom.url}/api/v1/write`, writeRequestBody(labels.slice(s, s + 2000), k0, k1, tsMs, value));
      }
    }
    const promLoadS = (performance.now() - promStart) / 1000;
    progress(`Prometheus loaded in ${promLoadS.toFixed(1)} s`);
    const served = SAME_PROCESS ? await serveHere(archive) : await serveInChild(archive);
    const tapedeckUrl = served.url;
    const queries = {
      selector: 'bench_temperature{instance="i17"}',
      rate: 'rate(bench_requests_total{instance="i17"}[5m])',
      sumBy: 'sum by (job) (rate(bench_requests_total[5m]))',
      topk: 'topk(5, bench_temperature)',
    };
    const results: Record<string, unknown> = {};
    const promCpu = procCpu(await prometheusPid(prom.url));
    for (const [name, q] of Object.entries(queries)) {
      if (ONLY && !ONLY.includes(name)) continue;
      const prometheus = await timeQuery(prom.url, q, promCpu);
      const tapedeck = await timeQuery(tapedeckUrl, q, served.cpu);
      progress(`${name}: ${JSON.stringify({ tapedeck, prometheus })}`);
      const both = 'p99Ms' in tapedeck && 'p99Ms' in prometheus;
      const ratio = (x: number, y: number): number | null => (both && y > 0 ? Math.round((x / y) * 100) / 100 : null);
      const p99Ratio = both ? ratio(tapedeck.p99Ms, prometheus.p99Ms) : null;
      const cpuP99Ratio = both ? ratio(tapedeck.cpuP99Ms, prometheus.cpuP99Ms) : null;
      results[name] = { query: q, tapedeck, prometheus, p99Ratio, cpuP99Ratio };
    }
    await served.stop();
    console.log(JSON.stringify({
      bench: 'promql',
      series: SERIES,
      intervalS: INTERVAL_S,
      hours: HOURS,
      samples: SERIES * steps,
      stepS: STEP_S,
      runs: RUNS,
      warmup: WARMUP,
      tapedeckProcess: SAME_PROCESS ? 'same' : 'child',
      sidecars: SIDECARS,
      sidecar,
      loadS: { tapedeck: Math.round(tapedeckLoadS * 10) / 10, prometheusRemoteWrite: Math.round(promLoadS * 10) / 10 },
      queries: results,
    }));
  } finally {
    await prom.stop();
    if (!archive.isClosed) await archive.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
