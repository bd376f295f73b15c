/**
 * The Prometheus text exposition format (version 0.0.4) and the OpenMetrics text format,
 * parsed into samples. Pure: text in, samples out (docs/prometheus.md).
 *
 * A sample line is `name{label="value",...} value [timestamp]`. Label values escape `\\`,
 * `\"` and `\n`; a backslash before any other character is kept with it (`\t` is two
 * characters), as Prometheus reads it; a label name twice in a series is refused, as
 * Prometheus refuses it. Values are floats, `NaN`, `+Inf`, `-Inf` (Go's ParseFloat
 * spellings: `Inf`, `+inf`, `Infinity`, ... too); digits past the largest double are
 * refused, as Go's range error refuses them.
 * Timestamps are integer milliseconds in the text format and (fractional) seconds in
 * OpenMetrics. `# HELP` and `# TYPE` lines are read for their syntax and otherwise
 * ignored: histograms and summaries are their `_bucket`, `_sum` and `_count` (and quantile)
 * series like any other. OpenMetrics exemplars (` # {...} v`) are dropped and `# EOF` ends the
 * text: OpenMetrics without it (cut short?) or with data after it is refused, as Prometheus
 * refuses it. A bad line fails the whole parse, naming its line number: a half-read scrape
 * would look like series that disappeared.
 */
import { TapedeckError } from './errors.js';

export interface TextSample {
  name: string;
  /** Label pairs in the order written. */
  labels: Array<[string, string]>;
  value: number;
  /** Milliseconds since the epoch, when the line gives one. */
  tsMs: number | undefined;
}

export interface TextLimits {
  samplesMax: number;
  lineBytesMax: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
/** Unambiguous, so a refusal is linear (`\d+\.?\d*` split long digit runs every way: quadratic). */
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT = /^-?\d+$/;

function bad(line: number, why: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `exposition line ${line}: ${why}`);
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

/** Parses a whole exposition; `openMetrics` when the response's content type says so. */
export function parseExposition(text: string, limits: TextLimits, openMetrics = false): TextSample[] {
  const out: TextSample[] = [];
  let lineNo = 0;
  let start = 0;
  let eof = false;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    if (end - start > limits.lineBytesMax) throw bad(lineNo, `longer than ${limits.lineBytesMax} characters (scrapeLineBytesMax)`);
    const line = text.slice(start, end).replace(/\r$/, '');
    start = end + 1;
    if (/^[ \t]*$/.test(line)) continue;
    if (line.startsWith('#')) {
      if (openMetrics && line === '# EOF') {
        // Nothing may follow (Prometheus: "unexpected data after # EOF"): two texts run together.
        if (start < text.length) throw bad(lineNo + 1, 'unexpected data after # EOF');
        eof = true;
        break;
      }
      checkComment(line, lineNo);
      continue;
    }
    out.push(parseSampleLine(line, lineNo, openMetrics));
    if (out.length > limits.samplesMax) throw new TapedeckError('TPD_BATCH_TOO_LARGE', `more than ${limits.samplesMax} samples in one scrape (scrapeSamplesMax)`);
  }
  // OpenMetrics ends with `# EOF`: without it the text may be cut short, and the series
  // after the cut would be recorded as gone (Prometheus: "data does not end with # EOF").
  if (openMetrics && !eof) throw bad(lineNo, 'OpenMetrics text does not end with # EOF (cut short?)');
  return out;
}

/** `# HELP name text` and `# TYPE name type` must name a metric; other comments are free text. */
function checkComment(line: string, lineNo: number): void {
  const m = /^#[ \t]+(HELP|TYPE|UNIT)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return;
  if (!METRIC_NAME.test(m[2] as string) || (METRIC_NAME.exec(m[2] as string)?.[0].length ?? 0) !== (m[2] as string).length) throw bad(lineNo, `# ${m[1] as string} names no metric`);
  if (m[1] === 'TYPE' && !/^(counter|gauge|histogram|gaugehistogram|summary|untyped|unknown|info|stateset)$/.test((m[3] ?? '').trim())) {
    throw bad(lineNo, `unknown metric type ${JSON.stringify(m[3] ?? '')}`);
  }
}

function parseSampleLine(line: string, lineNo: number, openMetrics: boolean): TextSample {
  const nameMatch = METRIC_NAME.exec(line);
  if (!nameMatch) throw bad(lineNo, 'does not start with a metric name');
  const name = nameMatch[0];
  let i = name.length;
  let labels: Array<[string, string]> = [];
  if (line[i] === '{') [labels, i] = parseLabels(line, i + 1, lineNo);
  let rest = line.slice(i);
  if (openMetrics) {
    const ex = rest.indexOf(' # ');
    if (ex >= 0) rest = rest.slice(0, ex);
  }
  const fields = rest.trim().split(/[ \t]+/);
  if (rest.length > 0 && !/^[ \t]/.test(rest)) throw bad(lineNo, `unexpected ${JSON.stringify(rest[0])} after the metric name`);
  if (fields.length < 1 || fields.length > 2 || fields[0] === '') throw bad(lineNo, 'expected a value and an optional timestamp');
  const value = parseFloatText(fields[0] as string);
  if (value === undefined) throw bad(lineNo, `${JSON.stringify((fields[0] as string).slice(0, 40))} is not a value`);
  return { name, labels, value, tsMs: fields.length === 2 ? parseTimestamp(fields[1] as string, lineNo, openMetrics) : undefined };
}

function parseTimestamp(s: string, lineNo: number, openMetrics: boolean): number {
  if (openMetrics) {
    const secs = parseFloatText(s);
    if (secs === undefined || !Number.isFinite(secs)) throw bad(lineNo, `${JSON.stringify(s.slice(0, 40))} is not a timestamp`);
    return Math.round(secs * 1000);
  }
  if (!INT.test(s) || !Number.isSafeInteger(Number(s))) throw bad(lineNo, `${JSON.stringify(s.slice(0, 40))} is not a timestamp (integer milliseconds)`);
  return Number(s);
}

/** The labels from just after `{` to the `}`; returns them and the index after `}`. */
function parseLabels(line: string, from: number, lineNo: number): [Array<[string, string]>, number] {
  const labels: Array<[string, string]> = [];
  let i = skipSpace(line, from);
  while (line[i] !== '}') {
    const m = LABEL_NAME.exec(line.slice(i));
    if (!m) throw bad(lineNo, `expected a label name at column ${i + 1}`);
    i = skipSpace(line, i + m[0].length);
    if (line[i] !== '=') throw bad(lineNo, `expected "=" after label ${m[0]}`);
    i = skipSpace(line, i + 1);
    if (line[i] !== '"') throw bad(lineNo, `expected a quoted value for label ${m[0]}`);
    const [value, next] = parseQuoted(line, i + 1, lineNo);
    // A label twice (or __name__ beside the name) would leave one of the values out of the
    // series' path: Prometheus refuses such a scrape ("label name is not unique").
    if (m[0] === '__name__' || labels.some((l) => l[0] === m[0])) throw bad(lineNo, `label ${m[0]} is not unique`);
    labels.push([m[0], value]);
    i = skipSpace(line, next);
    if (line[i] === ',') i = skipSpace(line, i + 1);
    else if (line[i] !== '}') throw bad(lineNo, `expected "," or "}" after label ${m[0]}`);
  }
  return [labels, i + 1];
}

function parseQuoted(line: string, from: number, lineNo: number): [string, number] {
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
    // Prometheus keeps any other escape as it is written (`\t` is a backslash and a t).
    else out += `\\${e}`;
  }
  throw bad(lineNo, 'a label value is not closed');
}

function skipSpace(line: string, i: number): number {
  while (line[i] === ' ' || line[i] === '\t') i++;
  return i;
}
