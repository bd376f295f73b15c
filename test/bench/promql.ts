/**
 * query_range latency over a day of series, Tapedeck beside a real Prometheus (2.42, on
 * this machine) loaded with the same samples: per query, cold and warm p50/p99 and each
 * server's CPU per query, one JSON object (docs/prometheus.md, "Performance", says why so).
 *
 *   npm run bench:promql                         # defaults below (scaled down, see docs/performance.md)
 *   SERIES=10000 INTERVAL_S=15 npm run bench:promql   # the full size: 57.6 M samples
 *
 * Half the series are counters (bench_requests_total), half gauges (bench_temperature);
 * labels job (10 values) and instance. Tapedeck gets the day through its storage API (one
 * batch per timestamp, as remote_write records them); Prometheus through its remote-write
 * receiver, in time order. Tapedeck's day is one sealed file (rotated after loading) with its
 * per-series sidecar built before the queries; SIDECARS=0 leaves the sidecar out; COMPACT=1
 * compacts the day's file first (`tapedeck compact`), so its sidecar points into its blocks.
 *
 * Both servers answer the same queries over HTTP (form POST, as Grafana sends them), each in
 * a process of its own (Tapedeck: test/bench/promql-server.ts, started fresh each round), and
 * their CPU is read from /proc. Per query, first COLD runs (default 10; wide queries 1), then
 * the warm runs: NARROW_RUNS (default 200) for the one-series queries, so that p99 is not the
 * single slowest run, RUNS (default 10) for the wide ones. The same runs on every server,
 * interleaved run by run in a rotating order (no server is warmed more, or measured at a
 * quieter moment, than another). CPU per query is a server's CPU over a phase divided by its
 * runs.
 *
 * ROUNDS=n (default 1) repeats the queries n times, each round on fresh Tapedeck processes.
 * BASE_TREE=<checkout> also serves a copy of the archive from that tree's promql-server.ts
 * (A/B of two builds, alternated within every run; started in alternating order), and
 * checks that both answer every query with the same bytes. WARM_UP_AB=1 does the same with
 * this tree as the base, served without the query path's warm-up at start (WARM_UP=0 to
 * promql-server.ts: publish.promql_warm_up false) and with it as `tapedeck`. ONLY=selector,rate
 * times only the named queries.
 *
 * A fresh Tapedeck's first query is sent once it says its query API is prepared (sidecar
 * indexes and series catalog loaded at start, server/promql/prepare.ts; its `{"ready":true}`
 * line: no request is sent before), as Prometheus answers once it is ready (its head loaded:
 * checked once, /-/ready, before the rounds). READY=0 sends it as soon as it listens. `starts`:
 * each build's ms to listening and to ready, and its RSS then and after the round's queries.
 */
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactArchive } from '../../storage/compact-archive.js';
import { Archive } from '../../storage/index.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { sidecarDir } from '../../storage/series-index/build.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import type { Value } from '../../protocol/value.js';
import { startReceiver } from '../helpers/promql-peers.js';
import { encodeLabels, postWrite, writeRequestBody } from './prom-write-body.js';
import { interleaved, procCpu, prometheusPid, spread, startTapedeck, type Phase, type RunningTapedeck, type Target } from './promql-timing.js';

const SERIES = Number(process.env.SERIES ?? 1000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 60);
const HOURS = Number(process.env.HOURS ?? 24);
/** Warm runs of the wide queries (seconds each). */
const RUNS = Number(process.env.RUNS ?? 10);
/** Warm runs of the one-series queries (milliseconds each): enough that p99 is not the maximum. */
const NARROW_RUNS = Number(process.env.NARROW_RUNS ?? 200);
/** Cold runs of the one-series queries: a fresh process's first answers, reported apart. */
const COLD = Math.max(1, Number(process.env.COLD ?? 10));
const ROUNDS = Math.max(1, Number(process.env.ROUNDS ?? 1));
const STEP_S = Number(process.env.STEP_S ?? 120);
/** SIDECARS=0: no per-series sidecar, every read scans the blocks (the figures before sidecars). */
const SIDECARS = process.env.SIDECARS !== '0';
/** COMPACT=1: the day's file goes through `tapedeck compact` before its sidecar is built (version 5: no copy of the values). */
const COMPACT = process.env.COMPACT === '1';
/** ONLY=selector,rate: time only these queries (names as in the output). */
const ONLY = process.env.ONLY?.split(',');
/** WARM_UP_AB=1: the base is this tree without the warm-up at start (docs/prometheus.md, "Performance"). */
const WARM_UP_AB = process.env.WARM_UP_AB === '1';
if (WARM_UP_AB && process.env.BASE_TREE !== undefined) throw new Error('WARM_UP_AB=1 and BASE_TREE: one base at a time');
const BASE_TREE = WARM_UP_AB ? process.cwd() : process.env.BASE_TREE;
/** READY=0: the first query is sent as soon as a fresh server listens, not once it says it is prepared. */
const WAIT_READY = process.env.READY !== '0';
if (process.env.WARMUP !== undefined || process.env.TAPEDECK_PROCESS !== undefined) {
  throw new Error('WARMUP and TAPEDECK_PROCESS are gone: the cold runs (COLD) are reported, the same on every server, and Tapedeck always serves from its own process');
}
const T0_MS = 1_700_000_000_000;
const SPAN_MS = HOURS * 3_600_000;

const QUERIES: Record<string, { query: string; narrow: boolean }> = {
  selector: { query: 'bench_temperature{instance="i17"}', narrow: true },
  rate: { query: 'rate(bench_requests_total{instance="i17"}[5m])', narrow: true },
  sumBy: { query: 'sum by (job) (rate(bench_requests_total[5m]))', narrow: false },
  topk: { query: 'topk(5, bench_temperature)', narrow: false },
};

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

type RoundResult = Record<string, Record<string, { cold: Phase; warm: Phase; series: number }> & { sameBytesAsBase?: boolean }>;
/** Each Tapedeck's start in a round: ms to listening and to ready, CPU ms at ready, RSS (kB) at ready and after the round's queries. */
type StartFigures = Record<string, { listenMs: number; readyMs: number; cpuMsReady: number; rssKbReady: number; rssKbEnd: number; readyDetail: string }>;

/** One round: fresh Tapedeck processes, every query cold then warm on every target. */
async function oneRound(round: number, prometheus: Target, dirs: { tapedeck: string; base: string | undefined }, startFigures: StartFigures[]): Promise<RoundResult> {
  const starts: Array<() => Promise<RunningTapedeck>> = [() => startTapedeck('tapedeck', process.cwd(), dirs.tapedeck, WAIT_READY)];
  if (BASE_TREE && dirs.base) starts.push(() => startTapedeck('base', BASE_TREE, dirs.base as string, WAIT_READY, WARM_UP_AB ? { WARM_UP: '0' } : {}));
  // Started one after the other (each loads its sidecar index), in alternating order.
  if (round % 2 === 1) starts.reverse();
  const running: RunningTapedeck[] = [];
  const figures: StartFigures = {};
  try {
    for (const s of starts) {
      const r = await s();
      running.push(r);
      figures[r.name] = { listenMs: r.listenMs, readyMs: r.readyMs, cpuMsReady: r.cpuMsReady, rssKbReady: await r.rssKb(), rssKbEnd: 0, readyDetail: r.readyDetail };
    }
    const targets: Target[] = [prometheus, ...running];
    const out: RoundResult = {};
    for (const [name, { query, narrow }] of Object.entries(QUERIES)) {
      if (ONLY && !ONLY.includes(name)) continue;
      const form = new URLSearchParams({ query, start: String(T0_MS / 1000), end: String((T0_MS + SPAN_MS) / 1000), step: String(STEP_S) });
      const cold = await interleaved(targets, form, narrow ? COLD : 1, !narrow);
      const warm = await interleaved(targets, form, narrow ? NARROW_RUNS : RUNS, !narrow);
      const entry: RoundResult[string] = {};
      for (const t of targets) {
        const c = cold.get(t.name);
        const w = warm.get(t.name);
        if (!c || !w) continue;
        const series = (JSON.parse(c.body) as { data: { result: unknown[] } }).data.result.length;
        entry[t.name] = { cold: c.phase, warm: w.phase, series };
      }
      if (BASE_TREE) entry.sameBytesAsBase = cold.get('tapedeck')?.body === cold.get('base')?.body && warm.get('tapedeck')?.body === warm.get('base')?.body;
      progress(`round ${round} ${name}: ${JSON.stringify(entry)}`);
      out[name] = entry;
    }
    for (const r of running) (figures[r.name] as StartFigures[string]).rssKbEnd = await r.rssKb();
    progress(`round ${round} start: ${JSON.stringify(figures)}`);
    startFigures.push(figures);
    return out;
  } finally {
    for (const r of running) await r.stop();
  }
}

/** Over the rounds: median and range of each target's figures, and of Tapedeck / Prometheus. */
function summary(rounds: RoundResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const figures = ['firstMs', 'p50Ms', 'p99Ms', 'cpuPerQueryMs'] as const;
  for (const name of Object.keys(rounds[0] ?? {})) {
    const q: Record<string, unknown> = {};
    for (const target of ['prometheus', 'tapedeck', 'base']) {
      if (!rounds[0]?.[name]?.[target]) continue;
      const t: Record<string, unknown> = {};
      for (const phase of ['cold', 'warm'] as const) {
        const p: Record<string, unknown> = {};
        for (const f of figures) p[f] = spread(rounds.map((r) => (r[name]?.[target] as { cold: Phase; warm: Phase })[phase][f]));
        t[phase] = p;
      }
      q[target] = t;
    }
    const ratios: Record<string, unknown> = {};
    for (const target of ['tapedeck', 'base']) {
      if (!rounds[0]?.[name]?.[target]) continue;
      for (const phase of ['cold', 'warm'] as const) {
        for (const f of ['p50Ms', 'p99Ms', 'cpuPerQueryMs'] as const) {
          const xs = rounds.map((r) => {
            const mine = (r[name]?.[target] as { cold: Phase; warm: Phase })[phase][f];
            const theirs = (r[name]?.prometheus as { cold: Phase; warm: Phase })[phase][f];
            return theirs > 0 ? mine / theirs : Infinity;
          });
          ratios[`${target}.${phase}.${f}`] = { ...spread(xs), atMost1: `${xs.filter((x) => x <= 1).length}/${xs.length}` };
        }
      }
    }
    q.ratioToPrometheus = ratios;
    if (BASE_TREE) q.sameBytesAsBase = rounds.every((r) => r[name]?.sameBytesAsBase === true);
    out[name] = q;
  }
  return out;
}

async function main(): Promise<void> {
  const all = defs();
  const steps = Math.floor(SPAN_MS / (INTERVAL_S * 1000)) + 1;
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-promql-'));
  let archive = await Archive.open(join(dir, 'archive'), { flushIntervalMs: 0 });
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
    let compacted: { seconds: number; bytesBefore: number; bytesAfter: number } | undefined;
    if (COMPACT) {
      // `tapedeck compact` on the day (its server stopped), then the sidecar of the compacted file.
      await archive.close();
      const t = performance.now();
      // Whatever it costs: the day's values are formulas that LZ4 finds periodic, which codec 3's
      // verbatim bodies do not shrink (a real scrape's noise does not shrink either way).
      const all = await compactArchive(join(dir, 'archive'), { keptBytesRatioMax: Infinity });
      const files = all.filter((f) => f.skipped === undefined);
      if (files.length !== 1) throw new Error(`COMPACT=1: the day was not compacted: ${JSON.stringify(all)}`);
      compacted = { seconds: Math.round((performance.now() - t) / 100) / 10, bytesBefore: files[0]?.before as number, bytesAfter: files[0]?.after as number };
      progress(`compacted in ${compacted.seconds} s: ${compacted.bytesBefore} -> ${compacted.bytesAfter} bytes`);
      archive = await Archive.open(join(dir, 'archive'), { flushIntervalMs: 0 });
    }
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
    // The archive is served by child processes (it is locked while open here).
    await archive.close();
    const baseDir = BASE_TREE ? join(dir, 'archive-base') : undefined;
    if (baseDir) await cp(join(dir, 'archive'), baseDir, { recursive: true });
    const prometheus: Target = { name: 'prometheus', url: prom.url, cpu: procCpu(await prometheusPid(prom.url)) };
    const promReady = await fetch(`${prom.url}/-/ready`);
    if (promReady.status !== 200) throw new Error(`Prometheus not ready: ${promReady.status} ${await promReady.text()}`);
    await promReady.text();
    const rounds: RoundResult[] = [];
    const startFigures: StartFigures[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await oneRound(r, prometheus, { tapedeck: join(dir, 'archive'), base: baseDir }, startFigures));
    const starts: Record<string, Record<string, unknown>> = {};
    for (const target of Object.keys(startFigures[0] ?? {})) {
      starts[target] = {};
      for (const f of ['listenMs', 'readyMs', 'cpuMsReady', 'rssKbReady', 'rssKbEnd'] as const) (starts[target] as Record<string, unknown>)[f] = spread(startFigures.map((s) => (s[target] as StartFigures[string])[f]));
    }
    console.log(JSON.stringify({
      bench: 'promql',
      series: SERIES,
      intervalS: INTERVAL_S,
      hours: HOURS,
      samples: SERIES * steps,
      stepS: STEP_S,
      cold: COLD,
      narrowRuns: NARROW_RUNS,
      runs: RUNS,
      rounds: ROUNDS,
      baseTree: BASE_TREE ?? null,
      warmUpAb: WARM_UP_AB,
      sidecars: SIDECARS,
      compacted,
      waitReady: WAIT_READY,
      sidecar,
      loadS: { tapedeck: Math.round(tapedeckLoadS * 10) / 10, prometheusRemoteWrite: Math.round(promLoadS * 10) / 10 },
      summary: summary(rounds),
      starts,
      perRound: rounds,
    }));
  } finally {
    await prom.stop();
    if (!archive.isClosed) await archive.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
