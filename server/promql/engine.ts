/**
 * Runs a query: parse (parse.ts), select the series of every selector (catalog.ts), read
 * their samples over the one time range all selectors need in a single archive pass
 * (load.ts), then evaluate step by step (eval.ts); wide aggregations of one selector stream
 * series by series instead (stream.ts). Evaluation yields to the event loop between
 * slices and gives up at the deadline or once its client has left. Bounds: server/limits.ts (promql*).
 */
import type { Archive } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import { selectorsOf, typeOf, type Expr, type Selector, type SubqueryExpr } from './ast.js';
import { selectSeriesSliced, type SeriesRef } from './catalog.js';
import { PromError, badData } from './errors.js';
import { Evaluator, type MatrixSeries, type Sample } from './eval.js';
import { compareMetrics, type Metric } from './labels.js';
import { Budget, loadSamples, type SeriesSamples } from './load.js';
import { parseQueryCachedSliced } from './parse-cache.js';
import { sortSamples } from './sort.js';
import { plainRangeQuery, streamRangeQuery } from './stream.js';
import { neededRange, runSubqueries, type SubqueryMatrix } from './subquery.js';

export const DEFAULT_LOOKBACK_MS = 5 * 60_000;

export interface QueryParams {
  query: string;
  startMs: number;
  endMs: number;
  /** 0 for an instant query. */
  stepMs: number;
  lookbackMs: number;
  timeoutMs: number;
  /** false: evaluate step by step even where stream.ts could (tests compare the two). */
  stream?: boolean;
  /** The client leaving: the evaluation stops at its next slice (errorType canceled). */
  signal?: AbortSignal | undefined;
}

export type QueryResult =
  | { resultType: 'scalar'; t: number; v: number }
  | { resultType: 'vector'; t: number; samples: Sample[] }
  | { resultType: 'matrix'; series: MatrixSeries[] };

const tooManySeries = (): PromError =>
  new PromError('execution', `query selects more than promqlSeriesMax (${SERVER_LIMITS.promqlSeriesMax}) series`, 'TPD_QUERY_LIMIT');

async function load(archive: Archive, expr: Expr, p: QueryParams, budget: Budget): Promise<Map<Selector, SeriesSamples[]>> {
  const sels = selectorsOf(expr);
  const chosen = new Map<Selector, SeriesRef[]>();
  const all: SeriesRef[] = [];
  for (const { sel } of sels) {
    const refs = await selectSeriesSliced(archive, sel.matchers, SERVER_LIMITS.promqlSeriesMax, tooManySeries, budget);
    chosen.set(sel, refs);
    all.push(...refs);
    if (all.length > SERVER_LIMITS.promqlSeriesMax) throw tooManySeries();
  }
  const { fromMs, toMs } = neededRange(expr, p);
  const samples = await loadSamples(archive, all, fromMs, toMs, budget);
  const selected = new Map<Selector, SeriesSamples[]>();
  for (const [sel, refs] of chosen) {
    const list = refs.map((r) => samples.get(r.id) as SeriesSamples).sort((a, b) => compareMetrics(a.metric, b.metric));
    selected.set(sel, list);
  }
  return selected;
}

export async function runQuery(archive: Archive, p: QueryParams): Promise<QueryResult> {
  const budget = new Budget(performance.now() + p.timeoutMs, p.signal);
  const expr = await parseQueryCachedSliced(p.query, () => budget.slice());
  const type = typeOf(expr);
  if (p.stepMs > 0 && type === 'matrix') throw badData('invalid expression type "range vector" for range query, must be Scalar or instant Vector');
  if (p.stepMs > 0 && p.stream !== false) {
    const streamed = await streamRangeQuery(archive, expr, p, budget);
    if (streamed) return { resultType: 'matrix', series: streamed };
  }
  const selected = await load(archive, expr, p, budget);
  if (p.stepMs > 0 && p.stream !== false) {
    const plain = await plainRangeQuery(expr, selected, p, budget);
    if (plain) return { resultType: 'matrix', series: plain };
  }
  const subqueries = new Map<SubqueryExpr, SubqueryMatrix>();
  const ctx = { startMs: p.startMs, endMs: p.endMs, lookbackMs: p.lookbackMs, selected, subqueries };
  await runSubqueries(expr, { ...ctx, evalEndMs: p.stepMs === 0 ? p.startMs : p.endMs }, subqueries, budget);
  const ev = new Evaluator(ctx);
  if (p.stepMs === 0) return instant(ev, expr, p.startMs);
  return rangeQuery(ev, expr, p, budget);
}

function instant(ev: Evaluator, expr: Expr, t: number): QueryResult {
  if (expr.kind === 'matrix') {
    const { list } = ev.windows(expr, t);
    const series = list.map(({ metric, w }) => ({ metric, t: w.t.subarray(w.lo, w.hi), v: w.v.subarray(w.lo, w.hi) }));
    return { resultType: 'matrix', series: series.sort((a, b) => compareMetrics(a.metric, b.metric)) };
  }
  // A bare subquery: its whole answer (its steps are the window at t).
  if (expr.kind === 'subquery') return { resultType: 'matrix', series: ev.subquery(expr).series.map(({ metric, n, t: ts, v }) => ({ metric, t: ts.subarray(0, n), v: v.subarray(0, n) })) };
  const x = ev.at(expr, t);
  if (x.type === 'scalar') return { resultType: 'scalar', t, v: x.v };
  return { resultType: 'vector', t, samples: sortSamples(x.samples) };
}

/** Grows per-series point lists as steps come. */
class MatrixBuilder {
  private readonly byKey = new Map<string, { metric: Metric; t: number[]; v: number[] }>();

  add(metric: Metric, t: number, v: number): void {
    let s = this.byKey.get(metric.key);
    if (!s) this.byKey.set(metric.key, (s = { metric, t: [], v: [] }));
    s.t.push(t);
    s.v.push(v);
  }

  build(): MatrixSeries[] {
    const out = [...this.byKey.values()].map((s) => ({ metric: s.metric, t: Float64Array.from(s.t), v: Float64Array.from(s.v) }));
    return out.sort((a, b) => compareMetrics(a.metric, b.metric));
  }
}

async function rangeQuery(ev: Evaluator, expr: Expr, p: QueryParams, budget: Budget): Promise<QueryResult> {
  const steps = Math.floor((p.endMs - p.startMs) / p.stepMs) + 1;
  const out = new MatrixBuilder();
  const empty = { key: '', labels: [] } as Metric;
  for (let i = 0; i < steps; i++) {
    const t = p.startMs + i * p.stepMs;
    const x = ev.at(expr, t);
    if (x.type === 'scalar') out.add(empty, t, x.v);
    else for (const s of x.samples) out.add(s.metric, t, s.v);
    // The answer is held whole until sent: its points count against the same budget.
    budget.addSamples(x.type === 'scalar' ? 1 : x.samples.length);
    await budget.slice();
  }
  return { resultType: 'matrix', series: out.build() };
}

