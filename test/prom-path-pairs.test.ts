/**
 * pathToLabelPairs (protocol/prom-path.ts), what the series catalog reads every path with,
 * against pathToSeries (the reference it replaces there): on seeded hostile paths (escapes
 * good and bad, empty labels, `__name__` as a label, labels out of order or repeated,
 * unicode and lone surrogates, huge segments, other prefixes) both accept the same paths and
 * give the same labels; metricOfPath gives the label set and key makeMetric gave before.
 */
import { describe, expect, it } from 'vitest';
import { pathToLabelPairs, pathToSeries, seriesToPath, type LabelPair } from '../protocol/prom-path.js';
import { makeMetric, metricOfPath, NATIVE_METRIC_NAME, NATIVE_PATH_LABEL, type Metric } from '../server/promql/labels.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

/** metricOfPath as it was before pathToLabelPairs (a dictionary per path, then makeMetric). */
function metricOfPathBefore(path: string): Metric {
  const s = pathToSeries(path);
  if (s) return makeMetric([['__name__', s.name], ...Object.entries(s.labels)]);
  return makeMetric([['__name__', NATIVE_METRIC_NAME], [NATIVE_PATH_LABEL, path]]);
}

/** pathToSeries' answer as sorted pairs with `__name__` (Prometheus' label set). */
function pairsOf(path: string, prefix?: string): LabelPair[] | undefined {
  const s = pathToSeries(path, prefix);
  if (!s) return undefined;
  return [['__name__', s.name] as LabelPair, ...Object.entries(s.labels)].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

const UNITS = ['a', 'b', 'z', 'A', 'Z', '0', '9', '_', '__', ':', ' ', '-', '.', '/', '=', '%', '*', '?', '[', ']', '{', '}', '\n', '\u0000', '\u007f', 'é', '日', '😀', '\ud800', '\udfff', '"', '\\'];
const LABEL_NAMES = ['__name__', '__a', '_a', '__nam', '__name', '__name___', 'A', 'Z', 'job', 'instance', '__proto__', 'constructor', '10', '9', ''];
/** Edits that make a path one seriesToPath never writes (or, now and then, still one it does). */
const EDITS = ['/', '=', '%', '%2', '%2F', '%2f', '%41', '%25', '%3D', '*', '//', '/=', '/x', '/x=', '/=x', '/__name__=x', '/a=1', '/a=', ''];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)] as T;
}

function text(rand: () => number, maxUnits: number): string {
  let s = '';
  const n = Math.floor(rand() * (maxUnits + 1));
  for (let i = 0; i < n; i++) s += pick(rand, UNITS);
  return s;
}

/** A path from a random series (hostile names and values, empty values, huge ones), then maybe edited. */
function hostilePath(rand: () => number): string {
  const labels: Record<string, string> = {};
  const count = rand() < 0.05 ? 60 : Math.floor(rand() * 6);
  for (let i = 0; i < count; i++) {
    const k = rand() < 0.4 ? pick(rand, LABEL_NAMES) : text(rand, 6);
    if (k === '' || k === '__name__') continue;
    labels[k] = rand() < 0.1 ? '' : rand() < 0.03 ? text(rand, 3).repeat(4000) : text(rand, 8);
  }
  const name = rand() < 0.5 ? pick(rand, ['up', 'x', '__a', 'Z', 'é', '😀']) : text(rand, 8) || 'n';
  let path = seriesToPath({ name, labels }, rand() < 0.1 ? '/other' : undefined);
  const edits = rand() < 0.5 ? 0 : 1 + Math.floor(rand() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (path.length + 1));
    const r = rand();
    if (r < 0.4) path = path.slice(0, at) + pick(rand, EDITS) + path.slice(at);
    else if (r < 0.7) path = path.slice(0, at) + path.slice(at + 1 + Math.floor(rand() * 3));
    else if (r < 0.85) {
      // Two label segments swapped or repeated: out of order, or not unique.
      const parts = path.split('/');
      if (parts.length > 4) {
        const i = 3 + Math.floor(rand() * (parts.length - 3));
        parts[i - 1] = rand() < 0.5 ? (parts[i] as string) : (parts[i - 1] as string);
        [parts[i - 1], parts[i]] = [parts[i] as string, parts[i - 1] as string];
      }
      path = parts.join('/');
    } else path = path.slice(0, at);
  }
  return path;
}

describe('pathToLabelPairs', () => {
  it('accepts exactly the paths pathToSeries accepts, with the same labels, on seeded hostile paths', () => {
    const seed = scheduleSeed('PROM_PATH_SEED', 'prom-path-pairs');
    const rand = rng(seed);
    const fixed = ['/prom', '/prom/', '/prom/up', '/prom/up/', '/prom//a=1', '/prom/up/job', '/prom/up/=x', '/prom/up/job=', '/prom/up/b=1/a=2', '/prom/up/a=1/a=2', '/prom/up/a=%2', '/prom/up/a=%41', '/prom/up/a=%2f', '/other/up', '/promx/up', 'prom/up', '/prom/up/__name__=x', '/prom/up/A=1/__a=2/_a=3/a=4', '/prom/%2F/a%3Db=c%25', '/prom/up/a=1/b=2/', ''];
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 20_000 + fixed.length; i++) {
      const path = i < fixed.length ? (fixed[i] as string) : hostilePath(rand);
      const want = pairsOf(path);
      expect(pathToLabelPairs(path), `${JSON.stringify(path.slice(0, 200))} (seed ${seed})`).toEqual(want);
      expect(metricOfPath(path), `${JSON.stringify(path.slice(0, 200))} (seed ${seed})`).toEqual(metricOfPathBefore(path));
      if (want) accepted++;
      else refused++;
      if (i % 7 === 0) expect(pathToLabelPairs(path, '/other'), `prefix /other: ${JSON.stringify(path.slice(0, 200))} (seed ${seed})`).toEqual(pairsOf(path, '/other'));
    }
    // Both kinds in numbers: the comparison is not all refusals (or all acceptances).
    expect(accepted).toBeGreaterThan(2_000);
    expect(refused).toBeGreaterThan(2_000);
  });

  it('puts __name__ in its sorted place among the labels (upper case and digits before it, lower case after)', () => {
    expect(pathToLabelPairs('/prom/up/A=1/__a=2/_a=3/job=x')).toEqual([['A', '1'], ['__a', '2'], ['__name__', 'up'], ['_a', '3'], ['job', 'x']]);
    expect(pathToLabelPairs('/prom/up')).toEqual([['__name__', 'up']]);
    expect(pathToLabelPairs('/prom/up/0=z')).toEqual([['0', 'z'], ['__name__', 'up']]);
  });
});
