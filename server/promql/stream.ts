/**
 * Streaming evaluation of the commonest wide range queries, series by series:
 *
 *   agg [by|without (...)] (sel)              agg [by|without (...)] (fn(sel[d]))
 *
 * with agg one of sum, avg, min, max, count, group, topk, bottomk (a number k), fn a range
 * function without a parameter, and the selector without @. The selected series are read
 * a batch of promqlStreamSeriesBatch at a time (in the order the step-by-step evaluator
 * takes them) when every file of the range has a per-series sidecar, else all at once
 * (blocks would be read again by each batch); each series' value at every step is computed in one pass over its samples,
 * folded into its group (sum ... group) or into its group's heap at every step (topk,
 * bottomk: topk.ts StepHeaps), and its samples are dropped. Memory is one batch of samples
 * plus a number per step per group (k numbers for topk), not every sample of the query;
 * answers are those of eval.ts, operation for operation (the same per-group fold, in the
 * same series order, and selectK's heap for topk).
 */
import type { Archive } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import type { Expr, Selector } from './ast.js';
import { selectSeriesSliced, type SeriesRef } from './catalog.js';
import { PromError } from './errors.js';
import { aggInit, aggResult, aggStep, type AggState, type FoldOp } from './aggregate.js';
import type { MatrixSeries } from './eval.js';
import { rangeFunction } from './functions.js';
import { compareMetrics, dropName, restrict, type Metric } from './labels.js';
import { loadSamples, rangedOf, type Budget, type SeriesSamples } from './load.js';
import { sidecarsCover } from '../../storage/series-read.js';
import { StepHeaps, checkK } from './topk.js';

type Aggregate = Extract<Expr, { kind: 'aggregate' }>;
type RangeFn = Extract<Expr, { kind: 'range_fn' }>;

export interface StreamParams {
  startMs: number;
  endMs: number;
  stepMs: number;
  lookbackMs: number;
}

/** The query's shape when it streams: its aggregation and its one selector, else undefined. */
function streamable(e: Expr): { agg: Aggregate; sel: Selector; fn: RangeFn | undefined } | undefined {
  if (e.kind !== 'aggregate' || e.op === 'stddev' || e.op === 'stdvar' || e.op === 'quantile' || e.op === 'count_values') return undefined;
  if ((e.op === 'topk' || e.op === 'bottomk') && e.param?.kind !== 'number') return undefined;
  const x = e.expr;
  if (x.kind === 'vector' && x.sel.at === undefined) return { agg: e, sel: x.sel, fn: undefined };
  if (x.kind === 'range_fn' && x.param === undefined && x.matrix.kind === 'matrix' && x.matrix.sel.at === undefined) return { agg: e, sel: x.matrix.sel, fn: x };
  return undefined;
}

/** A series' value at each step: NaN-filled values and a presence mask. */
interface Column {
  v: Float64Array;
  present: Uint8Array;
}

/** The value at each step of a series, as eval.ts computes it at one step (instant or rangeFn). */
function columnOf(s: SeriesSamples, sel: Selector, fn: RangeFn | undefined, p: StreamParams, steps: number, col: Column): void {
  col.present.fill(0);
  if (fn) {
    const r = rangedOf(s);
    const rangeMs = fn.matrix.rangeMs;
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < steps; k++) {
      const endMs = p.startMs + k * p.stepMs - sel.offsetMs;
      while (lo < r.n && (r.t[lo] as number) < endMs - rangeMs) lo++;
      if (hi < lo) hi = lo;
      while (hi < r.n && (r.t[hi] as number) <= endMs) hi++;
      if (hi <= lo) continue;
      const v = rangeFunction(fn.fn, { t: r.t, v: r.v, lo, hi }, endMs, rangeMs, 0);
      if (v === undefined) continue;
      col.v[k] = v;
      col.present[k] = 1;
    }
    return;
  }
  let i = 0;
  for (let k = 0; k < steps; k++) {
    const ref = p.startMs + k * p.stepMs - sel.offsetMs;
    while (i < s.n && (s.t[i] as number) <= ref) i++;
    const at = i - 1;
    if (at < 0 || (s.t[at] as number) < ref - p.lookbackMs || s.stale[at] === 1) continue;
    col.v[k] = s.v[at] as number;
    col.present[k] = 1;
  }
}

/**
 * A range query that is one selector, or one range function without a parameter over one
 * (`sel`, `rate(sel[5m])`; no @): each series' column straight from its loaded samples
 * (columnOf), instead of evaluating every step and gathering per-step samples by label set.
 * Series come as load() gives them (sorted by label set); `undefined` when the query is of
 * another shape, or when two series would share a label set (step by step reports or merges
 * that). Samples were loaded and counted already; the points count too, as they do step by
 * step, so the same queries are refused.
 */
export async function plainRangeQuery(expr: Expr, selected: ReadonlyMap<Selector, readonly SeriesSamples[]>, p: StreamParams, budget: Budget): Promise<MatrixSeries[] | undefined> {
  let sel: Selector;
  let fn: RangeFn | undefined;
  if (expr.kind === 'vector') sel = expr.sel;
  else if (expr.kind === 'range_fn' && expr.param === undefined && expr.matrix.kind === 'matrix') {
    sel = expr.matrix.sel;
    fn = expr;
  } else return undefined;
  if (sel.at !== undefined) return undefined;
  const series = selected.get(sel) ?? [];
  const keepName = fn === undefined || fn.fn === 'last_over_time';
  const metrics = series.map((s) => (keepName ? s.metric : dropName(s.metric)));
  if (new Set(metrics.map((m) => m.key)).size !== metrics.length) return undefined;
  const steps = Math.floor((p.endMs - p.startMs) / p.stepMs) + 1;
  const col: Column = { v: new Float64Array(steps), present: new Uint8Array(steps) };
  const out: MatrixSeries[] = [];
  for (let j = 0; j < series.length; j++) {
    columnOf(series[j] as SeriesSamples, sel, fn, p, steps, col);
    let n = 0;
    for (let k = 0; k < steps; k++) n += col.present[k] as number;
    budget.addSamples(n);
    if (n > 0) {
      const t = new Float64Array(n);
      const v = new Float64Array(n);
      for (let k = 0, i = 0; k < steps; k++) {
        if (col.present[k] === 0) continue;
        t[i] = p.startMs + k * p.stepMs;
        v[i++] = col.v[k] as number;
      }
      out.push({ metric: metrics[j] as Metric, t, v });
    }
    await budget.slice();
  }
  return out;
}

/** The group label set of an input metric (eval.ts groupOf). */
function groupOf(agg: Aggregate, m: Metric): Metric {
  const names = new Set(agg.grouping.labels);
  if (agg.grouping.without) names.add('__name__');
  return restrict(m, names, !agg.grouping.without);
}

/**
 * Evaluates a streamable range query; undefined when the query is not of a streamable shape
 * (the caller evaluates it step by step).
 */
export async function streamRangeQuery(archive: Archive, expr: Expr, p: StreamParams, budget: Budget): Promise<MatrixSeries[] | undefined> {
  const shape = streamable(expr);
  if (!shape) return undefined;
  const { agg, sel, fn } = shape;
  const tooMany = (): PromError => new PromError('execution', `query selects more than promqlSeriesMax (${SERVER_LIMITS.promqlSeriesMax}) series`, 'TPD_QUERY_LIMIT');
  const refs = (await selectSeriesSliced(archive, sel.matchers, SERVER_LIMITS.promqlSeriesMax, tooMany, budget)).sort((a, b) => compareMetrics(a.metric, b.metric));
  // A range function drops the name (last_over_time keeps it): two series that collide
  // then are an error at every step they meet; the step-by-step path reports it.
  const keepName = fn === undefined || fn.fn === 'last_over_time';
  const inputOf = (r: SeriesRef): Metric => (keepName ? r.metric : dropName(r.metric));
  if (new Set(refs.map((r) => inputOf(r).key)).size !== refs.length) return undefined;
  const steps = Math.floor((p.endMs - p.startMs) / p.stepMs) + 1;
  const back = fn ? fn.matrix.rangeMs : p.lookbackMs;
  const fromMs = p.startMs - sel.offsetMs - back;
  const toMs = p.endMs - sel.offsetMs;
  const topk = agg.op === 'topk' || agg.op === 'bottomk';
  if (topk) checkK((agg.param as { value: number }).value);
  const groups = new Map<string, { metric: Metric; states: AggState[]; any: Uint8Array }>();
  const inputs = refs.map(inputOf);
  const groupKeys = inputs.map((m) => groupOf(agg, m));
  /** topk: every group's heaps at every step, given the series in series order (selectK's input order). */
  const heaps = topk ? new StepHeaps(agg.op as 'topk' | 'bottomk', (agg.param as { value: number }).value, steps) : undefined;
  const heapOf = topk ? heapGroups(heaps as StepHeaps, groupKeys, budget) : undefined;
  const col: Column = { v: new Float64Array(steps), present: new Uint8Array(steps) };
  // In batches only where every file of the range has its sidecar: a file read from its
  // blocks (the open one) would be read whole again by every batch.
  const batch = (await sidecarsCover(archive, fromMs * 1000, toMs * 1000 + 999)) ? SERVER_LIMITS.promqlStreamSeriesBatch : Math.max(1, refs.length);
  let done: SeriesSamples[] = [];
  for (let b = 0; b < refs.length; b += batch) {
    const part = refs.slice(b, b + batch);
    const before = budget.samples;
    const samples = await loadSamples(archive, part, fromMs, toMs, budget, done, refs.length <= batch);
    done = [...samples.values()];
    for (let i = b; i < b + part.length; i++) {
      const r = refs[i] as SeriesRef;
      columnOf(samples.get(r.id) as SeriesSamples, sel, fn, p, steps, col);
      if (heaps) {
        heaps.add((heapOf as number[])[i] as number, i, col.v, col.present);
        continue;
      }
      const g = groupKeys[i] as Metric;
      let group = groups.get(g.key);
      if (!group) groups.set(g.key, (group = { metric: g, states: [], any: new Uint8Array(steps) }));
      for (let k = 0; k < steps; k++) {
        if (col.present[k] === 0) continue;
        const x = col.v[k] as number;
        if (group.any[k] === 0) {
          group.any[k] = 1;
          group.states[k] = aggInit(x);
        } else {
          aggStep(agg.op as FoldOp, group.states[k] as AggState, x);
        }
      }
    }
    // Dropped: a batch's samples count against promqlSamplesMax only while it is held.
    budget.samples = before;
    await budget.slice();
  }
  const out = heaps ? chosen(heaps, inputs, steps, p) : folded(agg, groups, steps, p);
  let points = 0;
  for (const s of out) points += s.t.length;
  budget.addSamples(points);
  return out.sort((a, b) => compareMetrics(a.metric, b.metric));
}

function folded(agg: Aggregate, groups: Map<string, { metric: Metric; states: AggState[]; any: Uint8Array }>, steps: number, p: StreamParams): MatrixSeries[] {
  const op = agg.op as FoldOp;
  const out: MatrixSeries[] = [];
  for (const { metric, states, any } of groups.values()) {
    let n = 0;
    for (let k = 0; k < steps; k++) n += any[k] as number;
    if (n === 0) continue;
    const t = new Float64Array(n);
    const v = new Float64Array(n);
    for (let k = 0, j = 0; k < steps; k++) {
      if (any[k] === 0) continue;
      t[j] = p.startMs + k * p.stepMs;
      v[j++] = aggResult(op, states[k] as AggState);
    }
    out.push({ metric, t, v });
  }
  return out;
}

/**
 * Each series' heap group (groups in order of their first series), its heaps allocated: what
 * they hold until the end counts against promqlSamplesMax like samples.
 */
function heapGroups(heaps: StepHeaps, groupKeys: readonly Metric[], budget: Budget): number[] {
  const sizes = new Map<string, number>();
  for (const g of groupKeys) sizes.set(g.key, (sizes.get(g.key) ?? 0) + 1);
  const index = new Map<string, number>();
  for (const [key, n] of sizes) {
    const { group, entries } = heaps.addGroup(n);
    budget.addSamples(entries);
    index.set(key, group);
  }
  return groupKeys.map((g) => index.get(g.key) as number);
}

/** topk / bottomk: the series the heaps kept, with their values at the steps they were kept. */
function chosen(heaps: StepHeaps, inputs: readonly Metric[], steps: number, p: StreamParams): MatrixSeries[] {
  const counts = new Int32Array(inputs.length);
  heaps.forEach((s) => {
    counts[s] = (counts[s] as number) + 1;
  });
  const out: Array<MatrixSeries & { n: number }> = [];
  const at = new Int32Array(inputs.length).fill(-1);
  for (let s = 0; s < inputs.length; s++) {
    const n = counts[s] as number;
    if (n === 0) continue;
    at[s] = out.length;
    out.push({ metric: inputs[s] as Metric, t: new Float64Array(n), v: new Float64Array(n), n: 0 });
  }
  // A series is in one group: its entries come in step order.
  heaps.forEach((s, step, v) => {
    const o = out[at[s] as number] as MatrixSeries & { n: number };
    o.t[o.n] = p.startMs + step * p.stepMs;
    o.v[o.n++] = v;
  });
  return out.map(({ metric, t, v }) => ({ metric, t, v }));
}
