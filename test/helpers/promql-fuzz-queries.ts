/**
 * The PromQL fuzz's random queries (test/promql-diff-fuzz.test.ts): made only of the
 * constructs docs/prometheus.md lists as supported, nested, with ill-formed ones among them
 * (Prometheus must refuse them, and Tapedeck as it does), over the names and labels of
 * promql-fuzz-data.ts.
 */
import { MINUTE_MS, T0_MS } from './promql-diff-common.js';
import { chance, LABELS, METRICS, pick, type Rand } from './promql-fuzz-data.js';

const RANGES = ['30s', '1m', '90s', '2m', '5m', '10m', '1m30s'];
/** A subquery's range and step (none: the default, 1m); steps that do not divide the range too. Small: a case evaluates at most a few thousand steps. */
const SUBQUERY_RANGES = ['1m', '90s', '5m', '7m', '10m', '30m'];
const SUBQUERY_STEPS = ['', '1m', '30s', '45s', '2m', '7m', '10s', '4m'];
const OFFSETS = ['1m', '5m', '-2m', '30s', '10m', '-90s'];
const ATS = ['start()', 'end()', String((T0_MS + 30 * MINUTE_MS) / 1000), String((T0_MS + 41 * MINUTE_MS + 2345) / 1000)];
const RANGE_FNS = ['rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'changes', 'resets', 'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'present_over_time', 'stddev_over_time', 'stdvar_over_time', 'quantile_over_time'];
const AGGS = ['sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar'];
const ELEMENT_FNS = ['abs', 'ceil', 'floor', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'asinh', 'acosh', 'atanh', 'deg', 'rad'];
const DATE_FNS = ['day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'hour', 'minute', 'month', 'year'];
const PHIS = ['0', '0.5', '0.9', '0.99', '1', '0.25', '-0.5', '1.5', 'NaN'];
const ARITH = ['+', '-', '*', '/', '%', '^', 'atan2'];
const COMPARE = ['==', '!=', '>', '<', '>=', '<='];
const NUMBERS = ['1', '2', '0.5', '0', '-1', '3', '10', '100', '1e3', '0x10', 'NaN', 'Inf', '-Inf', '25', '0.1', '010', '5.', '0X1F', '- 2', '1.e1', '.5'];

export class QueryGen {
  constructor(private readonly r: Rand) {}

  /** Subqueries being generated around the current point: at most two nested (bounded cases). */
  private subqueries = 0;

  /** A query of one to four levels of nesting (now and then a bare subquery: an instant query's matrix). */
  query(): string {
    if (chance(this.r, 0.04)) return this.subquery(true);
    return this.vector(1 + Math.floor(this.r() * 4));
  }

  private labels(max: number): string {
    const n = Math.floor(this.r() * (max + 1));
    const out = new Set<string>();
    for (let i = 0; i < n; i++) out.add(pick(this.r, LABELS));
    return [...out].join(', ');
  }

  private matcherValue(values: readonly string[], regex: boolean): string {
    if (!regex) return pick(this.r, [...values, '', 'nope']);
    return pick(this.r, [values.join('|'), `${(values[0] as string).slice(0, 1)}.*`, '.+', 'i[12]', '5..|2..', '(?i)A|b', '', '.*', pick(this.r, values)]);
  }

  selector(metric?: string): string {
    const name = metric ?? pick(this.r, Object.keys(METRICS));
    const labels = METRICS[name] as Record<string, readonly string[]>;
    const ms: string[] = [];
    for (let i = Math.floor(this.r() * 3); i > 0; i--) {
      const l = pick(this.r, [...Object.keys(labels), 'zz']);
      const op = pick(this.r, ['=', '!=', '=~', '!~']);
      ms.push(`${l}${op}"${this.matcherValue(labels[l] ?? ['x'], op.length === 2 && op !== '!=')}"`);
    }
    if (chance(this.r, 0.08)) return `{__name__=~"${name}|${pick(this.r, ['fz_up', 'fz_gap', 'fz_stale'])}"${ms.map((m) => `, ${m}`).join('')}}`;
    if (chance(this.r, 0.04)) return `{job=${pick(this.r, ['"api"', '"env"', '~"a.*"'])}, __name__${pick(this.r, ['!=', '!~'])}"${name}"${ms.map((m) => `, ${m}`).join('')}}`;
    return ms.length > 0 ? `${name}{${ms.join(', ')}}` : name;
  }

  private modifiers(at = true): string {
    const offset = chance(this.r, 0.2) ? ` offset ${pick(this.r, OFFSETS)}` : '';
    const fixed = at && chance(this.r, 0.1) ? ` @ ${pick(this.r, ATS)}` : '';
    return chance(this.r, 0.5) ? offset + fixed : fixed + offset;
  }

  /**
   * `at` false: no @. Prometheus 2.42 moves an @-fixed range with the steps of a range query
   * when the function call is not step invariant (a quantile_over_time whose q is not a
   * number: prometheus/prometheus#11708, fixed in 2.50), an answer nobody should match.
   */
  matrix(at = true): string {
    if (this.subqueries < 2 && chance(this.r, 0.2)) return this.subquery(at);
    return `${this.selector()}[${pick(this.r, RANGES)}]${this.modifiers(at)}`;
  }

  /** `expr[range:step]` over a selector, a range function or any vector, with offset and @ as a range selector takes them. */
  private subquery(at: boolean): string {
    this.subqueries++;
    try {
      const inner = pick(this.r, [
        () => this.selector() + this.modifiers(),
        () => `${pick(this.r, RANGE_FNS.slice(0, -1))}(${this.matrix()})`,
        () => `(${this.vector(1)})`,
      ])();
      return `${inner}[${pick(this.r, SUBQUERY_RANGES)}:${pick(this.r, SUBQUERY_STEPS)}]${this.modifiers(at)}`;
    } finally {
      this.subqueries--;
    }
  }

  scalar(depth: number): string {
    const r = this.r();
    if (depth <= 0 || r < 0.55) return pick(this.r, NUMBERS);
    if (r < 0.62) return 'time()';
    if (r < 0.65) return 'pi()';
    if (r < 0.8) return `scalar(${this.vector(depth - 1)})`;
    if (r < 0.9) return `(${this.scalar(depth - 1)} ${pick(this.r, [...ARITH, ...COMPARE.map((c) => `${c} bool`)])} ${this.scalar(depth - 1)})`;
    return `-${this.scalar(depth - 1)}`;
  }

  private matching(group: boolean): string {
    if (chance(this.r, 0.3) && !group) return '';
    let m = `${chance(this.r, 0.6) ? 'on' : 'ignoring'}(${this.labels(2)})`;
    if (group) m += ` ${pick(this.r, ['group_left', 'group_right'])}${chance(this.r, 0.5) ? `(${this.labels(1)})` : ''}`;
    return ` ${m}`;
  }

  vector(depth: number): string {
    if (depth <= 0) return chance(this.r, 0.6) ? this.selector() + this.modifiers() : `${pick(this.r, RANGE_FNS.slice(0, -1))}(${this.matrix()})`;
    const d = depth - 1;
    const k = Math.floor(this.r() * 23);
    switch (k) {
      case 0:
      case 1:
        return this.selector() + this.modifiers();
      case 2:
      case 3: {
        const fn = pick(this.r, RANGE_FNS);
        if (fn !== 'quantile_over_time') return `${fn}(${this.matrix()})`;
        const q = this.scalar(d);
        return `${fn}(${q}, ${this.matrix(NUMBERS.includes(q))})`;
      }
      case 4:
      case 5: {
        const op = pick(this.r, AGGS);
        const g = chance(this.r, 0.6) ? ` ${pick(this.r, ['by', 'without'])} (${this.labels(2)})` : '';
        return chance(this.r, 0.5) ? `${op}${g} (${this.vector(d)})` : `${op}(${this.vector(d)})${g}`;
      }
      case 6: {
        const g = chance(this.r, 0.5) ? ` by (${this.labels(2)})` : '';
        return `${pick(this.r, ['topk', 'bottomk'])}${g} (${chance(this.r, 0.8) ? pick(this.r, ['1', '2', '3', '0', '-1', '1.5', '100']) : this.scalar(d)}, ${this.vector(d)})`;
      }
      case 7:
      case 8: {
        const op = pick(this.r, [...ARITH, ...COMPARE]);
        const bool = COMPARE.includes(op) && chance(this.r, 0.4) ? ' bool' : '';
        return chance(this.r, 0.6) ? `(${this.vector(d)}) ${op}${bool} ${this.scalar(d)}` : `${this.scalar(d)} ${op}${bool} (${this.vector(d)})`;
      }
      case 9:
      case 10: {
        const op = pick(this.r, [...ARITH, ...COMPARE]);
        const bool = COMPARE.includes(op) && chance(this.r, 0.4) ? ' bool' : '';
        const group = chance(this.r, 0.35);
        // Half the time both sides select one metric (the usual join), else anything.
        const metric = chance(this.r, 0.5) ? pick(this.r, Object.keys(METRICS)) : undefined;
        const side = (): string => (metric ? this.selector(metric) + this.modifiers() : chance(this.r, 0.4) ? `sum by (${this.labels(2)}) (${this.vector(d - 1)})` : this.vector(d));
        // Unparenthesized selectors too: precedence and modifiers on the rightmost operand.
        const [l, r] = metric && chance(this.r, 0.5) ? [side(), side()] : [`(${side()})`, `(${side()})`];
        return `${l} ${op}${bool}${this.matching(group)} ${r}`;
      }
      case 11:
        return `(${this.vector(d)}) ${pick(this.r, ['and', 'or', 'unless'])}${chance(this.r, 0.4) ? ` ${pick(this.r, ['on', 'ignoring'])}(${this.labels(2)})` : ''} (${this.vector(d)})`;
      case 12:
        return `${pick(this.r, ELEMENT_FNS)}(${this.vector(d)})`;
      case 13: {
        const fn = pick(this.r, ['clamp', 'clamp_min', 'clamp_max', 'round', 'round']);
        if (fn === 'clamp') return `clamp(${this.vector(d)}, ${this.scalar(d)}, ${this.scalar(d)})`;
        if (fn === 'round' && chance(this.r, 0.4)) return `round(${this.vector(d)})`;
        return `${fn}(${this.vector(d)}, ${fn === 'round' ? pick(this.r, ['0.1', '5', '1', '0.25', '-2']) : this.scalar(d)})`;
      }
      case 14:
        return chance(this.r, 0.5) ? `absent(${chance(this.r, 0.6) ? this.selector() : this.vector(d)})` : `absent_over_time(${this.matrix()})`;
      case 15:
        return chance(this.r, 0.6)
          ? `label_replace(${this.vector(d)}, "${pick(this.r, ['dst', 'instance', 'code', '__name__'])}", "${pick(this.r, ['$1', '${1}-x', 'v$2', '', '$0'])}", "${pick(this.r, LABELS)}", "${pick(this.r, ['(.*)', 'i(\\\\d)', '(.)(.*)', '5..', '(?P<a>.)'])}")`
          : `label_join(${this.vector(d)}, "${pick(this.r, ['dst', 'job', 'instance'])}", "${pick(this.r, ['-', '', ','])}", "${pick(this.r, LABELS)}", "${pick(this.r, LABELS)}")`;
      case 16:
        return chance(this.r, 0.5) ? `vector(${this.scalar(d)})` : `-(${this.vector(d)})`;
      case 17:
      case 18:
        return this.histogram(d);
      case 19:
        return this.newFunction(d);
      case 20:
        return this.newAggregation(d);
      case 21:
        return this.newRange(d);
      default:
        return this.illFormed(d);
    }
  }

  private phi(d: number): string {
    return chance(this.r, 0.85) ? pick(this.r, PHIS) : this.scalar(d);
  }

  /** histogram_quantile over buckets as dashboards write it (rate, sum by le), and over anything. */
  private histogram(d: number): string {
    const sel = this.selector('fz_lat_bucket');
    const r = pick(this.r, RANGES);
    const inner = pick(this.r, [
      () => sel + this.modifiers(),
      () => `rate(${sel}[${r}]${this.modifiers()})`,
      () => `sum by (le${chance(this.r, 0.5) ? ', instance' : ''}) (rate(${sel}[${r}]))`,
      () => `sum without (${pick(this.r, ['instance', 'job', 'le', ''])}) (increase(${sel}[${r}]))`,
      () => `{__name__=~"fz_lat_bucket|fz_up"}`,
      () => this.vector(d),
    ])();
    return `histogram_quantile(${this.phi(d)}, ${inner})`;
  }

  /** sort, sort_desc, timestamp, the calendar functions. */
  private newFunction(d: number): string {
    const k = Math.floor(this.r() * 4);
    if (k === 0) return `${pick(this.r, ['sort', 'sort_desc'])}(${this.vector(d)})`;
    if (k === 1) {
      // No selector with both @ and offset (2.42 drops the offset there; Tapedeck refuses it).
      const sel = this.selector() + (chance(this.r, 0.5) ? ` offset ${pick(this.r, OFFSETS)}` : chance(this.r, 0.3) ? ` @ ${pick(this.r, ATS)}` : '');
      const v = this.vector(d);
      const arg = v.includes(' @ ') && v.includes(' offset ') ? this.selector() : v;
      return `timestamp(${chance(this.r, 0.6) ? sel : chance(this.r, 0.5) ? `(${sel})` : arg})`;
    }
    const fn = pick(this.r, DATE_FNS);
    if (k === 2) return `${fn}()`;
    return `${fn}(${chance(this.r, 0.3) ? `vector(${pick(this.r, ['time()', '1e10', '-1e12', '951782400', '0', 'NaN', '1e19', '-86401'])})` : this.vector(d)})`;
  }

  private newAggregation(d: number): string {
    const g = chance(this.r, 0.6) ? ` ${pick(this.r, ['by', 'without'])} (${this.labels(2)})` : '';
    if (chance(this.r, 0.5)) return `quantile${g} (${this.phi(d)}, ${this.vector(d)})`;
    const label = pick(this.r, ['value', 'value', 'instance', 'le', '__name__', 'job']);
    // Its operand's values become labels, compared exactly: every function and operator is Go's to the bit (gotrig.ts, goexp.ts).
    return `count_values${g} ("${label}", ${this.vector(d)})`;
  }

  private newRange(d: number): string {
    if (chance(this.r, 0.5)) {
      const t = chance(this.r, 0.8) ? pick(this.r, ['60', '3600', '0', '-300', '1e6', '0.5']) : this.scalar(d);
      return `predict_linear(${this.matrix(NUMBERS.includes(t) || /^[-\d.e]+$/.test(t))}, ${t})`;
    }
    const f = (): string => (chance(this.r, 0.9) ? pick(this.r, ['0.5', '0.1', '0.9', '0.3']) : pick(this.r, ['0', '1', 'NaN', '2', '-0.5']));
    const sf = f();
    const tf = f();
    return `holt_winters(${this.matrix()}, ${sf}, ${tf})`;
  }

  /** What Prometheus refuses (bad_data, or an evaluation error): Tapedeck must refuse it the same way. */
  private illFormed(d: number): string {
    const v = (): string => this.vector(d);
    return pick(this.r, [
      () => `${pick(this.r, NUMBERS)} ${pick(this.r, COMPARE)} ${pick(this.r, NUMBERS)}`,
      () => `(${v()}) ${pick(this.r, ['and', 'or', 'unless'])} ${pick(this.r, NUMBERS)}`,
      () => `${this.matrix()} ${pick(this.r, ARITH)} 1`,
      () => `${pick(this.r, RANGE_FNS.slice(0, -1))}(${this.selector()})`,
      () => `${pick(this.r, AGGS)}(${this.matrix()})`,
      () => `topk(${this.selector()}, ${v()})`,
      () => `${this.selector()} offset 1m offset 2m`,
      () => `(${v()})[5m]`,
      () => `label_replace(${v()}, "dst", "$1", "instance", "(")`,
      () => `label_join(${v()}, "1bad", "-", "instance")`,
      () => `clamp(${v()}, 1)`,
      () => `${pick(this.r, ELEMENT_FNS)}(${pick(this.r, NUMBERS)})`,
      () => `(${v()}) ${pick(this.r, ARITH)} bool (${v()})`,
      () => `(${v()}) + on(instance) group_left(instance) (${v()})`,
      () => `(${v()}) and on(instance) group_left (${v()})`,
      () => `vector(${v()})`,
      () => `(${v()}) ${pick(this.r, ARITH)} ignoring(code) (${v()})`,
      () => `fz_req_total ${pick(this.r, ARITH)} on() fz_temp`,
      () => `sum(${v()}) by (instance) by (job)`,
      () => `{zz=""}`,
      () => `(${this.selector()})${pick(this.r, [` offset ${pick(this.r, OFFSETS)}`, ` @ ${pick(this.r, ATS)}`, `[${pick(this.r, RANGES)}]`])}`,
      () => `${this.selector()}[${pick(this.r, ['300', '1.5m', '5s1m', '0s', '1m5h'])}]`,
      () => `${this.selector()} offset ${pick(this.r, ['60', '1_0m', '1.5m'])}`,
      () => `${this.selector()} ${pick(this.r, ARITH)} ${pick(this.r, ['1m', '1_000', '1e400', '0x8000000000000000', '1e', '0b1'])}`,
      () => pick(this.r, [`{"${pick(this.r, Object.keys(METRICS))}"}`, `fz_up{"job"="api"}`, `sum by ("${pick(this.r, LABELS)}") (${v()})`]),
      () => pick(this.r, [`histogram_quantile(${this.matrix()}, ${v()})`, `histogram_quantile(0.5, ${this.matrix()})`, `histogram_quantile(0.5)`, `sort(${this.matrix()})`, `timestamp(1)`, `hour(${this.matrix()})`, `hour(${v()}, ${v()})`]),
      () => pick(this.r, [`quantile(${v()}, ${v()})`, `count_values(1, ${v()})`, `count_values("1bad", ${v()})`, `count_values("", ${v()})`, `quantile(0.5)`, `predict_linear(${this.selector()}, 60)`, `holt_winters(${this.matrix()}, 0.5)`, `pi(1)`, `${this.matrix()} atan2 1`]),
    ])();
  }
}
