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
import { startServer, type TestServer } from './helpers/server.js';
import { rng } from './helpers/workload.js';
import { promtool, startReceiver } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';
import { difference, INTERVAL_MS, loadPrometheus, MINUTE_MS, normalize, pool, SPAN_MS, T0_MS, toBatches, type DataSeries } from './helpers/promql-diff-common.js';

const SEED = Number(process.env.PROMQL_DIFF_SEED ?? Date.now() % 1_000_000);

const QUERIES = readFileSync(new URL('./fixtures/promql-queries.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

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
  // Classic histograms: i1 and i2 as exporters write them, i3 without a +Inf bucket and with
  // one bound spelled twice ("1" and "1.0") and a count that goes down across buckets.
  const BUCKETS: Record<string, readonly string[]> = { i1: ['0.05', '0.1', '0.5', '1', '+Inf'], i2: ['0.05', '0.1', '0.5', '1', '+Inf'], i3: ['0.1', '1', '1.0', '10'] };
  for (const [instance, les] of Object.entries(BUCKETS)) {
    const counts = les.map(() => 0);
    const rows = times().map((t): [number, number[]] => {
      for (let n = Math.floor(rand() * 8); n > 0; n--) {
        const b = Math.floor(rand() * les.length);
        for (let j = b; j < les.length; j++) counts[j] = (counts[j] as number) + 1;
      }
      return [t, counts.map((c, j) => (instance === 'i3' && j === 1 ? Math.max(0, c - 2) : c))];
    });
    les.forEach((le, j) => prom({ __name__: 'req_latency_seconds_bucket', job: 'api', instance, le }, rows.map(([t, cs]) => [t, cs[j] as number])));
  }
  const link = '/fabric/sw-1/link_up';
  out.push({ labels: { __name__: 'tapedeck_value', path: link }, path: link, boolean: true, samples: times().map((t) => [t, rand() < 0.8 ? 1 : 0]) });
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
    for (const q of ['sum(', 'rate(req_total)', 'req_total[5m] + 1', '1 > 2', 'histogram_quantile(0.9, req_total[5m])', 'count_values(1, req_total)', 'holt_winters(req_total, 0.5, 0.5)', 'req_total[5m:0s]', '1[5m:1m]', 'req_total[5m][10m:1m]', 'req_total[5m:1m] + 1', '(req_total[5m:1m]) offset 1m', 'rate(req_total[5m:1m] @ 1 @ 2)', '1 and vector(1)', 'vector(1) or 2', 'req_total and bool req_total', 'req_total[5m] or req_total', '1 or on(x) vector(1)', 'req_total and on(code) group_left req_total', 'req_total + on(code) group_left(code) req_total', 'round(req_total, 1, 2)', 'clamp(req_total, 1)', 'absent(req_total[5m])', 'absent_over_time(req_total)', 'label_replace(req_total, "a", "b", "c")', 'label_replace(req_total, "a", "b", "c", 1)', 'label_join(req_total, "a")', 'label_replace(1, "a", "b", "c", "d")']) {
      const want = await promtool(['instant', prom.url, q]);
      const got = await promtool(['instant', tapedeck.url, q]);
      expect(got.ok, q).toBe(false);
      if (!want.ok) expect(got.ok ? '' : got.error, q).toMatch(/bad_data/);
    }
  });
});
