/**
 * Binary operators between vectors, and between a vector and a scalar, at one step, with
 * Prometheus 2.42's rules (engine.go VectorBinop, VectorAnd, VectorOr, VectorUnless,
 * VectorscalarBinop, resultMetric): one-to-one matching on all labels but the name, or on(...)
 * / ignoring(...); many-to-one and one-to-many with group_left / group_right; and, or, unless.
 * server/promql/eval.ts calls them with its signatures cached per node.
 */
import type { BinaryOp, Expr, Matching } from './ast.js';
import { execution } from './errors.js';
import type { Sample } from './eval.js';
import { binop, isComparison } from './functions.js';
import { dropName, labelValue, makeMetric, metricText, restrict, type Metric } from './labels.js';

/** The labels that pair two elements: on(...) keeps those listed, otherwise all but those and the name. */
export function signatureOf(matching: Matching | undefined, m: Metric): string {
  const names = new Set(matching?.labels ?? []);
  if (matching?.on) return restrict(m, names, true).key;
  names.add('__name__');
  return restrict(m, names, false).key;
}

/**
 * Between two vectors (engine.go VectorBinop): one-to-one, or many-to-one / one-to-many
 * with group_left / group_right, whose "one" side is hashed and whose labels in the
 * group's list are copied onto each result.
 */
export function vectorBinop(e: Extract<Expr, { kind: 'binary' }>, lhs: Sample[], rhs: Sample[], signature: (m: Metric) => string): Sample[] {
  // Nothing can match: no side is looked at (so duplicates on one side are no error then).
  if (lhs.length === 0 || rhs.length === 0) return [];
  const group = e.matching?.group;
  const oneToMany = group?.side === 'right';
  const [many, ones] = oneToMany ? [rhs, lhs] : [lhs, rhs];
  const one = new Map<string, Sample>();
  for (const rs of ones) {
    const sig = signature(rs.metric);
    const dupl = one.get(sig);
    if (dupl) {
      throw execution(`found duplicate series for the match group ${metricText(matchGroup(e, rs.metric))} on the ${oneToMany ? 'left' : 'right'} hand-side of the operation: [${metricText(rs.metric)}, ${metricText(dupl.metric)}];many-to-many matching not allowed: matching labels must be unique on one side`);
    }
    one.set(sig, rs);
  }
  /** One-to-one: the signatures matched. Grouped: per signature, the result label sets made. */
  const matched = new Map<string, Set<string> | null>();
  const out: Sample[] = [];
  for (const ls of many) {
    const sig = signature(ls.metric);
    const rs = one.get(sig);
    if (!rs) continue;
    const { value, keep } = oneToMany ? binop(e.op, rs.v, ls.v) : binop(e.op, ls.v, rs.v);
    if (!e.bool && !keep) continue;
    const metric = resultMetric(e, ls.metric, rs.metric);
    const made = matched.get(sig);
    if (!group) {
      if (made !== undefined) throw execution('multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)');
      matched.set(sig, null);
    } else if (made?.has(metric.key)) {
      throw execution('multiple matches for labels: grouping labels must ensure unique matches');
    } else if (made) made.add(metric.key);
    else matched.set(sig, new Set([metric.key]));
    out.push({ metric, v: e.bool ? (keep ? 1 : 0) : value });
  }
  return out;
}

/**
 * and / or / unless at one step (engine.go VectorAnd, VectorOr, VectorUnless): elements
 * paired by their signature (on / ignoring, never the name unless on() lists it), each
 * side's elements kept whole, the metric name included.
 */
export function setOperation(e: Extract<Expr, { kind: 'set' }>, lhs: Sample[], rhs: Sample[], signature: (m: Metric) => string): Sample[] {
  if (e.op === 'and' && (lhs.length === 0 || rhs.length === 0)) return [];
  if (e.op === 'unless' && rhs.length === 0) return lhs;
  if (e.op === 'or') {
    const left = new Set<string>();
    for (const ls of lhs) left.add(signature(ls.metric));
    const out = [...lhs];
    for (const rs of rhs) if (!left.has(signature(rs.metric))) out.push(rs);
    return out;
  }
  const right = new Set<string>();
  for (const rs of rhs) right.add(signature(rs.metric));
  const keep = e.op === 'and';
  return lhs.filter((ls) => right.has(signature(ls.metric)) === keep);
}

/**
 * A binary result's labels (engine.go resultMetric): the "many" side's, without the name for
 * arithmetic and bool; one-to-one keeps only the on(...) labels or drops the ignoring(...)
 * ones; group_left / group_right copy each listed label from the "one" side (absent there:
 * removed).
 */
function resultMetric(e: Extract<Expr, { kind: 'binary' }>, many: Metric, one: Metric): Metric {
  // atan2 keeps the name as comparisons do (engine.go shouldDropMetricName).
  let metric = (isComparison(e.op) || e.op === 'atan2') && !e.bool ? many : dropName(many);
  const m = e.matching;
  if (m && !m.group) return restrict(metric, new Set(m.labels), m.on);
  if (m?.group && m.group.include.length > 0) {
    const include = new Set(m.group.include);
    const pairs = metric.labels.filter((l) => !include.has(l[0]));
    for (const name of include) pairs.push([name, labelValue(one, name)]);
    metric = makeMetric(pairs);
  }
  return metric;
}

/** The match group a metric falls in (error messages). */
function matchGroup(e: Extract<Expr, { kind: 'binary' }>, m: Metric): Metric {
  if (e.matching?.on) return restrict(m, new Set(e.matching.labels), true);
  return restrict(m, new Set([...(e.matching?.labels ?? []), '__name__']), false);
}

export function vectorScalar(op: BinaryOp, vec: Sample[], scalar: number, scalarLeft: boolean, bool: boolean): Sample[] {
  const out: Sample[] = [];
  const comparison = isComparison(op);
  for (const s of vec) {
    const [l, r] = scalarLeft ? [scalar, s.v] : [s.v, scalar];
    let { value, keep } = binop(op, l, r);
    // A comparison keeps the vector's value even when the scalar is on the left.
    if (comparison && scalarLeft) value = s.v;
    if (bool) {
      value = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    out.push({ metric: (!comparison && op !== 'atan2') || bool ? dropName(s.metric) : s.metric, v: value });
  }
  return out;
}
