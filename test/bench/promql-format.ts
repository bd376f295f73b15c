/**
 * CPU of writing a query answer's JSON: the one-pass writer (server/promql/format.ts
 * formatResultBytes) against the former template-and-join text and String(v) values
 * (test/helpers/promql-format-oracle.ts, encoded to UTF-8 as the reply did), on one series
 * over a day at step 120 s (721 points: what the one-series queries of bench:promql answer):
 * gauge readings (one decimal), a counter's rate (5 long decimals, as bench:promql's rate
 * answers) and 721 different doubles. The same answer is written again and again, so V8's
 * number-to-string cache answers what it holds, as for a dashboard's repeated query.
 * Alternated ROUNDS times; one JSON object with each round's microseconds per answer and
 * their medians.
 *
 *   node --import tsx test/bench/promql-format.ts
 */
import { formatResultBytes } from '../../server/promql/format.js';
import { makeMetric } from '../../server/promql/labels.js';
import type { QueryResult } from '../../server/promql/engine.js';
import { formatResultOracle } from '../helpers/promql-format-oracle.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ANSWERS = Number(process.env.ANSWERS ?? 20_000);
const POINTS = 721;
const T0_MS = 1_700_000_000_000;

function answer(value: (k: number) => number): QueryResult {
  const t = Float64Array.from({ length: POINTS }, (_, k) => T0_MS + k * 120_000);
  const v = Float64Array.from({ length: POINTS }, (_, k) => value(k));
  return { resultType: 'matrix', series: [{ metric: makeMetric([['__name__', 'bench_temperature'], ['job', 'job7'], ['instance', 'i17']]), t, v }] };
}

const cases = {
  gauge: answer((k) => 20 + ((17 * 13 + k * 7) % 100) / 10),
  rate: answer((k) => ((k * 31 + 17) % 5) / 300 + 4 / 15),
  random: answer((k) => Math.sin(k + 1) * 1000),
};
const ways = { before: (r: QueryResult) => Buffer.from(formatResultOracle(r), 'utf8'), now: formatResultBytes };

function usPerAnswer(f: (r: QueryResult) => Buffer, r: QueryResult): number {
  for (let i = 0; i < 1000; i++) f(r);
  const c = process.cpuUsage();
  for (let i = 0; i < ANSWERS; i++) f(r);
  const u = process.cpuUsage(c);
  return Math.round(((u.user + u.system) / ANSWERS) * 10) / 10;
}

const runs: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const [c, r] of Object.entries(cases)) {
    const order = round % 2 === 0 ? (['before', 'now'] as const) : (['now', 'before'] as const);
    for (const w of order) (runs[`${c}.${w}`] ??= []).push(usPerAnswer(ways[w], r));
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(JSON.stringify({ bench: 'promql-format', points: POINTS, answers: ANSWERS, usPerAnswer: Object.fromEntries(Object.entries(runs).map(([k, xs]) => [k, { median: median(xs), runs: xs }])) }));
