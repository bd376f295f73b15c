/**
 * The PromQL subset Tapedeck evaluates, as a typed tree (docs/prometheus.md, "Query API").
 * server/promql/parse.ts builds it from the upstream grammar's syntax tree; anything the
 * grammar accepts that is not here is refused there, naming the construct.
 */
import type { LabelFunction } from './label-fns.js';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
  /** Does a label value match? (An absent label has the value "".) */
  readonly test: (value: string) => boolean;
}

/** `@ <time>`, `@ start()` or `@ end()`: evaluation time of the selector fixed (ms). */
export type AtModifier = { readonly ms: number } | 'start' | 'end';

export interface Selector {
  /** The metric name written before the braces, if any (also present as a `__name__` matcher). */
  readonly name: string | undefined;
  readonly matchers: readonly LabelMatcher[];
  readonly offsetMs: number;
  readonly at: AtModifier | undefined;
  /**
   * Inside an aggregation's parameter (topk's k, quantile's φ), which 2.42's engine never
   * preprocesses: an `@ <time>` there moves with a range query's steps (its offset is set
   * from the query's start once) and sees no sample past the @ time; `@ start()` and
   * `@ end()` there are no @ at all (the parser drops them).
   */
  readonly moving?: boolean;
}

export type ValueType = 'scalar' | 'vector' | 'matrix';

export type ArithOp = '+' | '-' | '*' | '/' | '%' | '^' | 'atan2';
export type CompareOp = '==' | '!=' | '>' | '<' | '>=' | '<=';
export type BinaryOp = ArithOp | CompareOp;
/** Set operators between instant vectors: which left elements stay (and, unless), or both sides merged (or). */
export type SetOp = 'and' | 'or' | 'unless';

/**
 * on(...) / ignoring(...) of a binary operator; `group` for many-to-one (group_left: the
 * right side is the one) and one-to-many (group_right) matching, with the labels copied
 * from the "one" side.
 */
export interface Matching {
  readonly on: boolean;
  readonly labels: readonly string[];
  readonly group?: { readonly side: 'left' | 'right'; readonly include: readonly string[] };
}

export type AggregateOp = 'sum' | 'avg' | 'min' | 'max' | 'count' | 'topk' | 'bottomk' | 'stddev' | 'stdvar' | 'group' | 'quantile' | 'count_values';

/** Functions over a range vector that give an instant vector (server/promql/functions.ts). */
export type RangeFunction =
  | 'rate' | 'irate' | 'increase' | 'delta' | 'idelta' | 'deriv' | 'changes' | 'resets'
  | 'avg_over_time' | 'min_over_time' | 'max_over_time' | 'sum_over_time' | 'count_over_time'
  | 'last_over_time' | 'present_over_time' | 'stddev_over_time' | 'stdvar_over_time' | 'quantile_over_time'
  | 'predict_linear' | 'holt_winters';

/** Functions of an instant vector, element by element (the metric name is dropped). */
export type ElementFunction =
  | 'abs' | 'ceil' | 'floor' | 'exp' | 'ln' | 'log2' | 'log10' | 'sqrt' | 'sgn'
  | 'sin' | 'cos' | 'tan' | 'asin' | 'acos' | 'atan' | 'sinh' | 'cosh' | 'tanh' | 'asinh' | 'acosh' | 'atanh' | 'deg' | 'rad';

/** Calendar fields of a Unix time in seconds, UTC (server/promql/calendar.ts). */
export type DateFunction = 'day_of_month' | 'day_of_week' | 'day_of_year' | 'days_in_month' | 'hour' | 'minute' | 'month' | 'year';

/** Functions of an instant vector with scalar parameters (the metric name is dropped). */
export type ClampFunction = 'clamp' | 'clamp_min' | 'clamp_max' | 'round';

export type Expr =
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'vector'; readonly sel: Selector }
  | { readonly kind: 'matrix'; readonly sel: Selector; readonly rangeMs: number }
  | { readonly kind: 'neg'; readonly expr: Expr; readonly type: 'scalar' | 'vector' }
  | {
      readonly kind: 'binary';
      readonly op: BinaryOp;
      readonly bool: boolean;
      /** on(...) / ignoring(...): which labels pair vector elements; undefined = all but the name. */
      readonly matching: Matching | undefined;
      readonly lhs: Expr;
      readonly rhs: Expr;
      readonly type: 'scalar' | 'vector';
    }
  | {
      readonly kind: 'set';
      readonly op: SetOp;
      /** on(...) / ignoring(...): which labels pair elements; undefined = all but the name. */
      readonly matching: { readonly on: boolean; readonly labels: readonly string[] } | undefined;
      readonly lhs: Expr;
      readonly rhs: Expr;
    }
  | {
      readonly kind: 'aggregate';
      readonly op: AggregateOp;
      readonly grouping: { readonly without: boolean; readonly labels: readonly string[] };
      /** k of topk / bottomk, φ of quantile. */
      readonly param: Expr | undefined;
      /** count_values' label. */
      readonly label?: string;
      readonly expr: Expr;
    }
  /**
   * `expr[range:step]`, with its own offset and @ (docs/prometheus.md, "Subqueries"): expr
   * (an instant vector) evaluated at every multiple of step from the epoch in the range,
   * a range vector (server/promql/subquery.ts). stepMs 0: the default step.
   */
  | { readonly kind: 'subquery'; readonly expr: Expr; readonly rangeMs: number; readonly stepMs: number; readonly offsetMs: number; readonly at: AtModifier | undefined }
  /** param: quantile_over_time's φ, predict_linear's t, holt_winters' sf (param2 its tf). matrix: a range selector or a subquery. */
  | { readonly kind: 'range_fn'; readonly fn: RangeFunction; readonly matrix: MatrixExpr | SubqueryExpr; readonly param: Expr | undefined; readonly param2?: Expr }
  | { readonly kind: 'element_fn'; readonly fn: ElementFunction; readonly expr: Expr }
  | { readonly kind: 'label_fn'; readonly f: LabelFunction; readonly expr: Expr }
  | { readonly kind: 'clamp_fn'; readonly fn: ClampFunction; readonly expr: Expr; readonly params: readonly Expr[] }
  /** absent(v) (expr an instant vector) and absent_over_time(m) (expr a range selector): labels from the selector's equality matchers. */
  | { readonly kind: 'absent'; readonly expr: Expr; readonly labels: ReadonlyArray<readonly [string, string]> }
  | { readonly kind: 'time' }
  | { readonly kind: 'histogram_quantile'; readonly q: Expr; readonly expr: Expr }
  /** sort / sort_desc: the order of an instant query's answer (a range query's is by labels). */
  | { readonly kind: 'sort'; readonly desc: boolean; readonly expr: Expr }
  /** timestamp(v): of a selector (parentheses aside), its samples' times; of anything else, the evaluation time. */
  | { readonly kind: 'timestamp'; readonly expr: Expr }
  /** A calendar field of each value (dropping the name), or of the evaluation time without an argument. */
  | { readonly kind: 'date_fn'; readonly fn: DateFunction; readonly expr: Expr | undefined }
  | { readonly kind: 'vector_fn'; readonly expr: Expr }
  | { readonly kind: 'scalar_fn'; readonly expr: Expr };

export type MatrixExpr = Extract<Expr, { kind: 'matrix' }>;
export type SubqueryExpr = Extract<Expr, { kind: 'subquery' }>;

export function typeOf(e: Expr): ValueType {
  switch (e.kind) {
    case 'number':
    case 'time':
    case 'scalar_fn':
      return 'scalar';
    case 'matrix':
    case 'subquery':
      return 'matrix';
    case 'neg':
    case 'binary':
      return e.type;
    default:
      return 'vector';
  }
}

/** Every selector of a tree (the archive is read once for all of them). */
export function selectorsOf(e: Expr, out: Array<{ sel: Selector; rangeMs: number }> = []): Array<{ sel: Selector; rangeMs: number }> {
  switch (e.kind) {
    case 'vector':
      out.push({ sel: e.sel, rangeMs: 0 });
      break;
    case 'matrix':
      out.push({ sel: e.sel, rangeMs: e.rangeMs });
      break;
    case 'range_fn':
      selectorsOf(e.matrix, out);
      if (e.param) selectorsOf(e.param, out);
      if (e.param2) selectorsOf(e.param2, out);
      break;
    case 'histogram_quantile':
      selectorsOf(e.q, out);
      selectorsOf(e.expr, out);
      break;
    case 'date_fn':
      if (e.expr) selectorsOf(e.expr, out);
      break;
    case 'neg':
    case 'element_fn':
    case 'vector_fn':
    case 'scalar_fn':
    case 'absent':
    case 'label_fn':
    case 'sort':
    case 'timestamp':
    case 'subquery':
      selectorsOf(e.expr, out);
      break;
    case 'clamp_fn':
      selectorsOf(e.expr, out);
      for (const p of e.params) selectorsOf(p, out);
      break;
    case 'binary':
    case 'set':
      selectorsOf(e.lhs, out);
      selectorsOf(e.rhs, out);
      break;
    case 'aggregate':
      if (e.param) selectorsOf(e.param, out);
      selectorsOf(e.expr, out);
      break;
    default:
      break;
  }
  return out;
}

/** The operands of a node (an aggregation's parameter first), in no particular meaning of order. */
export function childrenOf(e: Expr): Expr[] {
  switch (e.kind) {
    case 'number':
    case 'vector':
    case 'matrix':
    case 'time':
      return [];
    case 'range_fn':
      return [e.matrix, e.param, e.param2].filter((x): x is Expr => x !== undefined);
    case 'histogram_quantile':
      return [e.q, e.expr];
    case 'date_fn':
      return e.expr ? [e.expr] : [];
    case 'clamp_fn':
      return [e.expr, ...e.params];
    case 'binary':
    case 'set':
      return [e.lhs, e.rhs];
    case 'aggregate':
      return e.param ? [e.param, e.expr] : [e.expr];
    default:
      return [e.expr];
  }
}
