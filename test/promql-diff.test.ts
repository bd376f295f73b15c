/**
 * Differential test of the PromQL query API against the real thing: the same samples go
 * into a real Prometheus (2.42, remote-write receiver) and into Tapedeck; every query of
 * test/fixtures/promql-queries.txt runs through `promtool query instant` (at three times:
 * inside a stale gap, mid-range, after the data) and `promtool query range` against both,
 * and the answers must be equal: same series, same timestamps, values within 1e-9
 * relative (NaN equals NaN). The data: counters with resets, gauges, a gap longer than the
 * lookback, stale markers, several label sets, jittered scrape times, and paths that did
 * not come from Prometheus (tapedeck_value{path=...}, booleans as 1/0). Seeded; the seed is
 * printed (PROMQL_DIFF_SEED=<n> replays a run).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Batch, Value } from '../protocol/value.js';
import { startServer, type TestServer } from './helpers/server.js';
import { rng } from './helpers/workload.js';
import { promtool, remoteWrite, startReceiver, type PromSeries } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';

const SEED = Number(process.env.PROMQL_DIFF_SEED ?? Date.now() % 1_000_000);
const T0_MS = 1_700_000_000_000;
const MINUTE_MS = 60_000;
const SPAN_MS = 60 * MINUTE_MS;
const INTERVAL_MS = 15_000;

const QUERIES = readFileSync(new URL('./fixtures/promql-queries.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));


/** One series of the data set: its labels and samples, and how Tapedeck records it. */
interface DataSeries extends PromSeries {
  /** The archive path: seriesToPath for Prometheus series, the path itself for native ones. */
  path: string;
  /** Native boolean paths record true/false where Prometheus gets 1/0. */
  boolean?: boolean;
}

function generate(rand: () => number): DataSeries[] {
  const out: DataSeries[] = [];
  const times = (keep: (offsetMs: number) => boolean = () => true): number[] => {
    const ts: number[] = [];
    for (let o = 0; o <= SPAN_MS; o += INTERVAL_MS) if (keep(o)) ts.push(T0_MS + o + Math.floor(rand() * 2000));
    return ts;
  };
  const prom = (labels: Record<string, string>, samples: Array<[number, number | 'stale']>): void => {
    const { __name__: name, ...rest } = labels;
    out.push({ labels, samples, path: seriesToPath({ name: name as string, labels: rest }) });
  };
  for (const instance of ['i1', 'i2', 'i3']) {
    for (const code of ['200', '500']) {
      let v = Math.floor(rand() * 1000);
      const resetAtMs = instance === 'i2' && code === '200' ? 20 * MINUTE_MS : instance === 'i3' && code === '500' ? 40 * MINUTE_MS : -1;
      prom({ __name__: 'req_total', job: 'api', instance, code }, times().map((t) => {
        if (resetAtMs > 0 && t - T0_MS >= resetAtMs && t - T0_MS < resetAtMs + INTERVAL_MS) v = Math.floor(rand() * 5);
        else v += Math.floor(rand() * 40) + (rand() < 0.2 ? 0.5 : 0);
        return [t, v];
      }));
    }
  }
  for (const room of ['a', 'b', 'c']) prom({ __name__: 'temp_celsius', job: 'env', room }, times().map((t) => [t, Math.round((15 + rand() * 15) * 100) / 100]));
  // No samples for 12 minutes: longer than the 5 minute lookback.
  prom({ __name__: 'flaky_gauge', instance: 'x' }, times((o) => o < 20 * MINUTE_MS || o >= 32 * MINUTE_MS).map((t) => [t, Math.round(rand() * 1000) / 10]));
  // Ends with a stale marker at 25m15s, comes back at 40m.
  const stale: Array<[number, number | 'stale']> = times((o) => o <= 25 * MINUTE_MS || o >= 40 * MINUTE_MS).map((t) => [t, Math.round(rand() * 100)]);
  const staleMs = T0_MS + 25 * MINUTE_MS + 15_000 + 2000;
  stale.splice(stale.findIndex(([t]) => t > staleMs), 0, [staleMs, 'stale']);
  prom({ __name__: 'stale_gauge', instance: 'y' }, stale);
  for (const sw of ['sw-1', 'sw-2']) {
    const path = `/fabric/${sw}/cpu_util_pct`;
    out.push({ labels: { __name__: 'tapedeck_value', path }, path, samples: times().map((t) => [t, Math.round(rand() * 1000) / 10]) });
  }
  const link = '/fabric/sw-1/link_up';
  out.push({ labels: { __name__: 'tapedeck_value', path: link }, path: link, boolean: true, samples: times().map((t) => [t, rand() < 0.8 ? 1 : 0]) });
  return out;
}

/** Tapedeck's batches: one per millisecond holding every sample taken then. */
function toBatches(series: readonly DataSeries[]): Batch[] {
  const byTime = new Map<number, Array<[string, Value]>>();
  for (const s of series) {
    for (const [t, v] of s.samples) {
      const value: Value = v === 'stale' ? null : s.boolean ? v === 1 : v;
      let list = byTime.get(t);
      if (!list) byTime.set(t, (list = []));
      list.push([s.path, value]);
    }
  }
  return [...byTime.keys()].sort((a, b) => a - b).map((t) => ({ ts: t * 1000, updates: byTime.get(t) as Array<[string, Value]> }));
}

/** Remote write in 10-minute slices, in time order (the TSDB head takes samples within an hour of its newest). */
async function loadPrometheus(prom: RunningPrometheus, series: readonly DataSeries[]): Promise<void> {
  for (let from = T0_MS; from <= T0_MS + SPAN_MS + INTERVAL_MS; from += 10 * MINUTE_MS) {
    const slice = series.map((s) => ({ labels: s.labels, samples: s.samples.filter(([t]) => t >= from && t < from + 10 * MINUTE_MS) })).filter((s) => s.samples.length > 0);
    await remoteWrite(`${prom.url}/api/v1/write`, slice);
  }
}

type Point = [number, string];
interface Normal {
  type: 'scalar' | 'series';
  series: Map<string, Point[]>;
}

/** promtool's JSON (scalar, vector or matrix) as series key -> points. */
function normalize(result: unknown): Normal {
  if (Array.isArray(result) && result.length === 2 && typeof result[1] === 'string') {
    return { type: 'scalar', series: new Map([['scalar', [result as Point]]]) };
  }
  const series = new Map<string, Point[]>();
  for (const s of result as Array<{ metric: Record<string, string>; value?: Point; values?: Point[] }>) {
    const key = JSON.stringify(Object.entries(s.metric).sort(([a], [b]) => (a < b ? -1 : 1)));
    series.set(key, s.values ?? [s.value as Point]);
  }
  return { type: 'series', series };
}

function close(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) && Number.isNaN(y)) return true;
  return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

/** The first difference between two answers, or undefined when they agree. */
function difference(want: Normal, got: Normal): string | undefined {
  if (want.type !== got.type) return `result type ${got.type}, Prometheus ${want.type}`;
  const wantKeys = [...want.series.keys()].sort();
  const gotKeys = [...got.series.keys()].sort();
  if (JSON.stringify(wantKeys) !== JSON.stringify(gotKeys)) return `series ${JSON.stringify(gotKeys)}, Prometheus ${JSON.stringify(wantKeys)}`;
  for (const k of wantKeys) {
    const w = want.series.get(k) as Point[];
    const g = got.series.get(k) as Point[];
    if (w.length !== g.length) return `${k}: ${g.length} points, Prometheus ${w.length}: ${JSON.stringify(g.slice(0, 5))} vs ${JSON.stringify(w.slice(0, 5))}`;
    for (let i = 0; i < w.length; i++) {
      const [wt, wv] = w[i] as Point;
      const [gt, gv] = g[i] as Point;
      if (wt !== gt || !close(wv, gv)) return `${k}: point ${i} is [${gt}, ${gv}], Prometheus [${wt}, ${wv}]`;
    }
  }
  return undefined;
}

/** Runs `fn` over items, `width` at a time (promtool is a process per query). */
async function pool<T, R>(items: readonly T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  }));
  return out;
}

describe('PromQL answers equal a real Prometheus', () => {
  let prom: RunningPrometheus;
  let tapedeck: TestServer;

  beforeAll(async () => {
    console.log(`promql-diff seed ${SEED} (PROMQL_DIFF_SEED=${SEED} replays it)`);
    const series = generate(rng(SEED));
    [prom, tapedeck] = await Promise.all([startReceiver(), startServer(toBatches(series))]);
    await loadPrometheus(prom, series);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([prom?.stop(), tapedeck?.close()]);
  });

  it(`has at least 40 queries (${QUERIES.length})`, () => {
    expect(QUERIES.length).toBeGreaterThanOrEqual(40);
  });

  const INSTANTS_S = [T0_MS + 27 * MINUTE_MS + 30_000, T0_MS + 45 * MINUTE_MS + 7_000, T0_MS + SPAN_MS + 3 * MINUTE_MS].map((ms) => String(ms / 1000));
  const RANGE = ['--start', String((T0_MS + 3 * MINUTE_MS + 7_000) / 1000), '--end', String((T0_MS + SPAN_MS + 4 * MINUTE_MS) / 1000), '--step', '1m'];

  it('answers every instant and range query as Prometheus does', async () => {
    const cases = QUERIES.flatMap((q) => [...INSTANTS_S.map((t) => ({ q, args: ['instant', '-o', 'json', `--time=${t}`] })), { q, args: ['range', '-o', 'json', ...RANGE] }]);
    const failures: string[] = [];
    const emptyRanges: string[] = [];
    await pool(cases, 4, async ({ q, args }) => {
      const [want, got] = await Promise.all([promtool([...args, '--', prom.url, q]), promtool([...args, '--', tapedeck.url, q])]);
      const what = `${args[0]} ${args.slice(3).join(' ')}: ${q}`;
      if (!want.ok) return void failures.push(`${what}: Prometheus refused it: ${want.error}`);
      if (!got.ok) return void failures.push(`${what}: Tapedeck refused it: ${got.error}`);
      const diff = difference(normalize(want.result), normalize(got.result));
      if (diff) failures.push(`${what}: ${diff}`);
      if (args[0] === 'range' && normalize(want.result).series.size === 0) emptyRanges.push(q);
    });
    expect(failures, failures.join('\n')).toEqual([]);
    // Each query means something here: its range answer is not empty.
    expect(emptyRanges, 'queries whose range answer is empty').toEqual([]);
  }, 120_000);

  it('refuses what Prometheus refuses, and what is outside the subset, in Prometheus error shape', async () => {
    for (const q of ['sum(', 'rate(req_total)', 'req_total[5m] + 1', '1 > 2', 'temp_celsius + on(room) group_left req_total']) {
      const want = await promtool(['instant', prom.url, q]);
      const got = await promtool(['instant', tapedeck.url, q]);
      expect(got.ok, q).toBe(false);
      if (!want.ok) expect(got.ok ? '' : got.error, q).toMatch(/bad_data/);
    }
  });
});
