/**
 * topk and bottomk streamed through per-step heaps (server/promql/topk.ts StepHeaps) choose
 * exactly the series step-by-step evaluation chooses (selectK over each group's samples):
 * over seeded data where ties are the rule (values from a handful, NaN, the stale NaN
 * 0x7ff0000000000002, ±Inf, null), for k below, at and past the group sizes, fractional,
 * zero, negative and NaN, with and without grouping, read in batches that cut groups.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Value } from '../protocol/value.js';
import { runQuery, type QueryResult } from '../server/promql/engine.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startSeriesIndex } from '../server/series-index.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { STALE_NAN } from './helpers/nan.js';

const T0_MS = 1_700_000_000_000;
const STEPS = 120;
const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

async function build(seed: number): Promise<Archive> {
  const rand = rng(seed);
  const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  const paths = Array.from({ length: 36 }, (_, i) => seriesToPath({ name: 'g', labels: { job: `j${i % 4}`, instance: `i${i}`, zone: i < 9 ? 'a' : 'b' } }));
  const few = [0, 1, 1, 2, 2, 2, -1, 5, NaN, STALE_NAN, Infinity, -Infinity, null];
  for (let k = 0; k < STEPS; k++) {
    const updates: Array<[string, Value]> = [];
    for (const p of paths) {
      if (rand() < 0.1) continue;
      updates.push([p, few[Math.floor(rand() * few.length)] as Value]);
    }
    a.writer!.append(updates, (T0_MS + k * 15_000) * 1000);
    if (k === 60) await a.writer!.rotate();
  }
  await a.writer!.flush();
  await a.writer!.rotate();
  await (await startSeriesIndex(a)).whenIdle();
  return a;
}

const bits = new Float64Array(1);
function exact(r: QueryResult): unknown {
  if (r.resultType !== 'matrix') return r;
  return r.series.map((s) => ({ metric: s.metric.key, t: [...s.t], v: [...s.v].map((x) => (x !== x ? 'NaN' : ((bits[0] = x), new BigUint64Array(bits.buffer)[0]?.toString(16)))) }));
}

describe('topk / bottomk through per-step heaps', () => {
  it('choose the series selectK chooses, ties and NaNs included, in batches that cut groups', async () => {
    const seed = scheduleSeed('PROMQL_TOPK_SEED', 'promql-topk-stream');
    const a = await build(seed);
    try {
      let compared = 0;
      let nonEmpty = 0;
      for (const batch of [5, 256]) {
        limits.promqlStreamSeriesBatch = batch;
        for (const op of ['topk', 'bottomk']) {
          for (const k of ['1', '2', '3', '4.9', '9', '10', '40', '0', '-2', 'NaN', 'Inf']) {
            for (const grouping of ['', ' by (job)', ' by (zone)', ' without (instance)']) {
              for (const inner of ['g', 'g offset 1m', 'last_over_time(g[1m])']) {
                const q = `${op}${grouping} (${k}, ${inner})`;
                const p = { query: q, startMs: T0_MS - 60_000, endMs: T0_MS + STEPS * 15_000, stepMs: [15_000, 45_000][compared % 2] as number, lookbackMs: 60_000, timeoutMs: 60_000 };
                const stepwise = await runQuery(a, { ...p, stream: false }).then(exact, (err: Error) => `error: ${err.message}`);
                const streamed = await runQuery(a, p).then(exact, (err: Error) => `error: ${err.message}`);
                expect(streamed, `${q} (seed ${seed})`).toEqual(stepwise);
                compared++;
                if (Array.isArray(stepwise) && stepwise.length > 0) nonEmpty++;
              }
            }
          }
        }
      }
      expect(compared).toBe(2 * 2 * 11 * 4 * 3);
      // Not vacuous: most queries choose something.
      expect(nonEmpty).toBeGreaterThan(compared / 2);
    } finally {
      await a.close();
    }
  });
});
