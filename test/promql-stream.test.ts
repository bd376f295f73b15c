/**
 * Streaming range queries (server/promql/stream.ts) answer exactly what step-by-step
 * evaluation answers (every bit of every value), over seeded data with counter resets, NaN,
 * ±Inf, stale markers (null and the stale NaN), gaps and series that start late, for every
 * streamable aggregation, grouping and inner expression; read in batches smaller than the
 * selection, and within promqlSamplesMax where loading everything first is refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Value } from '../protocol/value.js';
import { runQuery, type QueryResult } from '../server/promql/engine.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { startSeriesIndex } from '../server/series-index.js';
import { sidecarsCover } from '../storage/series-read.js';
import { STALE_NAN } from './helpers/nan.js';

const T0_MS = 1_700_000_000_000;
const STEPS = 240;
const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

/** `sealed`: the last batches are rotated too and every file gets its sidecar (reads in batches), else they stay in the open file (one batch). */
async function build(seed: number, sealed: boolean): Promise<Archive> {
  const rand = rng(seed);
  const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  const series: Array<{ path: string; counter: boolean; startK: number; v: number }> = [];
  for (let i = 0; i < 40; i++) {
    const counter = i % 2 === 0;
    const name = counter ? 'c_total' : 'g';
    series.push({ path: seriesToPath({ name, labels: { job: `j${i % 3}`, instance: `i${i}`, code: i % 5 === 0 ? '' : `${200 + (i % 4)}` } }), counter, startK: i % 7 === 0 ? Math.floor(rand() * STEPS) : 0, v: 0 });
  }
  for (let k = 0; k < STEPS; k++) {
    const updates: Array<[string, Value]> = [];
    for (const s of series) {
      if (k < s.startK || rand() < 0.05) continue; // late starts and missed scrapes
      const r = rand();
      let v: Value;
      if (r < 0.02) v = null;
      else if (r < 0.03) v = STALE_NAN;
      else if (r < 0.04) v = NaN;
      else if (r < 0.045) v = rand() < 0.5 ? Infinity : -Infinity;
      else if (s.counter) v = s.v = rand() < 0.03 ? Math.floor(rand() * 5) : s.v + Math.floor(rand() * 50);
      else v = Math.round(rand() * 10_000) / 100 - 30;
      updates.push([s.path, v]);
    }
    // Half the batches exactly on the 15 s grid: steps and range edges then fall on samples.
    a.writer!.append(updates, (T0_MS + k * 15_000 + (k % 2 === 0 ? 0 : Math.floor(rand() * 3000))) * 1000);
    if (k === 100) await a.writer!.rotate(); // a sealed file and the open one
  }
  await a.writer!.flush();
  if (sealed) {
    await a.writer!.rotate();
    await (await startSeriesIndex(a)).whenIdle();
  }
  return a;
}

const bits = new Float64Array(1);
/** Values by their bits (-0 is not 0), but every NaN alike: the answer writes "NaN", and which NaN arithmetic yields is the JIT's choice of operand order. */
function exact(r: QueryResult): unknown {
  if (r.resultType !== 'matrix') return r;
  return r.series.map((s) => ({ metric: s.metric.key, t: [...s.t], v: [...s.v].map((x) => (x !== x ? 'NaN' : ((bits[0] = x), new BigUint64Array(bits.buffer)[0]?.toString(16)))) }));
}

const AGGS = ['sum', 'avg', 'min', 'max', 'count', 'group', 'topk(3,', 'bottomk(2,'];
const GROUPINGS = ['', ' by (job)', ' without (instance)', ' by (code, job)'];
const INNERS = ['g', 'c_total', 'rate(c_total[5m])', 'irate(c_total[1m])', 'increase(c_total[10m] offset 3m)', 'max_over_time(g[3m])', 'last_over_time(g[2m])', 'g offset 5m', 'changes(g[10m])', 'deriv(g[5m])', '{__name__=~"g|c_total"}'];

function query(agg: string, grouping: string, inner: string): string {
  return agg.endsWith(',') ? `${agg.slice(0, -1)}${grouping} (${agg.slice(agg.indexOf('(') + 1)} ${inner})` : `${agg}${grouping} (${inner})`;
}

describe('streaming range queries', () => {
  it.each([
    ['sealed files with sidecars, read in batches', true],
    ['the open file in range, read at once', false],
  ])('answer every streamable shape bit for bit as step-by-step evaluation does: %s', async (_, sealed) => {
    const seed = scheduleSeed('PROMQL_STREAM_SEED', 'promql-stream');
    const rand = rng(seed + 1);
    const a = await build(seed, sealed);
    try {
      expect(await sidecarsCover(a, T0_MS * 1000, (T0_MS + STEPS * 15_000) * 1000)).toBe(sealed);
      limits.promqlStreamSeriesBatch = 7; // batches cut through groups
      let compared = 0;
      for (const agg of AGGS) {
        for (const grouping of GROUPINGS) {
          for (const inner of INNERS) {
            const q = query(agg, grouping, inner);
            const startMs = T0_MS + Math.floor(rand() * 20) * 60_000 - 600_000;
            const p = { query: q, startMs, endMs: startMs + Math.floor(40 + rand() * 30) * 60_000, stepMs: [15_000, 60_000, 97_000][Math.floor(rand() * 3)] as number, lookbackMs: 300_000, timeoutMs: 60_000 };
            const stepwise = await runQuery(a, { ...p, stream: false }).then(exact, (err: Error) => `error: ${err.message}`);
            const streamed = await runQuery(a, p).then(exact, (err: Error) => `error: ${err.message}`);
            expect(streamed, `${q} (seed ${seed})`).toEqual(stepwise);
            compared++;
          }
        }
      }
      expect(compared).toBe(AGGS.length * GROUPINGS.length * INNERS.length);
    } finally {
      await a.close();
    }
  });

  it('answer within promqlSamplesMax a query whose samples all at once would exceed it', async () => {
    const a = await build(11, true);
    try {
      limits.promqlSamplesMax = 3000; // 20 counters x ~230 samples = ~4 600 in all
      limits.promqlStreamSeriesBatch = 4;
      const p = { query: 'sum by (job) (rate(c_total[5m]))', startMs: T0_MS, endMs: T0_MS + 60 * 60_000, stepMs: 60_000, lookbackMs: 300_000, timeoutMs: 60_000 };
      await expect(runQuery(a, { ...p, stream: false })).rejects.toThrow(/too many samples/);
      const r = await runQuery(a, p);
      expect(r.resultType === 'matrix' && r.series.length).toBe(3);
    } finally {
      await a.close();
    }
  });
});
