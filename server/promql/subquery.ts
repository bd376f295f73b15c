/**
 * Subqueries, `expr[range:step] offset d @ t`, as Prometheus 2.42 evaluates them
 * (promql/engine.go, SubqueryExpr and evalSubquery). A subquery is evaluated once for the
 * whole evaluator it is in (the query's steps, or an outer subquery's): its expression at
 * every multiple of step (from the epoch) from the first at or after
 * `start - offset - range` to `end - offset`, a range query of its own, into series of
 * points. A function over it then reads those points as a range selector with the
 * subquery's range and offset, [t - offset - range, t - offset] at each step t (2.42's
 * closed window); the answer of a bare subquery (an instant query) is all of them. `@ t`
 * makes the offset `offset + (evaluator start - t)`, so a step invariant call over it reads
 * its points at t, and predict_linear's (not step invariant) moves with the steps. Inside a
 * subquery, step invariant subtrees are evaluated at its first step and moving @ times
 * (aggregation parameters) move from it; `@ start()` and `@ end()` stay the query's; under
 * an @, selectors see no sample past the @ time less the subqueries' offsets.
 * Without a step, the step is DEFAULT_SUBQUERY_STEP_MS (Prometheus: the global
 * evaluation_interval, 1m by default).
 *
 * The answers are computed before the evaluation of the steps (runSubqueries), in slices of
 * the query's Budget: it yields every promqlSliceMs, stops at the deadline or once the
 * client has left; a subquery's steps count against promqlSubqueryStepsMax (before it runs)
 * and its points against promqlSamplesMax, as loaded samples.
 */
import type { AtModifier, Expr, SubqueryExpr } from './ast.js';
import { childrenOf } from './ast.js';
import { Evaluator, type EvalContext } from './eval.js';
import { invarianceOf, type Invariance } from './invariant.js';
import { compareMetrics, dropName, makeMetric, type Metric } from './labels.js';
import type { Budget, SeriesSamples } from './load.js';

/** A subquery's step when it names none: Prometheus' default global evaluation_interval. */
export const DEFAULT_SUBQUERY_STEP_MS = 60_000;

/** A subquery's answer: its series (in label order) and the offset its windows take. */
export interface SubqueryMatrix {
  readonly offsetMs: number;
  readonly series: readonly SeriesSamples[];
}

/** The first and last step of an evaluator. */
interface Steps {
  readonly startMs: number;
  readonly endMs: number;
}

/** The query's own start and end (`@ start()`, `@ end()`). */
interface QueryTimes {
  readonly startMs: number;
  readonly endMs: number;
}

function atMs(at: AtModifier, q: QueryTimes): number {
  return at === 'start' ? q.startMs : at === 'end' ? q.endMs : at.ms;
}

/** A subquery's own steps in an evaluator of steps `ev`, and the offset its windows take there. */
export function subqueryRange(sub: SubqueryExpr, ev: Steps, q: QueryTimes): { offsetMs: number; startMs: number; endMs: number; stepMs: number } {
  const stepMs = sub.stepMs > 0 ? sub.stepMs : DEFAULT_SUBQUERY_STEP_MS;
  const offsetMs = sub.offsetMs + (sub.at === undefined ? 0 : ev.startMs - atMs(sub.at, q));
  const first = ev.startMs - offsetMs - sub.rangeMs;
  const past = ((first % stepMs) + stepMs) % stepMs;
  return { offsetMs, startMs: past === 0 ? first : first - past + stepMs, endMs: ev.endMs - offsetMs, stepMs };
}

/**
 * How many steps a subquery evaluates its expression at. A step invariant expression is
 * evaluated once, at the first step, and repeated: 2.42 answers that point even when the
 * first step is past the last (engine.go, StepInvariantExpr).
 */
function stepsOf(sub: SubqueryExpr, r: Steps & { readonly stepMs: number }): number {
  if (r.endMs >= r.startMs) return Math.floor((r.endMs - r.startMs) / r.stepMs) + 1;
  return invarianceOf(sub.expr).wrapped.has(sub.expr) ? 1 : 0;
}

/**
 * Walks a tree as an evaluator of steps `ev` evaluates it: `visit` sees each node with the
 * steps it is evaluated at (a step invariant subtree at the first only), and answers
 * whether to go into its operands. A subquery's expression is left to the caller (its own
 * steps, subqueryRange).
 */
function walk(root: Expr, ev: Steps, visit: (e: Expr, steps: Steps) => boolean): Invariance {
  const inv = invarianceOf(root);
  const go = (e: Expr, steps: Steps): void => {
    // A call reads its subquery argument over its own steps (2.42 unwraps it), even wrapped.
    const at = inv.wrapped.has(e) && e.kind !== 'subquery' ? { startMs: steps.startMs, endMs: steps.startMs } : steps;
    if (!visit(e, at)) return;
    for (const c of childrenOf(e)) go(c, at);
  };
  go(root, ev);
  return inv;
}

/** The time range [fromMs, toMs] of samples the selectors of a query need over its steps, subqueries' included. */
export function neededRange(root: Expr, q: QueryTimes & { readonly lookbackMs: number }): { fromMs: number; toMs: number } {
  let fromMs = Infinity;
  let toMs = -Infinity;
  const inEvaluator = (expr: Expr, ev: Steps): void => {
    walk(expr, ev, (e, steps) => {
      if (e.kind === 'vector' || e.kind === 'matrix') {
        // An evaluator without a step never reads its selectors (a step invariant subtree there has one, at its start).
        if (steps.startMs > steps.endMs) return false;
        const back = e.kind === 'matrix' ? e.rangeMs : q.lookbackMs;
        const [first, last] = e.sel.at === undefined ? [steps.startMs, steps.endMs] : [atMs(e.sel.at, q), atMs(e.sel.at, q)];
        fromMs = Math.min(fromMs, first - e.sel.offsetMs - back);
        toMs = Math.max(toMs, last - e.sel.offsetMs);
        return false;
      }
      if (e.kind !== 'subquery') return true;
      // Over the steps runSubqueries evaluates it at, even none: a subquery nested in it has its own.
      const r = subqueryRange(e, steps, q);
      inEvaluator(e.expr, { startMs: r.startMs, endMs: r.endMs });
      return false;
    });
  };
  inEvaluator(root, q);
  return { fromMs, toMs };
}

/**
 * Evaluates once, at the start of an evaluator without a step, the step invariant subtrees
 * of `root` (outside its subqueries) for what they raise: 2.42 evaluates them there, at
 * their one step, and throws their answers away.
 */
function evaluateInvariants(root: Expr, ctx: EvalContext & { readonly evalStartMs: number; readonly evalEndMs: number }): void {
  const { wrapped } = invarianceOf(root);
  walk(root, { startMs: ctx.evalStartMs, endMs: ctx.evalEndMs }, (e) => {
    // A range (a call's argument, read by the call) is no evaluation of its own.
    if (e.kind === 'subquery' || e.kind === 'matrix') return false;
    if (!wrapped.has(e)) return true;
    new Evaluator(ctx).at(e, ctx.evalStartMs);
    return false;
  });
}

/**
 * Computes the answer of every subquery of `root` (evaluated by an evaluator of `ctx`) into
 * `out`, inner ones first; each runs its own Evaluator over its steps, a slice at a time.
 */
export async function runSubqueries(root: Expr, ctx: EvalContext & { readonly evalEndMs: number }, out: Map<SubqueryExpr, SubqueryMatrix>, budget: Budget): Promise<void> {
  const found: Array<{ sub: SubqueryExpr; steps: Steps }> = [];
  walk(root, { startMs: ctx.evalStartMs ?? ctx.startMs, endMs: ctx.evalEndMs }, (e, steps) => {
    if (e.kind !== 'subquery') return true;
    found.push({ sub: e, steps });
    return false;
  });
  for (const { sub, steps } of found) {
    const r = subqueryRange(sub, steps, ctx);
    const n = stepsOf(sub, r);
    budget.addSubquerySteps(n);
    const visibleToMs = (sub.at === undefined ? (ctx.visibleToMs ?? Infinity) : atMs(sub.at, ctx)) - sub.offsetMs;
    const inner = { ...ctx, evalStartMs: r.startMs, evalEndMs: r.endMs, visibleToMs, subqueries: out };
    // Even with no step in its range (its answer is then empty), 2.42 evaluates what is in it
    // (engine.go, SubqueryExpr: newEv.eval whatever its start and end): a subquery nested in
    // it over its own steps, and its step invariant subtrees once, at its start, for their
    // errors (neededRange loads the samples of both).
    await runSubqueries(sub.expr, inner, out, budget);
    if (n === 0) evaluateInvariants(sub.expr, inner);
    const ev = new Evaluator(inner);
    const points = new Map<string, { metric: Metric; t: number[]; v: number[] }>();
    for (let i = 0; i < n; i++) {
      const t = r.startMs + i * r.stepMs;
      const x = ev.at(sub.expr, t);
      if (x.type !== 'vector') throw new Error('a subquery of something else than an instant vector (parse.ts refuses it)');
      for (const s of x.samples) {
        let p = points.get(s.metric.key);
        if (!p) points.set(s.metric.key, (p = { metric: s.metric, t: [], v: [] }));
        p.t.push(t);
        p.v.push(s.v);
      }
      budget.addSamples(x.samples.length);
      await budget.slice();
    }
    // In an evaluation of no step, 2.42's absent_over_time (engine.go) counts 1 + (end - start) /
    // step steps, truncated to 1, finds none of them present and answers its series with no
    // point; a unary minus keeps it, a range function of it skips it, a bare subquery shows it.
    if (n === 0) {
      const labels = noStepAbsent(sub.expr);
      if (labels) points.set('', { metric: makeMetric(labels), t: [], v: [] });
    }
    const series = [...points.values()].map(({ metric, t, v }): SeriesSamples => {
      const ts = Float64Array.from(t);
      const vs = Float64Array.from(v);
      return { metric, n: ts.length, t: ts, v: vs, stale: new Uint8Array(ts.length), ranged: { n: ts.length, t: ts, v: vs } };
    });
    out.set(sub, { offsetMs: r.offsetMs, series: inPrometheusOrder(series, sub, r, inner, out) });
  }
}

/** The labels of absent_over_time (under unary minuses) as a subquery's whole expression, else undefined. */
function noStepAbsent(e: Expr): ReadonlyArray<readonly [string, string]> | undefined {
  while (e.kind === 'neg') e = e.expr;
  return e.kind === 'absent' && (e.expr.kind === 'matrix' || e.expr.kind === 'subquery') ? e.labels : undefined;
}

/**
 * A subquery's series in the order 2.42 gives them (what a range function of it keeps, and
 * sort's ties show): engine.go builds a range function's matrix series by series in its
 * input's order (a selector's, or a subquery's), names dropped; an evaluation of one step at
 * its start (start = end, or a step invariant expression) keeps that step's order
 * (rangeEval's instant shortcut); anything else it assembles from a Go map, an order that
 * changes from run to run, and label order is as good as any.
 */
function inPrometheusOrder(series: SeriesSamples[], sub: SubqueryExpr, r: Steps, ctx: EvalContext, out: ReadonlyMap<SubqueryExpr, SubqueryMatrix>): SeriesSamples[] {
  const e = sub.expr;
  if (e.kind === 'range_fn') {
    const inputs = e.matrix.kind === 'subquery' ? out.get(e.matrix)?.series : ctx.selected.get(e.matrix.sel);
    const rank = new Map<string, number>();
    (inputs ?? []).forEach((s, i) => {
      const key = e.fn === 'last_over_time' ? s.metric.key : dropName(s.metric).key;
      if (!rank.has(key)) rank.set(key, i);
    });
    const at = (s: SeriesSamples): number => rank.get(s.metric.key) ?? Infinity;
    return series.sort((a, b) => at(a) - at(b) || compareMetrics(a.metric, b.metric));
  }
  if (r.startMs === r.endMs || invarianceOf(e).wrapped.has(e)) return series;
  return series.sort((a, b) => compareMetrics(a.metric, b.metric));
}
