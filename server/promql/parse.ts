/**
 * PromQL text -> the evaluated subset (server/promql/ast.ts), through the upstream grammar
 * (@prometheus-io/lezer-promql). The grammar recovers from errors, so the tree is first
 * searched for error nodes; then each node the subset knows is converted and typed, and any
 * other construct is refused with Prometheus' `bad_data` error naming it.
 */
import { promqlParser as parser } from './grammar.js';
import type { SyntaxNode, Tree } from '@lezer/common';
import { SERVER_LIMITS } from '../limits.js';
import type { AggregateOp, AtModifier, BinaryOp, SetOp, Expr, LabelMatcher, Matching, MatchOp, MatrixExpr, Selector, SubqueryExpr } from './ast.js';
import { childrenOf, selectorsOf, typeOf } from './ast.js';
import { badData, type PromError } from './errors.js';
import { checkBinary, checkSet, matcher, negate } from './parse-checks.js';
import { callExpr, children, TYPE_NAMES, type ConvertContext } from './parse-calls.js';
import { normalizeNumbers, parseNumber, parseQueryDurationMs, unquoteString } from './literals.js';

const BINARY_OPS: Record<string, BinaryOp> = {
  Pow: '^', Mul: '*', Div: '/', Mod: '%', Add: '+', Sub: '-',
  Eql: '==', Neq: '!=', Gtr: '>', Lss: '<', Gte: '>=', Lte: '<=', Atan2: 'atan2',
};
const SET_OPS: Record<string, SetOp> = { And: 'and', Or: 'or', Unless: 'unless' };
const AGGREGATES = new Set<string>(['sum', 'avg', 'min', 'max', 'count', 'topk', 'bottomk', 'stddev', 'stdvar', 'group', 'quantile', 'count_values']);
const MATCH_OPS: Record<string, MatchOp> = { EqlSingle: '=', Neq: '!=', EqlRegex: '=~', NeqRegex: '!~' };

/** Parses and type-checks a query; throws PromError (bad_data). */
export function parseQuery(text: string): Expr {
  checkText(text);
  const source = normalizeNumbers(text);
  return exprOf(source, parser.parse(grammarText(source)));
}

/**
 * The text the grammar reads: Prometheus 2.42's `holt_winters(`, which the upstream grammar
 * no longer knows (renamed double_exponential_smoothing in Prometheus 3), spelled as a
 * function of the same length it knows, so every position stays; the converter reads the
 * names from the query's own text.
 */
function grammarText(source: string): string {
  return source.includes('holt_winters') ? source.replace(/\bholt_winters(?=\s*\()/g, 'day_of_month') : source;
}

/**
 * The selectors of an aggregation's parameter as 2.42 evaluates them (Selector.moving): its
 * engine's preprocessing never visits a parameter, so `@ start()` / `@ end()` there are never
 * resolved (no @), and an `@ <time>` moves with the steps. The selectors are this parse's
 * own, made just now, so they are set here rather than rebuilt.
 */
function paramSelectors(param: Expr): void {
  for (const { sel } of selectorsOf(param)) {
    const s = sel as { at: AtModifier | undefined; moving?: boolean };
    if (s.at === 'start' || s.at === 'end') s.at = undefined;
    else if (s.at !== undefined) s.moving = true;
  }
  const subqueries = (e: Expr): void => {
    const sub = e as { kind: string; at: AtModifier | undefined };
    if (e.kind === 'subquery' && (sub.at === 'start' || sub.at === 'end')) sub.at = undefined;
    childrenOf(e).forEach(subqueries);
  };
  subqueries(param);
}

/** The grammar's steps between two calls of parseQuerySliced's `slice` (a cheap clock read). */
const PARSE_STEPS_PER_SLICE_CHECK = 256;

/**
 * parseQuery that lets other requests run: the grammar's error recovery costs about 16 µs
 * a character of garbage (`"` or `{` repeated: 1 s for promqlQueryCharsMax in one piece),
 * so the parse goes in steps and awaits `slice` (a query's Budget: it yields every
 * promqlSliceMs and gives up at the deadline) between them. Same tree as parseQuery.
 */
export async function parseQuerySliced(text: string, slice: () => Promise<void>): Promise<Expr> {
  checkText(text);
  const source = normalizeNumbers(text);
  const parse = parser.startParse(grammarText(source));
  let tree: Tree | null;
  let steps = 0;
  while ((tree = parse.advance()) === null) if (++steps % PARSE_STEPS_PER_SLICE_CHECK === 0) await slice();
  return exprOf(source, tree);
}

function checkText(text: string): void {
  if (text.length > SERVER_LIMITS.promqlQueryCharsMax) {
    throw badData(`query of ${text.length} characters is longer than promqlQueryCharsMax (${SERVER_LIMITS.promqlQueryCharsMax})`);
  }
  if (text.trim() === '') throw badData('parse error: no expression found in input');
}

function exprOf(text: string, tree: Tree): Expr {
  const top = tree.topNode;
  checkNoErrors(text, top);
  const first = top.firstChild;
  if (!first) throw badData('parse error: no expression found in input');
  return new Converter(text).expr(first, 0);
}

function checkNoErrors(text: string, top: SyntaxNode): void {
  const c = top.cursor();
  do {
    if (c.type.isError) {
      const near = text.slice(c.from, Math.min(text.length, c.from + 20));
      throw badData(`parse error at char ${c.from + 1}: unexpected ${near === '' ? 'end of input' : JSON.stringify(near)}`);
    }
  } while (c.next());
}

class Converter implements ConvertContext {
  /** Trees written in parentheses: a modifier after them does not reach inside. */
  private readonly parenthesized = new WeakSet<Expr>();

  constructor(private readonly text: string) {}

  src(n: SyntaxNode): string {
    return this.text.slice(n.from, n.to);
  }

  unsupported(n: SyntaxNode, what: string): PromError {
    const shown = this.src(n);
    return badData(`${what} is not supported by Tapedeck's PromQL subset (in ${JSON.stringify(shown.length > 60 ? `${shown.slice(0, 60)}…` : shown)}; see docs/prometheus.md)`);
  }

  expr(n: SyntaxNode, depth: number): Expr {
    if (depth > SERVER_LIMITS.promqlNestingDepthMax) throw badData(`query nests deeper than promqlNestingDepthMax (${SERVER_LIMITS.promqlNestingDepthMax})`);
    const d = depth + 1;
    switch (n.type.name) {
      case 'NumberDurationLiteral':
        return { kind: 'number', value: this.number(n) };
      case 'ParenExpr': {
        const inner = this.expr(this.only(n), d);
        this.parenthesized.add(inner);
        return inner;
      }
      case 'VectorSelector':
        return { kind: 'vector', sel: this.selector(n) };
      case 'MatrixSelector':
        return this.matrix(n, d);
      case 'OffsetExpr':
      case 'StepInvariantExpr':
        return this.modified(n, d);
      case 'UnaryExpr':
        return this.unary(n, d);
      case 'BinaryExpr':
        return this.binary(n, d);
      case 'AggregateExpr':
        return this.aggregate(n, d);
      case 'FunctionCall':
        return callExpr(this, n, d);
      case 'StringLiteral':
        throw this.unsupported(n, 'a string literal as a value');
      case 'SubqueryExpr':
        return this.subquery(n, d);
      default:
        throw this.unsupported(n, `the construct ${n.type.name}`);
    }
  }

  /** A number literal; the grammar takes a sign and the spaces after it into the literal (`- 2`), Prometheus' lexer reads them apart. */
  private number(n: SyntaxNode): number {
    return parseNumber(this.src(n).replace(/^([+-])\s+/, '$1'));
  }

  private only(n: SyntaxNode): SyntaxNode {
    const c = children(n);
    if (c.length !== 1) throw this.unsupported(n, `this form of ${n.type.name}`);
    return c[0] as SyntaxNode;
  }

  // ------------------------------------------------------------ selectors

  private selector(n: SyntaxNode): Selector {
    let name: string | undefined;
    const matchers: LabelMatcher[] = [];
    for (const c of children(n)) {
      if (c.type.name === 'Identifier' || c.type.name === 'MetricName') name = this.src(c);
      else if (c.type.name === 'LabelMatchers') this.labelMatchers(c, matchers);
      else throw this.unsupported(c, `the selector part ${c.type.name}`);
    }
    if (name !== undefined) {
      if (matchers.some((m) => m.name === '__name__')) throw badData(`metric name must not be set twice: ${JSON.stringify(name)} or ${JSON.stringify(matchers.find((m) => m.name === '__name__')?.value)}`);
      matchers.unshift(matcher('__name__', '=', name));
    }
    if (!matchers.some((m) => !m.test(''))) throw badData('vector selector must contain at least one non-empty matcher');
    return { name, matchers, offsetMs: 0, at: undefined };
  }

  private labelMatchers(n: SyntaxNode, out: LabelMatcher[]): void {
    for (const c of children(n)) {
      const parts = children(c);
      // Quoted names (`{"name"}`, `{"label"="v"}`) are Prometheus 3's; 2.42's parser refuses them.
      if (c.type.name === 'QuotedLabelName') throw this.quotedName(c, 'label matching, expected identifier or "}"');
      if (c.type.name !== 'UnquotedLabelMatcher' && c.type.name !== 'QuotedLabelMatcher') throw this.unsupported(c, `the matcher ${c.type.name}`);
      const [label, op, value] = parts;
      if (!label || !op || !value) throw this.unsupported(c, 'this label matcher');
      if (label.type.name === 'QuotedLabelName') throw this.quotedName(label, 'label matching, expected identifier or "}"');
      const labelName = this.src(label);
      const opName = op.firstChild?.type.name ?? '';
      const mop = MATCH_OPS[opName];
      if (!mop) throw this.unsupported(op, `the match operator ${JSON.stringify(this.src(op))}`);
      out.push(matcher(labelName, mop, unquoteString(this.src(value))));
    }
  }

  /**
   * `x[5m]`. The upstream grammar is a highlighting grammar: it reads `a * b[5m]` as
   * `(a * b)[5m]`, where Prometheus' own parser binds the range (and offset, and @) to the
   * rightmost operand. So modifiers are pushed down to it (onRightmost).
   */
  private matrix(n: SyntaxNode, depth: number): Expr {
    const [inner, range, ...rest] = children(n);
    if (!inner || !range || rest.length > 0) throw this.unsupported(n, 'this range selector');
    const rangeMs = this.duration(range);
    if (rangeMs <= 0) throw badData(`range ${JSON.stringify(this.src(range))} must be positive`);
    return this.onRightmost(this.expr(inner, depth), (e) => {
      // A selector in parentheses is no selector to Prometheus' parser: `(x)[5m]` is refused.
      if (e.kind !== 'vector' || this.parenthesized.has(e) || e.sel.offsetMs !== 0 || e.sel.at !== undefined) throw badData(`ranges only allowed for vector selectors (in ${JSON.stringify(this.src(n))})`);
      return { kind: 'matrix', sel: e.sel, rangeMs } satisfies MatrixExpr;
    });
  }

  /** `e[range:step]` (step optional); like a range, it binds to the rightmost operand (onRightmost). */
  private subquery(n: SyntaxNode, depth: number): Expr {
    const [inner, range, step, ...rest] = children(n);
    if (!inner || !range || rest.length > 0) throw this.unsupported(n, 'this subquery');
    const rangeMs = this.duration(range);
    const stepMs = step ? this.duration(step) : 0;
    if (rangeMs <= 0 || (step && stepMs <= 0)) throw badData(`parse error: duration must be greater than 0 (in ${JSON.stringify(this.src(n))})`);
    return this.onRightmost(this.expr(inner, depth), (e) => {
      const type = typeOf(e);
      if (type !== 'vector') throw badData(`subquery is only allowed on instant vector, got ${TYPE_NAMES[type]} in ${JSON.stringify(this.src(n))} instead`);
      return { kind: 'subquery', expr: e, rangeMs, stepMs, offsetMs: 0, at: undefined } satisfies SubqueryExpr;
    });
  }

  /** Applies a postfix modifier to the rightmost operand of unparenthesized operators. */
  private onRightmost(e: Expr, f: (e: Expr) => Expr): Expr {
    if (this.parenthesized.has(e)) return f(e);
    if (e.kind === 'binary') return checkBinary(e.op, e.bool, e.matching, e.lhs, this.onRightmost(e.rhs, f));
    if (e.kind === 'set') return checkSet(e.op, false, e.matching, e.lhs, this.onRightmost(e.rhs, f));
    if (e.kind === 'neg') return negate(this.onRightmost(e.expr, f));
    return f(e);
  }

  /** `offset d` and `@ t` (in either order) set on the one selector under them. */
  private modified(n: SyntaxNode, depth: number): Expr {
    const [inner, keyword, arg] = children(n);
    if (!inner || !keyword || !arg) throw this.unsupported(n, 'this modifier');
    const isOffset = n.type.name === 'OffsetExpr';
    const offsetMs = isOffset ? this.signedDuration(arg) : 0;
    const at = isOffset ? undefined : this.at(arg);
    return this.onRightmost(this.expr(inner, depth), (e) => {
      if ((e.kind !== 'vector' && e.kind !== 'matrix' && e.kind !== 'subquery') || this.parenthesized.has(e)) {
        throw badData(`${isOffset ? 'offset' : '@'} modifier must be preceded by an instant vector selector or range vector selector or a subquery`);
      }
      const was = e.kind === 'subquery' ? e : e.sel;
      if (isOffset && was.offsetMs !== 0) throw badData('offset may not be set multiple times');
      if (!isOffset && was.at !== undefined) throw badData('@ <timestamp> may not be set multiple times');
      if (e.kind === 'subquery') return isOffset ? { ...e, offsetMs } : { ...e, at };
      const sel: Selector = isOffset ? { ...e.sel, offsetMs } : { ...e.sel, at };
      return e.kind === 'vector' ? { kind: 'vector', sel } : { kind: 'matrix', sel, rangeMs: e.rangeMs };
    });
  }

  private at(n: SyntaxNode): AtModifier {
    if (n.type.name === 'AtModifierPreprocessors') {
      const which = n.firstChild?.type.name;
      if (which === 'AtStart') return 'start';
      if (which === 'AtEnd') return 'end';
      throw this.unsupported(n, 'this @ preprocessor');
    }
    if (n.type.name !== 'NumberDurationLiteral') throw this.unsupported(n, 'this @ timestamp');
    const s = this.number(n);
    if (!Number.isFinite(s)) throw badData(`timestamp out of bounds for @ modifier: ${this.src(n)}`);
    // Go's math.Round: halves away from zero.
    return { ms: Math.sign(s) * Math.round(Math.abs(s) * 1000) };
  }

  private signedDuration(n: SyntaxNode): number {
    const parts = children(n);
    if (parts.length === 2 && parts[0]?.type.name === 'UnaryOp') {
      const sign = this.src(parts[0]) === '-' ? -1 : 1;
      return sign * this.signedDuration(parts[1] as SyntaxNode);
    }
    return this.duration(n);
  }

  private duration(n: SyntaxNode): number {
    const parts = children(n);
    if (parts.length === 1 && (parts[0]?.type.name === 'NumberDurationLiteralInDurationContext' || parts[0]?.type.name === 'NumberDurationLiteral')) {
      return parseQueryDurationMs(this.src(parts[0]));
    }
    if (parts.length === 0) return parseQueryDurationMs(this.src(n));
    throw this.unsupported(n, 'a duration expression');
  }

  // ------------------------------------------------------------ operators

  private unary(n: SyntaxNode, depth: number): Expr {
    const [op, inner] = children(n);
    if (!op || !inner) throw this.unsupported(n, 'this unary expression');
    const e = this.expr(inner, depth);
    if (this.src(op) === '+') {
      if (typeOf(e) === 'matrix') throw badData('unary expression only allowed on expressions of type scalar or instant vector, got "range vector"');
      return e;
    }
    return negate(e);
  }

  private binary(n: SyntaxNode, depth: number): Expr {
    const parts = children(n);
    const lhsNode = parts[0];
    const opNode = parts[1];
    const rhsNode = parts[parts.length - 1];
    if (!lhsNode || !opNode || !rhsNode || parts.length < 3) throw this.unsupported(n, 'this binary expression');
    const setOp = SET_OPS[opNode.type.name];
    const op = BINARY_OPS[opNode.type.name];
    if (!op && !setOp) throw this.unsupported(opNode, `the operator ${JSON.stringify(this.src(opNode))}`);
    let bool = false;
    let matching: Matching | undefined;
    for (const m of parts.slice(2, -1)) {
      if (m.type.name === 'BoolModifier') bool = true;
      else if (m.type.name === 'MatchingModifierClause') matching = this.matching(m);
      else throw this.unsupported(m, `the modifier ${m.type.name}`);
    }
    if (setOp) return checkSet(setOp, bool, matching, this.expr(lhsNode, depth), this.expr(rhsNode, depth));
    // `-2 ^ x`: the grammar reads a signed literal, Prometheus a unary minus, which binds less
    // tightly than ^ (it has *'s precedence): -(2 ^ x).
    const sign = op === '^' && lhsNode.type.name === 'NumberDurationLiteral' ? /^[+-]/.exec(this.src(lhsNode))?.[0] : undefined;
    if (sign !== undefined) {
      const pow = checkBinary('^', bool, matching, { kind: 'number', value: Math.abs(this.number(lhsNode)) }, this.expr(rhsNode, depth));
      return sign === '-' ? negate(pow) : pow;
    }
    return checkBinary(op as BinaryOp, bool, matching, this.expr(lhsNode, depth), this.expr(rhsNode, depth));
  }

  private matching(n: SyntaxNode): Matching {
    let on = false;
    let labels: string[] = [];
    let group: { side: 'left' | 'right'; include: string[] } | undefined;
    for (const c of children(n)) {
      if (c.type.name === 'On') on = true;
      else if (c.type.name === 'Ignoring') on = false;
      else if (c.type.name === 'GroupLeft' || c.type.name === 'GroupRight') group = { side: c.type.name === 'GroupLeft' ? 'left' : 'right', include: [] };
      else if (c.type.name === 'GroupingLabels' && group) group.include = this.groupingLabels(c);
      else if (c.type.name === 'GroupingLabels') labels = this.groupingLabels(c);
      else throw this.unsupported(c, `the matching modifier ${JSON.stringify(this.src(c))}`);
    }
    return group ? { on, labels, group } : { on, labels };
  }

  private groupingLabels(n: SyntaxNode): string[] {
    return children(n).map((c) => {
      if (c.type.name === 'QuotedLabelName') throw this.quotedName(c, 'grouping opts, expected label');
      return this.src(c);
    });
  }

  /** A quoted label name, Prometheus 2.42's parse error. */
  private quotedName(n: SyntaxNode, where: string): PromError {
    return badData(`parse error: unexpected string ${JSON.stringify(this.src(n))} in ${where}`);
  }

  // ------------------------------------------------------------ aggregations and functions

  private aggregate(n: SyntaxNode, depth: number): Expr {
    let op: string | undefined;
    let grouping = { without: false, labels: [] as string[] };
    let body: SyntaxNode | undefined;
    for (const c of children(n)) {
      if (c.type.name === 'AggregateOp') op = this.src(c).toLowerCase();
      else if (c.type.name === 'AggregateModifier') {
        const kw = c.firstChild;
        const labels = children(c).find((x) => x.type.name === 'GroupingLabels');
        grouping = { without: kw?.type.name === 'Without', labels: labels ? this.groupingLabels(labels) : [] };
      } else if (c.type.name === 'FunctionCallBody') body = c;
      else throw this.unsupported(c, `the aggregation part ${c.type.name}`);
    }
    if (!op || !body) throw this.unsupported(n, 'this aggregation');
    if (!AGGREGATES.has(op)) throw this.unsupported(n, `the aggregation ${op}`);
    const argNodes = children(body);
    const needsParam = op === 'topk' || op === 'bottomk' || op === 'quantile' || op === 'count_values';
    if (argNodes.length !== (needsParam ? 2 : 1)) throw badData(`wrong number of arguments for aggregate expression provided, expected ${needsParam ? 2 : 1}, got ${argNodes.length}`);
    // count_values' label is a string literal (in parentheses or not).
    let labelNode = op === 'count_values' ? (argNodes[0] as SyntaxNode) : undefined;
    while (labelNode?.type.name === 'ParenExpr' && labelNode.firstChild) labelNode = labelNode.firstChild;
    const args = argNodes.map((a, i) => (i === 0 && labelNode?.type.name === 'StringLiteral' ? undefined : this.expr(a, depth)));
    const expr = args[args.length - 1] as Expr;
    if (typeOf(expr) !== 'vector') throw badData(`expected type instant vector in aggregation expression, got ${TYPE_NAMES[typeOf(expr)]}`);
    if (op === 'count_values') {
      if (labelNode?.type.name !== 'StringLiteral') throw badData(`expected type string in aggregation parameter, got ${TYPE_NAMES[typeOf(args[0] as Expr)]}`);
      return { kind: 'aggregate', op, grouping, param: undefined, label: unquoteString(this.src(labelNode)), expr };
    }
    const param = needsParam ? (args[0] as Expr) : undefined;
    if (param && typeOf(param) !== 'scalar') throw badData(`expected type scalar in aggregation parameter, got ${TYPE_NAMES[typeOf(param)]}`);
    if (param) paramSelectors(param);
    return { kind: 'aggregate', op: op as AggregateOp, grouping, param, expr };
  }
}
