/**
 * Aggregation at one step (engine.go aggregation of Prometheus 2.42): the input's samples
 * grouped by their labels with by / without, then each group folded (sum ... group: one
 * step per sample, in input order), or its k largest / smallest kept (topk, bottomk:
 * topk.ts), or its φ-quantile taken (quantile), or its samples counted by value
 * (count_values: the value, formatted as Go's FormatFloat(v, 'f', -1), set as the label
 * named by the string parameter before grouping). Groups come out in the order their
 * first sample came. A step holds at most one group per input sample, so count_values'
 * groups are bounded by promqlSeriesMax like every other aggregation's.
 */
import type { AggregateOp, Expr } from './ast.js';
import { execution } from './errors.js';
import { quantile } from './functions.js';
import { makeMetric, restrict, type Metric } from './labels.js';
import { checkK, selectK } from './topk.js';

type Aggregate = Extract<Expr, { kind: 'aggregate' }>;

interface Sample {
  readonly metric: Metric;
  readonly v: number;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One aggregation node at one step; groupOf: a sample's group labels (cached by the caller per input metric). */
export function aggregateStep(e: Aggregate, input: readonly Sample[], param: number, groupOf: (m: Metric) => Metric): Sample[] {
  if (e.op === 'topk' || e.op === 'bottomk') checkK(param);
  if (e.op === 'count_values') return countValues(e, e.label ?? '', input);
  const groups = new Map<string, { metric: Metric; samples: Sample[] }>();
  for (const s of input) {
    const g = groupOf(s.metric);
    let entry = groups.get(g.key);
    if (!entry) groups.set(g.key, (entry = { metric: g, samples: [] }));
    entry.samples.push(s);
  }
  const out: Sample[] = [];
  for (const { metric, samples } of groups.values()) {
    if (e.op === 'topk' || e.op === 'bottomk') out.push(...selectK(e.op, samples, param));
    else if (e.op === 'quantile') out.push({ metric, v: quantile(param, samples.map((x) => x.v)) });
    else out.push({ metric, v: aggregateValues(e.op, samples) });
  }
  return out;
}

/** count_values: how many samples have each value, per group; an invalid label name is an error at every step. */
function countValues(e: Aggregate, label: string, input: readonly Sample[]): Sample[] {
  if (!LABEL_NAME.test(label)) throw execution(`invalid label name ${JSON.stringify(label)}`);
  const names = new Set(e.grouping.labels);
  if (e.grouping.without) names.add('__name__');
  else names.add(label);
  const groups = new Map<string, { metric: Metric; count: number }>();
  for (const s of input) {
    const valued = makeMetric([...s.metric.labels.filter(([n]) => n !== label), [label, goFormatFloatF(s.v)]]);
    const g = restrict(valued, names, !e.grouping.without);
    const entry = groups.get(g.key);
    if (entry) entry.count++;
    else groups.set(g.key, { metric: g, count: 1 });
  }
  return [...groups.values()].map(({ metric, count }) => ({ metric, v: count }));
}

/** Go's strconv.FormatFloat(x, 'f', -1, 64): the shortest digits that read back as x, without an exponent. */
export function goFormatFloatF(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const sign = x < 0 ? '-' : '';
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(Math.abs(x).toExponential());
  if (!m) return String(x);
  const digits = (m[1] as string) + (m[2] ?? '');
  const exp = Number(m[3]);
  if (exp >= digits.length - 1) return sign + digits + '0'.repeat(exp - digits.length + 1);
  if (exp >= 0) return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

/** The fold of one group at one step (engine.go aggregation): started by its first sample, then one step per sample. */
export interface AggState {
  value: number;
  mean: number;
  count: number;
}

export function aggInit(first: number): AggState {
  return { value: first, mean: first, count: 1 };
}

export type FoldOp = Exclude<AggregateOp, 'topk' | 'bottomk' | 'quantile' | 'count_values'>;

export function aggStep(op: FoldOp, st: AggState, x: number): void {
  switch (op) {
    case 'sum':
      st.value += x;
      break;
    case 'avg':
      st.count++;
      if (!Number.isFinite(st.mean) && !Number.isNaN(st.mean)) {
        if (!Number.isFinite(x) && !Number.isNaN(x) && st.mean > 0 === x > 0) break;
        if (Number.isFinite(x)) break;
      }
      // Each side of the - divided by count, as Prometheus does, to avoid overflow.
      st.mean += x / st.count - st.mean / st.count;
      break;
    case 'max':
      if (st.value < x || Number.isNaN(st.value)) st.value = x;
      break;
    case 'min':
      if (st.value > x || Number.isNaN(st.value)) st.value = x;
      break;
    case 'count':
    case 'group':
      st.count++;
      break;
    case 'stddev':
    case 'stdvar': {
      st.count++;
      const delta = x - st.mean;
      st.mean += delta / st.count;
      st.value += delta * (x - st.mean);
      break;
    }
  }
}

export function aggResult(op: FoldOp, st: AggState): number {
  switch (op) {
    case 'avg':
      return st.mean;
    case 'count':
      return st.count;
    case 'group':
      return 1;
    case 'stdvar':
      return st.value / st.count;
    case 'stddev':
      return Math.sqrt(st.value / st.count);
    default:
      return st.value;
  }
}

/** sum, avg, min, max, count, stddev, stdvar, group of one group (engine.go aggregation). */
function aggregateValues(op: FoldOp, samples: Sample[]): number {
  const st = aggInit((samples[0] as Sample).v);
  if (op === 'stddev' || op === 'stdvar') st.value = 0;
  for (let i = 1; i < samples.length; i++) aggStep(op, st, (samples[i] as Sample).v);
  return aggResult(op, st);
}

