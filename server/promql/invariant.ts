/**
 * Step invariance as Prometheus 2.42 decides it (engine.go preprocessExprHelper): a
 * selector with @ is step invariant, and so is an operator or function call whose operands
 * all are, except the calls that read the evaluation time (time, timestamp, predict_linear
 * and the calendar functions: AtModifierUnsafeFunctions); an aggregation is as invariant as
 * its operand, its parameter (topk's k, quantile's φ) never looked at. The largest invariant
 * subtrees are evaluated once, at the query's start, and their answer repeated at every step
 * ("wrapped"), so an aggregation whose parameter changes from step to step over an
 * invariant operand keeps the parameter's value at the start. A range function call that is
 * not invariant reads an @-fixed range moving with the steps (eval.ts). A subquery is
 * invariant when it has an @; its expression, when invariant, is wrapped. Pure.
 */
import type { Expr } from './ast.js';

export interface Invariance {
  /** Subtrees evaluated once, at the start, for every step. */
  readonly wrapped: WeakSet<Expr>;
  /** Every step invariant subtree (looked at). */
  readonly invariant: WeakSet<Expr>;
}

export function invarianceOf(root: Expr): Invariance {
  const wrapped = new WeakSet<Expr>();
  const invariant = new WeakSet<Expr>();
  /** A call: invariant when safe and every argument is; else its invariant arguments are wrapped. */
  const call = (safe: boolean, args: ReadonlyArray<Expr | undefined>): boolean => {
    const present = args.filter((a): a is Expr => a !== undefined);
    const inv = present.map(visit);
    if (safe && inv.every(Boolean)) return true;
    present.forEach((a, i) => {
      if (inv[i]) wrapped.add(a);
    });
    return false;
  };
  const visit = (e: Expr): boolean => {
    const inv = invariantNode(e);
    if (inv) invariant.add(e);
    return inv;
  };
  const invariantNode = (e: Expr): boolean => {
    switch (e.kind) {
      case 'number':
        return true;
      case 'vector':
      case 'matrix':
        return e.sel.at !== undefined;
      case 'neg':
        return visit(e.expr);
      case 'binary':
      case 'set': {
        const l = visit(e.lhs);
        const r = visit(e.rhs);
        if (l && r) return true;
        if (l) wrapped.add(e.lhs);
        if (r) wrapped.add(e.rhs);
        return false;
      }
      case 'aggregate':
        return visit(e.expr);
      case 'subquery':
        // Its expression is wrapped when invariant (evaluated at the subquery's first step,
        // subquery.ts); the subquery is invariant when it has an @.
        if (visit(e.expr)) wrapped.add(e.expr);
        return e.at !== undefined;
      case 'range_fn':
        return call(e.fn !== 'predict_linear', [e.param, e.matrix, e.param2]);
      case 'clamp_fn':
        return call(true, [e.expr, ...e.params]);
      case 'histogram_quantile':
        return call(true, [e.q, e.expr]);
      case 'timestamp':
        return call(false, [e.expr]);
      case 'date_fn':
        return call(false, [e.expr]);
      case 'time':
        return false;
      case 'element_fn':
      case 'label_fn':
      case 'absent':
      case 'vector_fn':
      case 'scalar_fn':
      case 'sort':
        return call(true, [e.expr]);
    }
  };
  if (visit(root)) wrapped.add(root);
  return { wrapped, invariant };
}
