/**
 * Parsed queries kept by their text (server/promql/parse-cache.ts): a kept tree is the tree
 * a fresh parse gives, shared by queries running at once with the same answers as without
 * the cache; refused queries are refused every time and never kept; the cache holds at most
 * promqlParsedQueriesMax entries (least recently used dropped first) of at most
 * promqlParsedQueryCharsMax characters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import { runQuery, type QueryResult } from '../server/promql/engine.js';
import { formatResult } from '../server/promql/format.js';
import { parseQuery } from '../server/promql/parse.js';
import { parseQueryCached, parsedQueriesHeld } from '../server/promql/parse-cache.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

/** A tree as data: functions (matchers' tests) by their source, so two trees compare field by field. */
function shape(e: unknown): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === 'function' ? `fn:${String(v)}` : v));
}

const QUERIES = [
  'up', 'bench_temperature{instance="i17"}', 'rate(c_total{job=~"j[12]",code!~"5.."}[5m] offset 1m)', 'sum by (job) (rate(c_total[5m]))',
  'topk(3, g)', 'g @ end()', 'g > bool 10', '-g * 2 ^ 3', 'max_over_time(g[3m] @ 1700000000)', 'quantile_over_time(0.9, g[10m])',
  'sum by (job) (g) / on (job) count by (job) (g)', 'abs(g) + scalar(sum(g))', 'time() - 3', 'vector(1)',
];

describe('parsed-query cache', () => {
  it('gives the tree a fresh parse gives, the same object for the same text', () => {
    for (const q of QUERIES) {
      const first = parseQueryCached(q);
      expect(shape(first), q).toBe(shape(parseQuery(q)));
      expect(parseQueryCached(q), q).toBe(first);
      expect(parseQueryCached(` ${q}`), q).not.toBe(first);
    }
  });

  it('refuses a bad query every time and keeps none', () => {
    limits.promqlParsedQueriesMax = 4;
    parseQueryCached('up');
    const held = parsedQueriesHeld();
    for (const q of ['sum(', 'up{', 'g[5m:0s]', '', 'g[5m] + 1', `up${' '.repeat(SERVER_LIMITS.promqlQueryCharsMax)}`]) {
      for (let i = 0; i < 2; i++) expect(() => parseQueryCached(q), q).toThrow();
    }
    expect(parsedQueriesHeld()).toBe(held);
  });

  it('holds at most promqlParsedQueriesMax entries, least recently used dropped first, none past promqlParsedQueryCharsMax', () => {
    limits.promqlParsedQueriesMax = 8;
    const kept = parseQueryCached('kept_one');
    for (let i = 0; i < 50; i++) {
      parseQueryCached(`m${i}`);
      expect(parseQueryCached('kept_one')).toBe(kept); // used after every other: never the oldest
      expect(parsedQueriesHeld()).toBeLessThanOrEqual(8);
    }
    expect(parsedQueriesHeld()).toBe(8);
    const m0 = parseQueryCached('m0');
    expect(parseQueryCached('m0')).toBe(m0);
    const long = `x${' '.repeat(SERVER_LIMITS.promqlParsedQueryCharsMax)}`;
    expect(parseQueryCached(long)).not.toBe(parseQueryCached(long));
    limits.promqlParsedQueriesMax = 0;
    expect(parseQueryCached('m1')).not.toBe(parseQueryCached('m1'));
  });

  it('answers queries sharing one tree, at once, as without the cache', async () => {
    const rand = rng(5);
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    try {
      const T0 = 1_700_000_000_000;
      for (let k = 0; k < 120; k++) {
        const updates: Array<[string, number]> = [];
        for (let i = 0; i < 12; i++) updates.push([seriesToPath({ name: i % 2 ? 'g' : 'c_total', labels: { job: `j${i % 3}`, instance: `i${i}`, code: `${200 + (i % 4)}` } }), i % 2 ? rand() * 100 : k * 10 + i]);
        a.writer!.append(updates, (T0 + k * 15_000) * 1000);
      }
      await a.writer!.flush();
      const p = { startMs: T0, endMs: T0 + 30 * 60_000, stepMs: 60_000, lookbackMs: 300_000, timeoutMs: 60_000 };
      const text = (r: QueryResult): string => formatResult(r);
      for (const query of QUERIES.filter((q) => q !== 'up')) {
        limits.promqlParsedQueriesMax = 0;
        const without = await runQuery(a, { ...p, query }).then(text, (e: Error) => e.message);
        limits.promqlParsedQueriesMax = saved.promqlParsedQueriesMax;
        const together = await Promise.all([0, 1, 2, 3].map(() => runQuery(a, { ...p, query }).then(text, (e: Error) => e.message)));
        for (const answer of together) expect(answer, query).toBe(without);
        expect(without.startsWith('{"status":"success"'), `${query}: ${without.slice(0, 200)}`).toBe(true);
      }
    } finally {
      await a.close();
    }
  });
});
