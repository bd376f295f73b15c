/**
 * Plain range queries (one selector, or one range function without a parameter over one:
 * server/promql/stream.ts plainRangeQuery) answer exactly what step-by-step evaluation
 * answers: every bit of every value, the same JSON text, the same errors and refusals, over
 * seeded data with counter resets, NaN, ±Inf, stale markers (null and the stale NaN), gaps,
 * late starts, samples off the step grid, and series whose label sets collide once the name
 * is dropped (the fast path declines those, step by step reports them).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Value } from '../protocol/value.js';
import { runQuery, type QueryResult } from '../server/promql/engine.js';
import { formatResult } from '../server/promql/format.js';
import { parseQuery } from '../server/promql/parse.js';
import { selectorsOf } from '../server/promql/ast.js';
import { plainRangeQuery } from '../server/promql/stream.js';
import { selectSeries } from '../server/promql/catalog.js';
import { Budget, loadSamples, type SeriesSamples } from '../server/promql/load.js';
import { compareMetrics } from '../server/promql/labels.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { startSeriesIndex } from '../server/series-index.js';
import { STALE_NAN } from './helpers/nan.js';

const T0_MS = 1_700_000_000_000;
const STEPS = 240;
const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

async function build(seed: number, sealed: boolean): Promise<Archive> {
  const rand = rng(seed);
  const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  const series: Array<{ path: string; counter: boolean; startK: number; v: number }> = [];
  for (let i = 0; i < 24; i++) {
    const counter = i % 2 === 0;
    const name = counter ? 'c_total' : 'g';
    series.push({ path: seriesToPath({ name, labels: { job: `j${i % 3}`, instance: `i${i}` } }), counter, startK: i % 7 === 0 ? Math.floor(rand() * STEPS) : 0, v: 0 });
  }
  // Two names with one label set: their label sets collide once a function drops the name.
  for (const name of ['x_a', 'x_b']) series.push({ path: seriesToPath({ name, labels: { job: 'jx' } }), counter: true, startK: 0, v: 0 });
  for (let k = 0; k < STEPS; k++) {
    const updates: Array<[string, Value]> = [];
    for (const s of series) {
      if (k < s.startK || rand() < 0.05) continue;
      const r = rand();
      let v: Value;
      if (r < 0.02) v = null;
      else if (r < 0.03) v = STALE_NAN;
      else if (r < 0.04) v = NaN;
      else if (r < 0.045) v = rand() < 0.5 ? Infinity : -Infinity;
      else if (r < 0.05) v = -0;
      else if (s.counter) v = s.v = rand() < 0.03 ? Math.floor(rand() * 5) : s.v + Math.floor(rand() * 50);
      else v = Math.round(rand() * 10_000) / 100 - 30 + (rand() < 0.1 ? rand() * 1e-7 : 0);
      updates.push([s.path, v]);
    }
    a.writer!.append(updates, (T0_MS + k * 15_000 + (k % 2 === 0 ? 0 : Math.floor(rand() * 3000))) * 1000);
    if (k === 100) await a.writer!.rotate();
  }
  await a.writer!.flush();
  if (sealed) {
    await a.writer!.rotate();
    await (await startSeriesIndex(a)).whenIdle();
  }
  return a;
}

const bits = new Float64Array(1);
const words = new BigUint64Array(bits.buffer);
/** Values by their bits (-0 is not 0, each NaN's payload kept). */
function exact(r: QueryResult): unknown {
  if (r.resultType !== 'matrix') return r;
  return r.series.map((s) => ({ metric: s.metric.key, labels: s.metric.labels, t: [...s.t], v: [...s.v].map((x) => ((bits[0] = x), (words[0] as bigint).toString(16))) }));
}

/** Queries the fast path takes. */
const PLAIN = ['g', 'c_total', 'g{instance="i7"}', 'rate(c_total[5m])', 'irate(c_total[1m])', 'increase(c_total[10m] offset 3m)', 'max_over_time(g[3m])', 'last_over_time(g[2m])', 'g offset 5m', 'changes(g[10m])', 'deriv(g[5m])', 'resets(c_total[30s])', '{__name__=~"g|c_total"}', 'x_a', '{job="jx"}', 'nothing_here', 'rate(nothing_here[5m])'];
/** Queries it declines (evaluated step by step either way). */
const DECLINED = ['rate({__name__=~"x_.*"}[5m])', 'g @ end()', 'rate(c_total[5m] @ start())', 'quantile_over_time(0.5, g[5m])', 'sum(g)', 'g + 1', '-g', 'abs(g)'];

async function answer(a: Archive, p: Parameters<typeof runQuery>[1]): Promise<{ exact: unknown; text: string }> {
  return runQuery(a, p).then(
    (r) => ({ exact: exact(r), text: formatResult(r) }),
    (err: Error) => ({ exact: `error: ${err.message}`, text: '' }),
  );
}

/** Whether the fast path takes the query (what engine.ts does before it, by hand). */
async function takes(a: Archive, q: string, p: { startMs: number; endMs: number; stepMs: number; lookbackMs: number }): Promise<boolean> {
  const expr = parseQuery(q);
  const selected = new Map<unknown, SeriesSamples[]>();
  for (const { sel } of selectorsOf(expr)) {
    const refs = selectSeries(a, sel.matchers, 1e9, () => new Error('limit'));
    const samples = await loadSamples(a, refs, p.startMs - 3_600_000, p.endMs, new Budget(Infinity));
    selected.set(sel, refs.map((r) => samples.get(r.id) as SeriesSamples).sort((x, y) => compareMetrics(x.metric, y.metric)));
  }
  return (await plainRangeQuery(expr, selected as never, p, new Budget(Infinity))) !== undefined;
}

describe('plain range queries', () => {
  it.each([
    ['sealed files with sidecars', true],
    ['the open file in range', false],
  ])('answer bit for bit, and in the same JSON, as step-by-step evaluation: %s', async (_, sealed) => {
    const seed = scheduleSeed('PROMQL_PLAIN_SEED', 'promql-plain');
    const rand = rng(seed + 1);
    const a = await build(seed, sealed);
    try {
      let compared = 0;
      for (const q of [...PLAIN, ...DECLINED]) {
        for (let r = 0; r < 3; r++) {
          const startMs = T0_MS + Math.floor(rand() * 20) * 60_000 - 600_000 + (r === 2 ? Math.floor(rand() * 1000) : 0);
          const p = { query: q, startMs, endMs: startMs + Math.floor(rand() * 70) * 60_000, stepMs: [15_000, 60_000, 97_000, 1][r === 2 ? 3 : Math.floor(rand() * 3)] as number, lookbackMs: [300_000, 30_000][Math.floor(rand() * 2)] as number, timeoutMs: 60_000 };
          if (p.stepMs === 1) p.endMs = p.startMs + 9_000;
          expect(await takes(a, q, p), `${q} taken`).toBe(PLAIN.includes(q));
          const stepwise = await answer(a, { ...p, stream: false });
          const fast = await answer(a, p);
          expect(fast, `${q} ${JSON.stringify(p)} (seed ${seed})`).toEqual(stepwise);
          compared++;
        }
      }
      expect(compared).toBe((PLAIN.length + DECLINED.length) * 3);
    } finally {
      await a.close();
    }
  });

  it('refuse past promqlSamplesMax (samples and points) exactly when step by step does', async () => {
    const a = await build(7, true);
    try {
      const p = { query: 'g', startMs: T0_MS, endMs: T0_MS + 60 * 60_000, stepMs: 15_000, lookbackMs: 300_000, timeoutMs: 60_000 };
      for (const max of [100, 1500, 2500, 2700, 2900, 3100, 4000, 100_000]) {
        limits.promqlSamplesMax = max;
        for (const query of ['g', 'rate(c_total[5m])']) {
          const stepwise = await answer(a, { ...p, query, stream: false });
          expect(await answer(a, { ...p, query }), `${query} at ${max}`).toEqual(stepwise);
        }
      }
    } finally {
      await a.close();
    }
  });
});
