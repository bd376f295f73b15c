/**
 * Function calls of the PromQL subset (server/promql/parse.ts converts the rest): each
 * supported function's arguments counted and typed with the messages of Prometheus'
 * parser (parser/parse.go checkAST), label_replace and label_join with their string
 * arguments; any other function is refused naming it.
 */
import type { SyntaxNode } from '@lezer/common';
import type { DateFunction, ElementFunction, Expr, RangeFunction } from './ast.js';
import { typeOf } from './ast.js';
import { badData, type PromError } from './errors.js';
import { unquoteString } from './literals.js';
import { absentLabels } from './parse-checks.js';

const RANGE_FUNCTIONS = new Set<string>([
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'changes', 'resets',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time',
  'last_over_time', 'present_over_time', 'stddev_over_time', 'stdvar_over_time', 'quantile_over_time',
  'predict_linear', 'holt_winters',
]);
const ELEMENT_FUNCTIONS = new Set<string>([
  'abs', 'ceil', 'floor', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn',
  'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'asinh', 'acosh', 'atanh', 'deg', 'rad',
]);
const DATE_FUNCTIONS = new Set<string>(['day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'hour', 'minute', 'month', 'year']);
/** The types of a range function's arguments, in order (the range vector's place marked). */
const RANGE_ARGS: Record<string, Array<'scalar' | 'matrix'>> = {
  quantile_over_time: ['scalar', 'matrix'],
  predict_linear: ['matrix', 'scalar'],
  holt_winters: ['matrix', 'scalar', 'scalar'],
};
export const TYPE_NAMES = { scalar: 'scalar', vector: 'instant vector', matrix: 'range vector' } as const;

/** What parse.ts's converter lends the conversion of a call: its sub-expressions, their text and its refusals. */
export interface ConvertContext {
  expr(n: SyntaxNode, depth: number): Expr;
  src(n: SyntaxNode): string;
  unsupported(n: SyntaxNode, what: string): PromError;
}

export function children(n: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = n.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

/** A FunctionCall node: one of the supported functions, its arguments converted and typed. */
export function callExpr(cx: ConvertContext, n: SyntaxNode, depth: number): Expr {
  const [ident, body] = children(n);
  if (!ident || !body) throw cx.unsupported(n, 'this function call');
  const fn = cx.src(ident);
  if (fn === 'label_replace' || fn === 'label_join') return labelFn(cx, fn, children(body), depth);
  const args = children(body).map((a) => cx.expr(a, depth));
  const want = (types: Array<'scalar' | 'vector' | 'matrix'>): void => {
    if (args.length !== types.length) throw badData(`expected ${types.length} argument(s) in call to "${fn}", got ${args.length}`);
    types.forEach((t, i) => {
      const got = typeOf(args[i] as Expr);
      if (got !== t) throw badData(`expected type ${TYPE_NAMES[t]} in call to function "${fn}", got ${TYPE_NAMES[got]}`);
    });
  };
  if (RANGE_FUNCTIONS.has(fn)) {
    const types = RANGE_ARGS[fn] ?? ['matrix'];
    want(types);
    const m = args[types.indexOf('matrix')] as Expr;
    if (m.kind !== 'matrix' && m.kind !== 'subquery') throw cx.unsupported(n, `"${fn}" of this range vector`);
    const params = args.filter((_a, i) => types[i] === 'scalar');
    return params.length > 1
      ? { kind: 'range_fn', fn: fn as RangeFunction, matrix: m, param: params[0], param2: params[1] as Expr }
      : { kind: 'range_fn', fn: fn as RangeFunction, matrix: m, param: params[0] };
  }
  if (DATE_FUNCTIONS.has(fn)) {
    if (args.length > 1) throw badData(`expected at most 1 argument(s) in call to "${fn}", got ${args.length}`);
    if (args.length === 1) want(['vector']);
    return { kind: 'date_fn', fn: fn as DateFunction, expr: args[0] };
  }
  if (fn === 'histogram_quantile') {
    want(['scalar', 'vector']);
    return { kind: 'histogram_quantile', q: args[0] as Expr, expr: args[1] as Expr };
  }
  if (fn === 'sort' || fn === 'sort_desc') {
    want(['vector']);
    return { kind: 'sort', desc: fn === 'sort_desc', expr: args[0] as Expr };
  }
  if (fn === 'timestamp') {
    want(['vector']);
    const arg = args[0] as Expr;
    // 2.42 reads such a selector at its @ time alone, without its offset (engine.go, "timestamp").
    if (arg.kind === 'vector' && arg.sel.at !== undefined && arg.sel.offsetMs !== 0) throw cx.unsupported(n, 'timestamp() of a selector with both @ and offset');
    return { kind: 'timestamp', expr: arg };
  }
  if (fn === 'pi') {
    want([]);
    return { kind: 'number', value: Math.PI };
  }
  if (ELEMENT_FUNCTIONS.has(fn)) {
    want(['vector']);
    return { kind: 'element_fn', fn: fn as ElementFunction, expr: args[0] as Expr };
  }
  if (fn === 'clamp' || fn === 'clamp_min' || fn === 'clamp_max' || fn === 'round') {
    if (fn === 'round' && args.length === 1) want(['vector']);
    else if (fn === 'round' && args.length > 2) throw badData(`expected at most 2 argument(s) in call to "round", got ${args.length}`);
    else want(fn === 'clamp' ? ['vector', 'scalar', 'scalar'] : ['vector', 'scalar']);
    return { kind: 'clamp_fn', fn, expr: args[0] as Expr, params: args.slice(1) };
  }
  if (fn === 'absent' || fn === 'absent_over_time') {
    want([fn === 'absent' ? 'vector' : 'matrix']);
    const arg = args[0] as Expr;
    return { kind: 'absent', expr: arg, labels: absentLabels(arg) };
  }
  if (fn === 'time') {
    want([]);
    return { kind: 'time' };
  }
  if (fn === 'vector') {
    want(['scalar']);
    return { kind: 'vector_fn', expr: args[0] as Expr };
  }
  if (fn === 'scalar') {
    want(['vector']);
    return { kind: 'scalar_fn', expr: args[0] as Expr };
  }
  throw cx.unsupported(n, `the function ${fn}()`);
}

/** label_replace(v, dst, replacement, src, regex) and label_join(v, dst, separator, src...): string arguments but the first. */
function labelFn(cx: ConvertContext, fn: 'label_replace' | 'label_join', nodes: SyntaxNode[], depth: number): Expr {
  const min = fn === 'label_replace' ? 5 : 3;
  if (fn === 'label_replace' && nodes.length !== 5) throw badData(`expected 5 argument(s) in call to "label_replace", got ${nodes.length}`);
  if (nodes.length < min) throw badData(`expected at least ${min} argument(s) in call to "${fn}", got ${nodes.length}`);
  const expr = cx.expr(nodes[0] as SyntaxNode, depth);
  if (typeOf(expr) !== 'vector') throw badData(`expected type instant vector in call to function "${fn}", got ${TYPE_NAMES[typeOf(expr)]}`);
  const strings = nodes.slice(1).map((a) => {
    if (a.type.name === 'StringLiteral') return unquoteString(cx.src(a));
    throw badData(`expected type string in call to function "${fn}", got ${TYPE_NAMES[typeOf(cx.expr(a, depth))]}`);
  });
  const [dst, third, fourth, fifth] = strings as [string, string, string, string];
  if (fn === 'label_replace') return { kind: 'label_fn', f: { fn, dst, replacement: third, src: fourth, regex: fifth }, expr };
  return { kind: 'label_fn', f: { fn, dst, separator: third, srcs: strings.slice(2) }, expr };
}
