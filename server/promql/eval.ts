/**
 * Evaluates a parsed query at one step time over samples already loaded
 * (server/promql/load.ts), with Prometheus 2.42's rules: an instant selector takes the
 * latest sample at most the lookback old (inclusive), none when that sample is a stale
 * marker; a range selector takes the samples in [t - range, t] minus stale markers;
 * offset moves t back and @ fixes it; functions and arithmetic drop the metric name;
 * vector matching and set operators in server/promql/eval-binary.ts.
 */
import type { Expr, MatrixExpr, Selector, SubqueryExpr } from './ast.js';
import { execution } from './errors.js';
import { binop, clampFunction, elementFunction, isComparison, rangeFunction, type Window } from './functions.js';
import { dropName, makeMetric, restrict, type Metric } from './labels.js';
import { sortByValue } from './sort.js';
import { rangedOf, type SeriesSamples } from './load.js';
import type { SubqueryMatrix } from './subquery.js';
import { lower, lowerFrom, upper, upperFrom } from './search.js';
import { aggregateStep } from './aggregate.js';
import { dateField, goInt64 } from './calendar.js';
import { histogramQuantile } from './histogram.js';
import { invarianceOf, type Invariance } from './invariant.js';
import { setOperation, signatureOf, vectorBinop, vectorScalar } from './eval-binary.js';
import { checkRewrite, labelRewrite, type LabelRewrite } from './label-fns.js';

export interface Sample {
  readonly metric: Metric;
  readonly v: number;
}

export type StepValue = { readonly type: 'scalar'; readonly v: number } | { readonly type: 'vector'; readonly samples: Sample[] };

export interface MatrixSeries {
  readonly metric: Metric;
  readonly t: Float64Array;
  readonly v: Float64Array;
}

export interface EvalContext {
  readonly startMs: number;
  readonly endMs: number;
  readonly lookbackMs: number;
  /** The series each selector selected, in Prometheus' order (by label set). */
  readonly selected: ReadonlyMap<Selector, readonly SeriesSamples[]>;
  /**
   * The first step of this evaluator (the query's start, or a subquery's first step,
   * server/promql/subquery.ts): where step invariant subtrees are evaluated and what moving
   * @ times move from. startMs / endMs stay the query's (`@ start()`, `@ end()`).
   */
  readonly evalStartMs?: number;
  /**
   * Inside a subquery with @ (and any subquery within it): the last sample time its selectors
   * without @ of their own see, before their offset (2.42 selects their samples up to the @
   * time less the subqueries' offsets, getTimeRangesForSelector).
   */
  readonly visibleToMs?: number;
  /** Every subquery's answer, computed before the steps (subquery.ts runSubqueries). */
  readonly subqueries?: ReadonlyMap<SubqueryExpr, SubqueryMatrix>;
}

export class Evaluator {
  /** Per selector node (and per bound): where each series' last search ended (upperFrom). */
  private readonly hints = new WeakMap<object, Int32Array>();
  /** Group label sets per aggregation node and input metric (label sets recur at every step). */
  private readonly groups = new WeakMap<Expr, Map<Metric, Metric>>();
  /** Matching signatures per binary node and metric. */
  private readonly signatures = new WeakMap<Expr, Map<Metric, string>>();
  /** Per range function node: whether its outputs' label sets are distinct (distinctOutputs). */
  private readonly distinct = new WeakMap<Expr, boolean>();
  /** Per unary minus and range function node: the input series each output label set came from, over the steps so far. */
  private readonly sources = new WeakMap<Expr, Map<string, string>>();
  /** Step invariance of the query's tree, found at the first evaluation (of the root). */
  private invariance: Invariance | undefined;
  /** Answers of wrapped (step invariant) subtrees, evaluated at the start. */
  private readonly atStart = new Map<Expr, StepValue>();
  /** label_replace / label_join nodes, their regex compiled once a query. */
  private readonly rewrites = new WeakMap<Expr, LabelRewrite>();

  constructor(private readonly ctx: EvalContext) {}

  /** This evaluator's first step (EvalContext.evalStartMs). */
  private get evalStart(): number {
    return this.ctx.evalStartMs ?? this.ctx.startMs;
  }

  /** A subquery's answer; runSubqueries computed it before any step. */
  subquery(e: SubqueryExpr): SubqueryMatrix {
    const m = this.ctx.subqueries?.get(e);
    if (!m) throw new Error('subquery evaluated before runSubqueries (server/promql/subquery.ts)');
    return m;
  }

  /** A subquery's points at step t ([t - offset - range, t - offset]), one entry per series with some. */
  subqueryWindows(e: SubqueryExpr, t: number): Array<{ metric: Metric; w: Window }> {
    const { offsetMs, series } = this.subquery(e);
    const endMs = t - offsetMs;
    const list: Array<{ metric: Metric; w: Window }> = [];
    for (const s of series) {
      const lo = lower(s.t, s.n, endMs - e.rangeMs);
      const hi = upper(s.t, s.n, endMs);
      if (hi > lo) list.push({ metric: s.metric, w: { t: s.t, v: s.v, lo, hi } });
    }
    return list;
  }

  /** The selector's @ time (ms), if any. */
  private fixedAt(sel: Selector): number | undefined {
    return sel.at === undefined ? undefined : sel.at === 'start' ? this.ctx.startMs : sel.at === 'end' ? this.ctx.endMs : sel.at.ms;
  }

  /** The selector's reference time at step t: @ fixes it (moving with the steps in an aggregation's parameter), offset moves it back. */
  private refTime(sel: Selector, t: number): number {
    const at = this.fixedAt(sel);
    if (at === undefined) return t - sel.offsetMs;
    return at - sel.offsetMs + (sel.moving === true ? t - this.evalStart : 0);
  }

  /** The last sample time a selector sees: 2.42 reads an @ selector's samples up to its @ time (less its offset) only. */
  private visibleTo(sel: Selector): number {
    const at = this.fixedAt(sel);
    return (at ?? this.ctx.visibleToMs ?? Infinity) - sel.offsetMs;
  }

  /** The value of e at step t; a subtree 2.42 finds step invariant is evaluated once, at the start (invariant.ts). */
  at(e: Expr, t: number): StepValue {
    this.invariance ??= invarianceOf(e);
    if (!this.invariance.wrapped.has(e)) return this.step(e, t);
    let v = this.atStart.get(e);
    if (!v) this.atStart.set(e, (v = this.step(e, this.evalStart)));
    return v;
  }

  private step(e: Expr, t: number): StepValue {
    switch (e.kind) {
      case 'number':
        return { type: 'scalar', v: e.value };
      case 'time':
        return { type: 'scalar', v: t / 1000 };
      case 'vector':
        return { type: 'vector', samples: this.instant(e.sel, t) };
      case 'matrix':
      case 'subquery':
        throw execution('a range vector cannot be evaluated at a step (only as a function argument or a whole instant query)');
      case 'neg': {
        const x = this.at(e.expr, t);
        if (x.type === 'scalar') return { type: 'scalar', v: -x.v };
        return { type: 'vector', samples: this.distinctOverRange(e, x.samples.map((s) => s.metric), x.samples.map((s) => ({ metric: dropName(s.metric), v: -s.v }))) };
      }
      case 'binary':
        return this.binary(e, t);
      case 'set':
        return { type: 'vector', samples: unique(setOperation(e, this.vector(e.lhs, t), this.vector(e.rhs, t), (m) => this.signature(e, m))) };
      case 'aggregate':
        return { type: 'vector', samples: this.aggregate(e, t) };
      case 'range_fn':
        return { type: 'vector', samples: this.rangeFn(e, t) };
      case 'element_fn': {
        const x = this.vector(e.expr, t);
        return { type: 'vector', samples: unique(x.map((s) => ({ metric: dropName(s.metric), v: elementFunction(e.fn, s.v) }))) };
      }
      case 'clamp_fn': {
        const x = this.vector(e.expr, t);
        const p = e.params.map((q) => this.scalar(q, t));
        // clamp with max below min answers nothing.
        if (e.fn === 'clamp' && (p[1] as number) < (p[0] as number)) return { type: 'vector', samples: [] };
        return { type: 'vector', samples: unique(x.map((s) => ({ metric: dropName(s.metric), v: clampFunction(e.fn, s.v, p) }))) };
      }
      case 'label_fn': {
        const x = this.vector(e.expr, t);
        let r = this.rewrites.get(e);
        if (!r) this.rewrites.set(e, (r = labelRewrite(e.f)));
        checkRewrite(r);
        const rewrite = r;
        return { type: 'vector', samples: unique(x.map((s) => ({ metric: rewrite.apply(s.metric), v: s.v }))) };
      }
      case 'absent': {
        const arg = e.expr;
        const present = arg.kind === 'matrix' ? this.windows(arg, t).list.length > 0 : arg.kind === 'subquery' ? this.subqueryWindows(arg, t).length > 0 : this.vector(arg, t).length > 0;
        return { type: 'vector', samples: present ? [] : [{ metric: makeMetric(e.labels), v: 1 }] };
      }
      case 'vector_fn':
        return { type: 'vector', samples: [{ metric: makeMetric([]), v: this.scalar(e.expr, t) }] };
      case 'scalar_fn': {
        const x = this.vector(e.expr, t);
        return { type: 'scalar', v: x.length === 1 ? (x[0] as Sample).v : NaN };
      }
      case 'histogram_quantile': {
        const q = this.scalar(e.q, t);
        return { type: 'vector', samples: unique(histogramQuantile(q, this.vector(e.expr, t))) };
      }
      case 'sort':
        return { type: 'vector', samples: sortByValue(this.vector(e.expr, t), e.desc) };
      case 'timestamp': {
        // Of a selector: its samples' times (engine.go's special case); else the evaluation time.
        if (e.expr.kind === 'vector') return { type: 'vector', samples: unique(this.instantTimes(e.expr.sel, t)) };
        return { type: 'vector', samples: unique(this.vector(e.expr, t).map((s) => ({ metric: dropName(s.metric), v: t / 1000 }))) };
      }
      case 'date_fn': {
        const fn = e.fn;
        if (!e.expr) return { type: 'vector', samples: [{ metric: makeMetric([]), v: dateField(fn, BigInt(Math.trunc(t / 1000))) }] };
        return { type: 'vector', samples: unique(this.vector(e.expr, t).map((s) => ({ metric: dropName(s.metric), v: dateField(fn, goInt64(s.v)) }))) };
      }
    }
  }

  /** An instant selector's samples at step t, each valued at its sample's time (seconds). */
  private instantTimes(sel: Selector, t: number): Sample[] {
    // 2.42 reads such a selector at its @ time itself (engine.go sets its offset step by step),
    // and, as any selector, sees no sample past visibleTo (under a subquery's @ too).
    const ref = this.fixedAt(sel) ?? this.refTime(sel, t);
    const upTo = Math.min(ref, this.visibleTo(sel));
    const out: Sample[] = [];
    for (const s of this.ctx.selected.get(sel) ?? []) {
      const i = upper(s.t, s.n, upTo) - 1;
      if (i < 0 || (s.t[i] as number) < ref - this.ctx.lookbackMs || s.stale[i] === 1) continue;
      out.push({ metric: dropName(s.metric), v: (s.t[i] as number) / 1000 });
    }
    return out;
  }

  private scalar(e: Expr, t: number): number {
    const x = this.at(e, t);
    if (x.type !== 'scalar') throw execution('expected a scalar');
    return x.v;
  }

  private vector(e: Expr, t: number): Sample[] {
    const x = this.at(e, t);
    if (x.type !== 'vector') throw execution('expected an instant vector');
    return x.samples;
  }

  private hintsOf(key: object, n: number): Int32Array {
    let h = this.hints.get(key);
    if (h?.length !== n) this.hints.set(key, (h = new Int32Array(n)));
    return h;
  }

  private instant(sel: Selector, t: number): Sample[] {
    const ref = this.refTime(sel, t);
    const upTo = Math.min(ref, this.visibleTo(sel));
    const out: Sample[] = [];
    const series = this.ctx.selected.get(sel) ?? [];
    const hints = this.hintsOf(sel, series.length);
    for (let j = 0; j < series.length; j++) {
      const s = series[j] as SeriesSamples;
      const i = upperFrom(s.t, s.n, upTo, hints, j) - 1;
      if (i < 0 || (s.t[i] as number) < ref - this.ctx.lookbackMs || s.stale[i] === 1) continue;
      out.push({ metric: s.metric, v: s.v[i] as number });
    }
    return out;
  }

  /** Windows of a range selector at step t, one per series with samples in it. */
  windows(m: MatrixExpr, t: number): { endMs: number; list: Array<{ metric: Metric; w: Window }> } {
    const endMs = this.refTime(m.sel, t);
    const list: Array<{ metric: Metric; w: Window }> = [];
    for (const s of this.ctx.selected.get(m.sel) ?? []) {
      const r = rangedOf(s);
      const lo = lower(r.t, r.n, endMs - m.rangeMs);
      const hi = upper(r.t, r.n, Math.min(endMs, this.visibleTo(m.sel)));
      if (hi > lo) list.push({ metric: s.metric, w: { t: r.t, v: r.v, lo, hi } });
    }
    return { endMs, list };
  }

  private rangeFn(e: Extract<Expr, { kind: 'range_fn' }>, t: number): Sample[] {
    const param = e.param ? this.scalar(e.param, t) : 0;
    const param2 = e.param2 ? this.scalar(e.param2, t) : 0;
    if (e.matrix.kind === 'subquery') {
      // The subquery's answer read as 2.42 reads it (evalSubquery): a range selector of its
      // series with its offset, @ made an offset from this evaluator's start.
      const { offsetMs, series } = this.subquery(e.matrix);
      return this.rangeFnOver(e, t, series, t - offsetMs, t - offsetMs, param, param2);
    }
    const { sel } = e.matrix;
    // A call 2.42 does not find step invariant (predict_linear always; quantile_over_time with
    // a q that changes) reads its @-fixed range moving with a range query's steps
    // (prometheus/prometheus#11708), seeing no sample past the @ time.
    const moving = sel.at !== undefined && sel.moving !== true && this.invariance?.invariant.has(e) !== true;
    const endMs = this.refTime(sel, t) + (moving ? t - this.evalStart : 0);
    return this.rangeFnOver(e, t, this.ctx.selected.get(sel) ?? [], endMs, Math.min(endMs, this.visibleTo(sel)), param, param2);
  }

  /** A range function of each series over [endMs - range, min(endMs, lastMs)]. */
  private rangeFnOver(e: Extract<Expr, { kind: 'range_fn' }>, t: number, series: readonly SeriesSamples[], endMs: number, lastMs: number, param: number, param2: number): Sample[] {
    const rangeMs = e.matrix.rangeMs;
    // last_over_time acts like offset: it keeps the metric name.
    const keepName = e.fn === 'last_over_time';
    const loHints = this.hintsOf(e.matrix, series.length);
    const hiHints = this.hintsOf(e, series.length);
    const out: Sample[] = [];
    const inputs: Metric[] = [];
    for (let j = 0; j < series.length; j++) {
      const s = series[j] as SeriesSamples;
      const r = rangedOf(s);
      const lo = lowerFrom(r.t, r.n, endMs - rangeMs, loHints, j);
      const hi = upperFrom(r.t, r.n, lastMs, hiHints, j);
      if (hi <= lo) continue;
      const v = rangeFunction(e.fn, { t: r.t, v: r.v, lo, hi }, endMs, rangeMs, param, param2, t);
      if (v === undefined) continue;
      out.push({ metric: keepName ? s.metric : dropName(s.metric), v });
      inputs.push(s.metric);
    }
    return this.distinctOutputs(e, series, keepName) ? out : this.distinctOverRange(e, inputs, out);
  }

  /**
   * The outputs of a unary minus or a range function, whose label sets Prometheus checks over
   * the node's whole range (engine.go: ContainsSameLabelset of the node's matrix, where other
   * nodes check each step): two input series left alike by the dropped name are an error
   * once both have had a value in the range, at one step or at different ones.
   */
  private distinctOverRange(e: Expr, inputs: readonly Metric[], outputs: Sample[]): Sample[] {
    let from = this.sources.get(e);
    if (!from) this.sources.set(e, (from = new Map()));
    for (let i = 0; i < outputs.length; i++) {
      const key = (outputs[i] as Sample).metric.key;
      const source = (inputs[i] as Metric).key;
      const seen = from.get(key);
      if (seen === undefined) from.set(key, source);
      else if (seen !== source) throw execution('vector cannot contain metrics with the same labelset');
    }
    return outputs;
  }

  /**
   * Whether a range function's outputs never share a label set, at any step: true when
   * dropping the name keeps its series apart (the usual case), which spares the check of
   * distinctOverRange().
   */
  private distinctOutputs(e: Expr, series: readonly SeriesSamples[], keepName: boolean): boolean {
    let known = this.distinct.get(e);
    if (known === undefined) {
      const keys = new Set<string>();
      for (const s of series) keys.add(keepName ? s.metric.key : dropName(s.metric).key);
      known = keys.size === series.length;
      this.distinct.set(e, known);
    }
    return known;
  }

  // ------------------------------------------------------------ binary operators

  private binary(e: Extract<Expr, { kind: 'binary' }>, t: number): StepValue {
    const l = this.at(e.lhs, t);
    const r = this.at(e.rhs, t);
    if (l.type === 'scalar' && r.type === 'scalar') {
      const { value, keep } = binop(e.op, l.v, r.v);
      return { type: 'scalar', v: isComparison(e.op) ? (keep ? 1 : 0) : value };
    }
    if (l.type === 'vector' && r.type === 'vector') return { type: 'vector', samples: unique(vectorBinop(e, l.samples, r.samples, (m) => this.signature(e, m))) };
    const vec = l.type === 'vector' ? l.samples : (r as { samples: Sample[] }).samples;
    const scalar = l.type === 'scalar' ? l.v : (r as { v: number }).v;
    return { type: 'vector', samples: unique(vectorScalar(e.op, vec, scalar, l.type === 'scalar', e.bool)) };
  }

  private signature(e: Extract<Expr, { kind: 'binary' | 'set' }>, m: Metric): string {
    let cache = this.signatures.get(e);
    if (!cache) this.signatures.set(e, (cache = new Map()));
    let sig = cache.get(m);
    if (sig === undefined) cache.set(m, (sig = signatureOf(e.matching, m)));
    return sig;
  }

  // ------------------------------------------------------------ aggregation

  private groupOf(e: Extract<Expr, { kind: 'aggregate' }>, m: Metric): Metric {
    let cache = this.groups.get(e);
    if (!cache) this.groups.set(e, (cache = new Map()));
    let g = cache.get(m);
    if (!g) {
      const names = new Set(e.grouping.labels);
      if (e.grouping.without) names.add('__name__');
      g = restrict(m, names, !e.grouping.without);
      cache.set(m, g);
    }
    return g;
  }

  private aggregate(e: Extract<Expr, { kind: 'aggregate' }>, t: number): Sample[] {
    const param = e.param ? this.scalar(e.param, t) : 0;
    return aggregateStep(e, this.vector(e.expr, t), param, (m) => this.groupOf(e, m));
  }
}

/** Prometheus refuses a vector with two equal label sets (after a name was dropped). */
function unique(samples: Sample[]): Sample[] {
  if (samples.length < 2) return samples;
  const seen = new Set<string>();
  for (const s of samples) {
    if (seen.has(s.metric.key)) throw execution('vector cannot contain metrics with the same labelset');
    seen.add(s.metric.key);
  }
  return samples;
}
