/**
 * The one-pass writer of query answers (server/promql/format.ts formatResultBytes) writes
 * exactly the bytes the former template-and-join text did (test/helpers/promql-format-oracle.ts):
 * seeded random answers with hostile values (NaN, the stale NaN, ±Inf, -0, subnormals, the
 * largest doubles, exponents both ways, random bit patterns), hostile times (negative,
 * fractional seconds, -0, the archive's bounds) and hostile labels (quotes, backslashes,
 * control characters, lone surrogates, astral characters, empty sets), and the answers of
 * random queries over a random archive. Then the HTTP answers are the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Value } from '../protocol/value.js';
import { buildServer } from '../server/app.js';
import { runQuery, type QueryResult } from '../server/promql/engine.js';
import { formatResult, formatResultBytes, formatValue } from '../server/promql/format.js';
import { makeMetric, type Metric } from '../server/promql/labels.js';
import { formatResultOracle, formatValueOracle } from './helpers/promql-format-oracle.js';
import { STALE_NAN } from './helpers/nan.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

type Rand = () => number;

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

/** Any double from its bits (NaNs of every payload, subnormals, infinities). */
function anyBits(rand: Rand): number {
  words[0] = Math.floor(rand() * 2 ** 32);
  words[1] = Math.floor(rand() * 2 ** 32);
  return bits[0] as number;
}

const HOSTILE_VALUES = [NaN, STALE_NAN, Infinity, -Infinity, -0, 0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
  1e21, 1e-7, 1.5e-7, -2.5e22, 123456789012345680000, 0.1, 1 / 3, 2 ** 53, -(2 ** 53) - 2, 1e300, 1e-300, 4.35, 100, -1];

function value(rand: Rand): number {
  const r = rand();
  if (r < 0.3) return HOSTILE_VALUES[Math.floor(rand() * HOSTILE_VALUES.length)] as number;
  if (r < 0.5) return anyBits(rand);
  if (r < 0.7) return (rand() - 0.5) * 10 ** Math.floor(rand() * 60 - 30);
  if (r < 0.85) return Math.round((rand() - 0.5) * 1e6) / 100;
  return Math.floor(rand() * 1e9);
}

const HOSTILE_TIMES_MS = [0, -0, -1, 1, 999, -999, 1500, -1500, 1000, -1000, -9000, 10_000, -10_000, 1e23, -1e24, 1e21, 0.5, -0.25, 8.64e15, -8.64e15, 1_700_000_000_000, 1_700_000_000_123, 2 ** 53, -(2 ** 53), 9.007e15, 1e15 * 1000, 123];

function time(rand: Rand): number {
  const r = rand();
  if (r < 0.3) return HOSTILE_TIMES_MS[Math.floor(rand() * HOSTILE_TIMES_MS.length)] as number;
  if (r < 0.5) return 1_700_000_000_000 + Math.floor(rand() * 86_400) * 1000;
  if (r < 0.7) return (rand() < 0.5 ? -1 : 1) * Math.floor(rand() * 10 ** Math.floor(rand() * 16)) * 1000;
  return Math.floor((rand() - 0.5) * 2 * 8.64e15);
}

const ODD_TEXT = ['', '"', '\\', '\n\t\r', '\u0000\u001f\u007f', '\ud800', 'x\udc00y', '😀', 'é', '</script>', '\u2028\u2029', 'a"b\\c'];

function text(rand: Rand): string {
  if (rand() < 0.4) return ODD_TEXT[Math.floor(rand() * ODD_TEXT.length)] as string;
  let s = '';
  const n = Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) s += String.fromCharCode(rand() < 0.8 ? 32 + Math.floor(rand() * 95) : Math.floor(rand() * 0x10000));
  return s;
}

function metric(rand: Rand): Metric {
  const pairs: Array<[string, string]> = [];
  const n = Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) pairs.push([i === 0 && rand() < 0.5 ? '__name__' : `${text(rand)}${i}`, text(rand) || 'v']);
  return makeMetric(pairs);
}

function randomResult(rand: Rand): QueryResult {
  const kind = rand();
  if (kind < 0.2) return { resultType: 'scalar', t: time(rand), v: value(rand) };
  if (kind < 0.5) {
    const samples = Array.from({ length: Math.floor(rand() * 6) }, () => ({ metric: metric(rand), v: value(rand) }));
    return { resultType: 'vector', t: time(rand), samples };
  }
  const series = Array.from({ length: Math.floor(rand() * 5) }, () => {
    const n = rand() < 0.1 ? 0 : Math.floor(rand() * (rand() < 0.1 ? 3000 : 40));
    const t = new Float64Array(n);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      t[i] = time(rand);
      v[i] = value(rand);
    }
    return { metric: metric(rand), t, v };
  });
  return { resultType: 'matrix', series };
}

function expectSameBytes(r: QueryResult, what: string): void {
  const oracle = Buffer.from(formatResultOracle(r), 'utf8');
  const bytes = formatResultBytes(r);
  if (!bytes.equals(oracle)) {
    let at = 0;
    while (at < bytes.length && bytes[at] === oracle[at]) at++;
    expect(bytes.subarray(Math.max(0, at - 40), at + 40).toString(), `${what}: first difference at byte ${at}`).toBe(oracle.subarray(Math.max(0, at - 40), at + 40).toString());
  }
  expect(bytes.length).toBe(oracle.length);
  expect(formatResult(r)).toBe(oracle.toString('utf8'));
}

const T0_MS = 1_700_000_000_000;

/** Label values a path may hold (paths refuse control characters and lone surrogates). */
const ARCHIVE_TEXT = ['"q"', 'back\\slash', '😀', 'é', '</script>', 'a b', '\u2028'];

async function randomArchive(rand: Rand): Promise<Archive> {
  const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  const paths = Array.from({ length: 12 }, (_, i) => seriesToPath({ name: i % 2 === 0 ? 'c_total' : 'g', labels: { job: `j${i % 3}`, instance: `i${i}`, odd: ARCHIVE_TEXT[i % ARCHIVE_TEXT.length] as string } }));
  for (let k = 0; k < 200; k++) {
    const updates: Array<[string, Value]> = [];
    for (const p of paths) {
      if (rand() < 0.05) continue;
      const r = rand();
      updates.push([p, r < 0.02 ? null : r < 0.5 ? value(rand) : Math.floor(rand() * 1000)]);
    }
    a.writer!.append(updates, (T0_MS + k * 15_000 + Math.floor(rand() * 2000)) * 1000);
    if (k === 120) await a.writer!.rotate();
  }
  await a.writer!.flush();
  return a;
}

const QUERIES = ['g', 'c_total', 'rate(c_total[5m])', 'sum by (job) (g)', 'topk(3, g)', 'g * 1e300', 'g / 0', '-g', 'time()', 'scalar(sum(g))', 'vector(1e-320)', 'g > 50', 'count by (odd) (g)', 'g offset 1m', 'max_over_time(g[2m])'];

/** Values near the short-decimal path's edges: bounds, halfway digits, scaled values near 2^50, neighbours by one ulp. */
function edgeValue(rand: Rand): number {
  const k = Math.floor(rand() * 9);
  const base = [1e-6, 1e15, 2 ** 50 / 10 ** Math.min(k, 6), 0.5, 1, 9.999999, 123456.789012, 0.1 + 0.2, 1e-7, 999999999999999.9][Math.floor(rand() * 10)] as number;
  const r = rand();
  let v = r < 0.3 ? Math.round(rand() * 10 ** (k + 3)) / 10 ** k + 0.5 / 10 ** k : r < 0.6 ? base : base * (1 + (rand() - 0.5) * 1e-12);
  if (rand() < 0.5) {
    // One ulp up or down.
    bits[0] = v;
    words[0] = ((words[0] as number) + (rand() < 0.5 ? 1 : 0xffffffff)) >>> 0;
    v = bits[0] as number;
  }
  return rand() < 0.5 ? -v : v;
}

describe('one-pass JSON of query answers', () => {
  it('formats values as String(v) expanded does (the short-decimal path included), for random, edge and hostile values', () => {
    const seed = scheduleSeed('PROMQL_FORMAT_VALUE_SEED', 'promql-format values');
    const rand = rng(seed);
    const all = [...HOSTILE_VALUES];
    for (let i = 0; i < 100_000; i++) all.push(value(rand), edgeValue(rand), Math.round((rand() - 0.5) * 10 ** Math.floor(rand() * 17)) / 10 ** Math.floor(rand() * 8));
    let differ = 0;
    for (const v of all) if (formatValue(v) !== formatValueOracle(v)) expect(formatValue(v), `${formatValueOracle(v)} (seed ${seed}, differ ${++differ})`).toBe(formatValueOracle(v));
    expect(all.length).toBe(HOSTILE_VALUES.length + 300_000);
  });

  it('writes the same bytes as the template-and-join text, for random answers with hostile values, times and labels', () => {
    const seed = scheduleSeed('PROMQL_FORMAT_SEED', 'promql-format');
    const rand = rng(seed);
    let points = 0;
    for (let i = 0; i < 400; i++) {
      const r = randomResult(rand);
      if (r.resultType === 'matrix') for (const s of r.series) points += s.t.length;
      expectSameBytes(r, `answer ${i} (seed ${seed})`);
    }
    expect(points).toBeGreaterThan(10_000);
  });

  it('writes every hostile value and time alike, one by one', () => {
    for (const v of HOSTILE_VALUES) for (const t of HOSTILE_TIMES_MS) expectSameBytes({ resultType: 'scalar', t, v }, `${v} at ${t}`);
    const series = [{ metric: makeMetric([['a', '😀\ud800"']]), t: Float64Array.from(HOSTILE_TIMES_MS), v: Float64Array.from(HOSTILE_TIMES_MS, (_, i) => HOSTILE_VALUES[i] as number) }];
    expectSameBytes({ resultType: 'matrix', series }, 'hostile matrix');
    expectSameBytes({ resultType: 'matrix', series: [] }, 'empty matrix');
    expectSameBytes({ resultType: 'vector', t: 0, samples: [] }, 'empty vector');
  });

  it('answers random queries over a random archive with the same bytes, and sends them over HTTP unchanged', async () => {
    const seed = scheduleSeed('PROMQL_FORMAT_QUERY_SEED', 'promql-format queries');
    const rand = rng(seed);
    const a = await randomArchive(rand);
    const app = await buildServer({ archive: a });
    try {
      let compared = 0;
      for (const query of QUERIES) {
        for (let r = 0; r < 3; r++) {
          const startMs = T0_MS + Math.floor(rand() * 30) * 60_000 + (r === 2 ? Math.floor(rand() * 1000) : 0);
          const p = { query, startMs, endMs: startMs + Math.floor(rand() * 40) * 60_000, stepMs: [15_000, 60_000, 1_500][r] as number, lookbackMs: 300_000, timeoutMs: 60_000 };
          const res = await runQuery(a, p);
          expectSameBytes(res, `${query} ${JSON.stringify(p)} (seed ${seed})`);
          const http = await app.inject({ method: 'POST', url: '/api/v1/query_range', headers: { 'content-type': 'application/x-www-form-urlencoded' },
            payload: new URLSearchParams({ query, start: String(p.startMs / 1000), end: String(p.endMs / 1000), step: String(p.stepMs / 1000) }).toString() });
          expect(http.statusCode, http.body).toBe(200);
          expect(http.headers['content-type']).toBe('application/json');
          expect(http.rawPayload.equals(Buffer.from(formatResultOracle(res), 'utf8')), `${query} over HTTP (seed ${seed})`).toBe(true);
          compared++;
        }
        const instant = await runQuery(a, { query, startMs: T0_MS + 3_600_000, endMs: T0_MS + 3_600_000, stepMs: 0, lookbackMs: 300_000, timeoutMs: 60_000 });
        expectSameBytes(instant, `${query} instant (seed ${seed})`);
      }
      expect(compared).toBe(QUERIES.length * 3);
    } finally {
      await app.close();
      await a.close();
    }
  });
});
