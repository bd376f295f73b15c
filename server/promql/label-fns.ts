/**
 * label_replace and label_join (Prometheus 2.42 functions.go): each element's labels
 * rewritten, its value kept, the metric name too unless it is the destination. Their
 * argument errors (a bad regex, a bad label name) are evaluation errors, as in Prometheus
 * (422 `execution`, met at the first step, with or without data); the regex is RE2 syntax,
 * fully anchored, on V8's linear-time engine (server/promql/regex.ts), and `$1`, `${name}`
 * and `$$` in the replacement expand as Go's Regexp.ExpandString expands them.
 */
import { isLabelName } from '../../protocol/prom-text-lex.js';
import { execution } from './errors.js';
import { labelValue, makeMetric, type Metric } from './labels.js';
import { compileLabelRegex } from './regex.js';
import { SERVER_LIMITS } from '../limits.js';

export type LabelFunction =
  | { readonly fn: 'label_replace'; readonly dst: string; readonly replacement: string; readonly src: string; readonly regex: string }
  | { readonly fn: 'label_join'; readonly dst: string; readonly separator: string; readonly srcs: readonly string[] };

/** A label function ready to apply: the regex compiled once, or the error every step meets. */
export interface LabelRewrite {
  readonly error: string | undefined;
  apply(m: Metric): Metric;
}

export function labelRewrite(f: LabelFunction): LabelRewrite {
  // Per series of the query's selection (the same Metric objects at every step).
  const memo = new WeakMap<Metric, Metric>();
  const remember = (m: Metric, out: Metric): Metric => {
    memo.set(m, out);
    return out;
  };
  if (f.fn === 'label_join') {
    const bad = [f.dst, ...f.srcs].find((l) => !isLabelName(l));
    const error = bad === undefined ? undefined : bad === f.dst ? `invalid destination label name in label_join(): ${f.dst}` : `invalid source label name in label_join(): ${bad}`;
    return {
      error,
      apply: (m) => memo.get(m) ?? remember(m, withLabel(m, f.dst, joined(f.srcs.map((s) => labelValue(m, s)), f.separator))),
    };
  }
  let re: RegExp | undefined;
  let error: string | undefined;
  try {
    re = compileLabelRegex(f.regex);
  } catch (err) {
    error = `invalid regular expression in label_replace(): ${f.regex} (${(err as Error).message})`;
  }
  if (error === undefined && !isLabelName(f.dst)) error = `invalid destination label name in label_replace(): ${f.dst}`;
  return {
    error,
    apply: (m) => {
      const known = memo.get(m);
      if (known) return known;
      const match = (re as RegExp).exec(labelValue(m, f.src));
      // No match: no replacement.
      return remember(m, match === null ? m : withLabel(m, f.dst, expandTemplate(f.replacement, match)));
    },
  };
}

/** The label values made too long: an evaluation error (promqlLabelValueCharsMax). */
function tooLong(fn: string): never {
  throw execution(`${fn}() made a label value longer than promqlLabelValueCharsMax (${SERVER_LIMITS.promqlLabelValueCharsMax} characters)`);
}

/** values joined by separator, refused as soon as it passes promqlLabelValueCharsMax. */
function joined(values: readonly string[], separator: string): string {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    out += i === 0 ? values[i] : separator + (values[i] as string);
    if (out.length > SERVER_LIMITS.promqlLabelValueCharsMax) tooLong('label_join');
  }
  return out;
}

/** m with `name` set to `value`, or removed when the value is empty. */
function withLabel(m: Metric, name: string, value: string): Metric {
  const pairs = m.labels.filter((l) => l[0] !== name);
  if (value !== '') pairs.push([name, value]);
  return makeMetric(pairs);
}

const NAME_CHAR = /[\p{L}\p{Nd}_]/u;

/** Go's Regexp.ExpandString: `$$` is `$`; `$name` / `${name}` a group by number or name (missing: nothing); a malformed `$` stays. */
export function expandTemplate(template: string, match: RegExpExecArray): string {
  let out = '';
  let rest = template;
  for (;;) {
    const at = rest.indexOf('$');
    if (at < 0) break;
    out += rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = extractName(rest);
    if (ref === undefined) {
      out += '$';
      continue;
    }
    rest = ref.rest;
    const num = groupNumber(ref.name);
    const text = num >= 0 ? match[num] : match.groups?.[ref.name];
    out += text ?? '';
    if (out.length > SERVER_LIMITS.promqlLabelValueCharsMax) tooLong('label_replace');
  }
  out += rest;
  if (out.length > SERVER_LIMITS.promqlLabelValueCharsMax) tooLong('label_replace');
  return out;
}

/** Go's regexp extract: a name of letters, digits and underscores, braced or not; undefined when malformed. */
function extractName(str: string): { name: string; rest: string } | undefined {
  let s = str;
  const brace = s.startsWith('{');
  if (brace) s = s.slice(1);
  let i = 0;
  for (const ch of s) {
    if (!NAME_CHAR.test(ch)) break;
    i += ch.length;
  }
  if (i === 0) return undefined;
  const name = s.slice(0, i);
  if (brace) {
    if (s[i] !== '}') return undefined;
    i++;
  }
  return { name, rest: s.slice(i) };
}

/** The group number a name spells (decimal, no leading zero, below 10^8), or -1 for a name. */
function groupNumber(name: string): number {
  if (!/^\d+$/.test(name) || (name.length > 1 && name[0] === '0')) return -1;
  let num = 0;
  for (const c of name) {
    if (num >= 1e8) return -1;
    num = num * 10 + (c.charCodeAt(0) - 48);
  }
  return num;
}

/** Throws the evaluation error of a label function whose arguments are bad. */
export function checkRewrite(r: LabelRewrite): void {
  if (r.error !== undefined) throw execution(r.error);
}
