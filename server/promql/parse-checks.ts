/**
 * The typing and checks of PromQL nodes that server/promql/parse.ts builds, in the order and
 * with the messages of Prometheus' parser (parser/parse.go checkAST): unary minus, binary
 * and set operators, and label matchers (regexes anchored and linear-time).
 */
import type { BinaryOp, Expr, LabelMatcher, Matching, MatchOp, SetOp } from './ast.js';
import { typeOf } from './ast.js';
import { badData } from './errors.js';
import { compileLabelRegex } from './regex.js';

const COMPARISONS = new Set<BinaryOp>(['==', '!=', '>', '<', '>=', '<=']);

/** `-e`, typed. */
export function negate(e: Expr): Expr {
  const t = typeOf(e);
  if (t === 'matrix') throw badData('unary expression only allowed on expressions of type scalar or instant vector, got "range vector"');
  if (e.kind === 'number') return { kind: 'number', value: -e.value };
  return { kind: 'neg', expr: e, type: t };
}

/** A binary expression, typed and checked as Prometheus' parser checks it. */
export function checkBinary(op: BinaryOp, bool: boolean, matching: Matching | undefined, lhs: Expr, rhs: Expr): Expr {
  const lt = typeOf(lhs);
  const rt = typeOf(rhs);
  if (bool && !COMPARISONS.has(op)) throw badData('bool modifier can only be used on comparison operators');
  if (COMPARISONS.has(op) && lt === 'scalar' && rt === 'scalar' && !bool) throw badData('comparisons between scalars must use BOOL modifier');
  checkGroupLabels(matching);
  if (lt === 'matrix' || rt === 'matrix') throw badData('binary expression must contain only scalar and instant vector types');
  if (matching && (lt !== 'vector' || rt !== 'vector')) throw badData('vector matching only allowed between instant vectors');
  const type = lt === 'scalar' && rt === 'scalar' ? 'scalar' : 'vector';
  return { kind: 'binary', op, bool, matching, lhs, rhs, type };
}

/** A set operation, checked in the order Prometheus' parser checks it (parser/parse.go checkAST). */
export function checkSet(op: SetOp, bool: boolean, matching: Matching | undefined, lhs: Expr, rhs: Expr): Expr {
  const lt = typeOf(lhs);
  const rt = typeOf(rhs);
  if (bool) throw badData('bool modifier can only be used on comparison operators');
  checkGroupLabels(matching);
  if (lt === 'matrix' || rt === 'matrix') throw badData('binary expression must contain only scalar and instant vector types');
  if (matching && matching.labels.length > 0 && (lt !== 'vector' || rt !== 'vector')) throw badData('vector matching only allowed between instant vectors');
  if (matching?.group && lt === 'vector' && rt === 'vector') throw badData(`no grouping allowed for ${JSON.stringify(op)} operation`);
  if (lt === 'scalar' || rt === 'scalar') throw badData(`set operator ${JSON.stringify(op)} not allowed in binary scalar expression`);
  return { kind: 'set', op, matching, lhs, rhs };
}

/** With on(...), a label copied by group_left / group_right cannot also pair the sides. */
function checkGroupLabels(matching: Matching | undefined): void {
  if (!matching?.group || !matching.on) return;
  for (const l of matching.group.include) {
    if (matching.labels.includes(l)) throw badData(`label ${JSON.stringify(l)} must not occur in ON and GROUP clause at once`);
  }
}

/**
 * The labels of absent()'s answer (2.42 functions.go createLabelsForAbsentFunction): of a
 * selector, its matchers in order (not the name's): the first equality matcher of a label
 * sets it, any other matcher of that label removes it again, so `{a=~"x.*", a="y"}` keeps
 * a="y" and `{a="x", a="y"}` keeps no a. None for anything but a selector.
 */
export function absentLabels(e: Expr): Array<[string, string]> {
  if (e.kind !== 'vector' && e.kind !== 'matrix') return [];
  const set = new Map<string, string>();
  const has = new Set<string>();
  for (const m of e.sel.matchers) {
    if (m.name === '__name__') continue;
    if (m.op === '=' && !has.has(m.name)) {
      set.set(m.name, m.value);
      has.add(m.name);
    } else set.delete(m.name);
  }
  return [...set];
}

/** A label matcher with its test (regexes anchored and linear-time). */
export function matcher(name: string, op: MatchOp, value: string): LabelMatcher {
  switch (op) {
    case '=':
      return { name, op, value, test: (v) => v === value };
    case '!=':
      return { name, op, value, test: (v) => v !== value };
    case '=~': {
      const re = compileLabelRegex(value);
      return { name, op, value, test: (v) => re.test(v) };
    }
    case '!~': {
      const re = compileLabelRegex(value);
      return { name, op, value, test: (v) => !re.test(v) };
    }
  }
}
