/**
 * Label sets (metrics) of the query API, and the series each archive path is
 * (docs/prometheus.md, "Query API"):
 * - a path that came from Prometheus (protocol/prom-path.ts: `/prom/name/a=1/b=2`) is the
 *   series `name{a="1",b="2"}`;
 * - any other path is `tapedeck_value{path="<the path>"}`, so every numeric path of the
 *   archive can be charted: `tapedeck_value{path=~"/fabric/sw-00./cpu_util_pct"}`.
 */
import { pathToLabelPairs, type LabelPair } from '../../protocol/prom-path.js';

/** Name of the series every non-Prometheus path is. */
export const NATIVE_METRIC_NAME = 'tapedeck_value';
/** The label that holds such a path. */
export const NATIVE_PATH_LABEL = 'path';

export type { LabelPair };

/** A label set, sorted by name, with a key equal for equal sets. */
export interface Metric {
  readonly labels: readonly LabelPair[];
  readonly key: string;
}

const byName = (a: LabelPair, b: LabelPair): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** A metric from label pairs (any order; empty values dropped, as Prometheus does). */
export function makeMetric(pairs: readonly LabelPair[]): Metric {
  const labels = pairs.filter((p) => p[1] !== '').sort(byName);
  return { labels, key: keyOf(labels) };
}

/** The key of sorted labels: equal for equal sets. */
function keyOf(labels: readonly LabelPair[]): string {
  let key = '';
  for (const [n, v] of labels) key += `${n}\u0000${v}\u0001`;
  return key;
}

export function labelValue(m: Metric, name: string): string {
  for (const [n, v] of m.labels) if (n === name) return v;
  return '';
}

const withoutName = new WeakMap<Metric, Metric>();

/** The metric without `__name__` (cached: every step of a range query asks again). */
export function dropName(m: Metric): Metric {
  let out = withoutName.get(m);
  if (!out) {
    out = m.labels.length > 0 && m.labels.some((l) => l[0] === '__name__') ? makeMetric(m.labels.filter((l) => l[0] !== '__name__')) : m;
    withoutName.set(m, out);
  }
  return out;
}

/** Keeps only `names` (on, by) or drops them (ignoring, without). */
export function restrict(m: Metric, names: ReadonlySet<string>, keep: boolean): Metric {
  return makeMetric(m.labels.filter((l) => names.has(l[0]) === keep));
}

/** Prometheus' order of label sets (labels.Compare): label by label, name then value, then length. */
export function compareMetrics(a: Metric, b: Metric): number {
  const n = Math.min(a.labels.length, b.labels.length);
  for (let i = 0; i < n; i++) {
    const x = a.labels[i] as LabelPair;
    const y = b.labels[i] as LabelPair;
    if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
    if (x[1] !== y[1]) return x[1] < y[1] ? -1 : 1;
  }
  return a.labels.length - b.labels.length;
}

/** The series a path is. */
export function metricOfPath(path: string): Metric {
  // Sorted, without empty values, `__name__` in its place: makeMetric's labels already.
  const labels = pathToLabelPairs(path);
  if (labels) return { labels, key: keyOf(labels) };
  return makeMetric([['__name__', NATIVE_METRIC_NAME], [NATIVE_PATH_LABEL, path]]);
}

/** `{a="1", b="x"}` as Prometheus prints a label set (error messages). */
export function metricText(m: Metric): string {
  return `{${m.labels.map(([n, v]) => `${n}=${JSON.stringify(v)}`).join(', ')}}`;
}
