/**
 * The pieces both exposition formats share (protocol/prom-text.ts: the text format 0.0.4;
 * protocol/openmetrics-text.ts: OpenMetrics): the sample type, Go's float spellings, label
 * values and the errors naming a line. Each format's own grammar (where whitespace may go,
 * which comments exist, how timestamps are written) is its module's, as Prometheus 2.42's
 * two lexers (model/textparse) have it: test/audit9-prom-text.test.ts checks both against it.
 */
import { TapedeckError } from './errors.js';

export interface TextSample {
  name: string;
  /** Label pairs in the order written. */
  labels: Array<[string, string]>;
  value: number;
  /**
   * Microseconds since the epoch, when the line gives a time (Tapedeck's time unit: an
   * OpenMetrics time in seconds keeps its digits down to the µs; text-format ms * 1000). May
   * lie outside what an archive holds (before the epoch, past TS_MAX_US): the reader decides.
   */
  tsUs: number | undefined;
}

export interface TextLimits {
  samplesMax: number;
  lineBytesMax: number;
}

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const WHOLE_METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const WHOLE_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `s` is a whole metric name of Prometheus' classic charset (as PromQL writes one bare). */
export function isMetricName(s: string): boolean {
  return WHOLE_METRIC_NAME.test(s);
}

/** `s` is a whole label name of Prometheus' classic charset. */
export function isLabelName(s: string): boolean {
  return WHOLE_LABEL_NAME.test(s);
}
/** Unambiguous, so a refusal is linear (`\d+\.?\d*` split long digit runs every way: quadratic). */
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export function bad(line: number, why: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `exposition line ${line}: ${why}`);
}

/** A token of a refused line, cut for the message. */
export function shown(s: string): string {
  return JSON.stringify(s.slice(0, 40));
}

/** Go's spellings of the infinities (strconv.ParseFloat, any case): `inf` or `infinity`, signed or not. */
const GO_INF = /^([+-]?)(?:inf|infinity)$/i;

/**
 * A float as Go's strconv.ParseFloat reads the exposition's values (Prometheus refuses `p`
 * and `_`, so no hex floats and no digit separators); undefined when it is not one. Digits
 * past the largest double are ParseFloat's range error, which refuses the line in
 * Prometheus: not a silent Infinity.
 */
export function parseFloatText(s: string): number | undefined {
  if (s.length === 3 && s.toLowerCase() === 'nan') return NaN;
  const inf = GO_INF.exec(s);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  if (!FLOAT.test(s)) return undefined;
  const v = Number(s);
  return Number.isFinite(v) ? v : undefined;
}

/** The value token of a sample line, or the line's refusal. */
export function sampleValue(token: string, lineNo: number): number {
  const value = parseFloatText(token);
  if (value === undefined) throw bad(lineNo, `${shown(token)} is not a value`);
  return value;
}

/**
 * A quoted label value from just after its opening quote: `\\`, `\"` and `\n` are escapes;
 * Prometheus keeps a backslash before any other character as it is written (`\t` is a
 * backslash and a t). Returns the value and the index after the closing quote.
 */
export function parseQuoted(line: string, from: number, lineNo: number): [string, number] {
  let out = '';
  for (let i = from; i < line.length; i++) {
    const c = line[i] as string;
    if (c === '"') return [out, i + 1];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = line[++i];
    if (e === '\\') out += '\\';
    else if (e === '"') out += '"';
    else if (e === 'n') out += '\n';
    else if (e === undefined) break;
    else out += `\\${e}`;
  }
  throw bad(lineNo, 'a label value is not closed');
}

/**
 * A label of a series, after the labels before it: a name twice (or `__name__` beside the
 * name) would leave one of the values out of the series' path: Prometheus refuses such a
 * scrape ("label name is not unique").
 */
export function addLabel(labels: Array<[string, string]>, name: string, value: string, lineNo: number): void {
  if (name === '__name__' || labels.some((l) => l[0] === name)) throw bad(lineNo, `label ${name} is not unique`);
  labels.push([name, value]);
}
