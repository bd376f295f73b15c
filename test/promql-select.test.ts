/**
 * Series selection through the label-pair lists (server/promql/catalog.ts) selects exactly
 * the series, in exactly the order, that testing every matcher on every series of the
 * archive selects (seeded label sets, absent labels, native paths, `=""`, `!=`, regexes,
 * names given or not), also after paths are added between queries (the index is extended).
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Value } from '../protocol/value.js';
import { selectSeries } from '../server/promql/catalog.js';
import { labelValue, metricOfPath } from '../server/promql/labels.js';
import { parseQuery } from '../server/promql/parse.js';
import type { LabelMatcher } from '../server/promql/ast.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

function matchersOf(text: string): readonly LabelMatcher[] {
  const e = parseQuery(text);
  if (e.kind !== 'vector') throw new Error(`${text} is not a selector`);
  return e.sel.matchers;
}

/** Every series in byName order (names by first path), ids in order within a name, tested with every matcher. */
function reference(a: Archive, matchers: readonly LabelMatcher[]): number[] {
  const byName = new Map<string, number[]>();
  a.paths.forEach((p, id) => {
    const name = labelValue(metricOfPath(p), '__name__');
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name)?.push(id);
  });
  const out: number[] = [];
  for (const ids of byName.values()) for (const id of ids) if (matchers.every((m) => m.test(labelValue(metricOfPath(a.paths[id] as string), m.name)))) out.push(id);
  return out;
}

describe('series selection', () => {
  it('through label-pair lists selects what testing every series selects, in the same order', async () => {
    const seed = scheduleSeed('PROMQL_SELECT_SEED', 'promql-select');
    const rand = rng(seed);
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    try {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const names = ['up', 'req_total', 'temp', 'x'];
      const labelNames = ['job', 'instance', 'zone', 'code'];
      const values = ['a', 'b', 'c', 'i1', 'i2', 'j1', '200', 'weird "q"'];
      let ts = 1_700_000_000_000_000;
      let compared = 0;
      let nonEmpty = 0;
      for (let round = 0; round < 6; round++) {
        const updates: Array<[string, Value]> = [];
        for (let i = 0; i < 150; i++) {
          const labels: Record<string, string> = {};
          for (const l of labelNames) if (rand() < 0.6) labels[l] = pick(values);
          updates.push([rand() < 0.1 ? `/native/${round}/${i % 7}` : seriesToPath({ name: pick(names), labels }), i]);
        }
        a.writer!.append(updates, (ts += 1_000_000));
        await a.writer!.flush();
        for (let q = 0; q < 60; q++) {
          const parts: string[] = [];
          const n = 1 + Math.floor(rand() * 3);
          for (let j = 0; j < n; j++) {
            const op = pick(['=', '=', '=', '!=', '=~', '!~']);
            const label = pick([...labelNames, 'path']);
            const value = op.includes('~') ? pick(['i.*', 'a|b', '', '.+', 'j1']) : rand() < 0.15 ? '' : label === 'path' ? `/native/${round}/${Math.floor(rand() * 7)}` : pick(values);
            parts.push(`${label}${op}${JSON.stringify(value)}`);
          }
          const name = pick(['', '', ...names, 'tapedeck_value', 'absent_name']);
          let text = `${name}{${parts.join(', ')}}`;
          if (rand() < 0.2) text = `{__name__=~"req.*|temp", ${parts.join(', ')}}`;
          let matchers: readonly LabelMatcher[];
          try {
            matchers = matchersOf(text);
          } catch {
            continue; // a selector PromQL refuses (every matcher matches "")
          }
          const got = selectSeries(a, matchers, 1_000_000, () => new Error('limit')).map((r) => r.id);
          expect(got, `${text} (seed ${seed})`).toEqual(reference(a, matchers));
          compared++;
          if (got.length > 0) nonEmpty++;
        }
      }
      expect(compared).toBeGreaterThan(200);
      expect(nonEmpty).toBeGreaterThan(compared / 4);
    } finally {
      await a.close();
    }
  });
});
