/**
 * The Prometheus text exposition format (version 0.0.4) and the OpenMetrics text format,
 * parsed into samples as Prometheus 2.42 reads them. Pure: text in, samples out
 * (docs/prometheus.md; test/values-edge-prom-text.test.ts and test/audit9-prom-text.test.ts
 * compare with the real Prometheus).
 *
 * A text-format sample line is `name{label="value",...} value [timestamp]`, spaces and tabs
 * allowed between tokens (not `\r`: a CRLF line is refused, as Prometheus refuses it), a
 * comma allowed before `}`. Label values escape `\\`, `\"` and `\n` (any other escape is kept
 * as written); a label name twice in a series is refused. Values are floats, `NaN`, `+Inf`,
 * `-Inf` (Go's ParseFloat spellings: `Inf`, `+inf`, `Infinity`, ... too); digits past the
 * largest double are refused, as Go's range error refuses them. The timestamp is integer
 * milliseconds, digits only (a sign is refused, as Prometheus' lexer refuses it) within
 * int64. `# HELP` and `# TYPE` (counter, gauge, histogram, summary, untyped) are checked;
 * other comments are free text. Histograms and summaries are their `_bucket`, `_sum` and
 * `_count` (and quantile) series like any other.
 *
 * OpenMetrics lines are protocol/openmetrics-text.ts'; `# EOF` ends that text: without it
 * (cut short?) or with data after it, it is refused. A bad line fails the whole parse,
 * naming its line number: a half-read scrape would look like series that disappeared.
 */
import { TapedeckError } from './errors.js';
import { checkOpenMetricsComment, parseOpenMetricsSample } from './openmetrics-text.js';
import { LABEL_NAME, METRIC_NAME, addLabel, bad, parseFloatText, parseQuoted, sampleValue, shown, type TextLimits, type TextSample } from './prom-text-lex.js';

export { parseFloatText, type TextLimits, type TextSample } from './prom-text-lex.js';

/**
 * Parses a whole exposition; `openMetrics` when the response's content type says so. The
 * samples go into `out` as they are read, so that a caller sees how many came before a
 * refusal (Prometheus' scrape_samples_scraped of a failed parse).
 */
export function parseExposition(text: string, limits: TextLimits, openMetrics = false, out: TextSample[] = []): TextSample[] {
  let lineNo = 0;
  let start = 0;
  let eof = false;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    if (end - start > limits.lineBytesMax) throw bad(lineNo, `longer than ${limits.lineBytesMax} characters (scrapeLineBytesMax)`);
    const line = text.slice(start, end);
    start = end + 1;
    if (openMetrics && line === '# EOF') {
      // Nothing may follow (Prometheus: "unexpected data after # EOF"): two texts run together.
      if (start < text.length) throw bad(lineNo + 1, 'unexpected data after # EOF');
      eof = true;
      break;
    }
    const sample = openMetrics ? openMetricsLine(line, lineNo) : textLine(line, lineNo);
    if (sample === undefined) continue;
    out.push(sample);
    if (out.length > limits.samplesMax) throw new TapedeckError('TPD_BATCH_TOO_LARGE', `more than ${limits.samplesMax} samples in one scrape (scrapeSamplesMax)`);
  }
  // OpenMetrics ends with `# EOF`: without it the text may be cut short, and the series
  // after the cut would be recorded as gone (Prometheus: "data does not end with # EOF").
  if (openMetrics && !eof) throw bad(lineNo, 'OpenMetrics text does not end with # EOF (cut short?)');
  return out;
}

function openMetricsLine(line: string, lineNo: number): TextSample | undefined {
  if (line === '') throw bad(lineNo, 'an empty line (OpenMetrics has none)');
  if (line[0] !== '#') return parseOpenMetricsSample(line, lineNo);
  checkOpenMetricsComment(line, lineNo);
  return undefined;
}

const TEXT_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const BLANK = /^[ \t]*$/;
const TEXT_META = /^#[ \t]+(HELP|TYPE)[ \t]+/;
const MS_DIGITS = /^\d+/;
/** 2^63 - 1: Go's ParseInt refuses more (a range error: the scrape fails in Prometheus). */
const INT64_MAX = '9223372036854775807';

/** A line of the text format: a sample, or undefined for a blank line or a comment. */
function textLine(line: string, lineNo: number): TextSample | undefined {
  if (BLANK.test(line)) return undefined;
  if (line[0] === '#') {
    checkTextComment(line, lineNo);
    return undefined;
  }
  const name = METRIC_NAME.exec(line)?.[0];
  if (name === undefined) throw bad(lineNo, 'does not start with a metric name');
  let i = skipSpace(line, name.length);
  let labels: Array<[string, string]> = [];
  if (line[i] === '{') [labels, i] = parseLabels(line, i + 1, lineNo);
  i = skipSpace(line, i);
  const valueEnd = tokenEnd(line, i);
  if (valueEnd === i) {
    if (i === line.length) throw bad(lineNo, 'expected a value and an optional timestamp');
    throw bad(lineNo, `unexpected ${shown(line[i] as string)} after the metric name`);
  }
  const token = line.slice(i, valueEnd);
  // `a-1 5` is a = -1 at 5 ms for Prometheus' lexer too; `a-b 1` is junk glued to the name.
  if (i === name.length && parseFloatText(token) === undefined) throw bad(lineNo, `unexpected ${shown(token)} after the metric name: not a value`);
  const value = sampleValue(token, lineNo);
  i = skipSpace(line, valueEnd);
  let tsUs: number | undefined;
  if (i < line.length) {
    const digits = MS_DIGITS.exec(line.slice(i, tokenEnd(line, i)))?.[0];
    if (digits === undefined || tokenEnd(line, i) !== i + digits.length) throw bad(lineNo, `${shown(line.slice(i, tokenEnd(line, i)) || line.slice(i))} is not a timestamp (integer milliseconds)`);
    const d = digits.replace(/^0+(?=\d)/, '');
    if (d.length > INT64_MAX.length || (d.length === INT64_MAX.length && d > INT64_MAX)) throw bad(lineNo, `${shown(digits)} is past int64 (not a timestamp)`);
    tsUs = Number(d) * 1000;
    i = skipSpace(line, i + digits.length);
    if (i < line.length) throw bad(lineNo, 'expected a value and an optional timestamp, then the end of the line');
  }
  return { name, labels, value, tsUs };
}

/** `# HELP name text` and `# TYPE name type` must name a metric (and a type); other comments are free text. */
function checkTextComment(line: string, lineNo: number): void {
  const m = TEXT_META.exec(line);
  if (!m) return;
  const rest = line.slice(m[0].length);
  const name = METRIC_NAME.exec(rest)?.[0];
  if (name === undefined) throw bad(lineNo, `# ${m[1] as string} names no metric`);
  const text = rest.slice(skipSpace(rest, name.length));
  if (m[1] === 'TYPE' && !TEXT_TYPES.has(text)) throw bad(lineNo, `unknown metric type ${shown(text)}`);
}

/** The labels from just after `{` to the `}` (spaces and tabs between tokens, a comma before `}`); returns them and the index after `}`. */
function parseLabels(line: string, from: number, lineNo: number): [Array<[string, string]>, number] {
  const labels: Array<[string, string]> = [];
  let i = skipSpace(line, from);
  while (line[i] !== '}') {
    const m = LABEL_NAME.exec(line.slice(i, i + 1024));
    if (!m) throw bad(lineNo, `expected a label name at column ${i + 1}`);
    i = skipSpace(line, i + m[0].length);
    if (line[i] !== '=') throw bad(lineNo, `expected "=" after label ${m[0]}`);
    i = skipSpace(line, i + 1);
    if (line[i] !== '"') throw bad(lineNo, `expected a quoted value for label ${m[0]}`);
    const [value, next] = parseQuoted(line, i + 1, lineNo);
    addLabel(labels, m[0], value, lineNo);
    i = skipSpace(line, next);
    if (line[i] === ',') i = skipSpace(line, i + 1);
    else if (line[i] !== '}') throw bad(lineNo, `expected "," or "}" after label ${m[0]}`);
  }
  return [labels, i + 1];
}

function skipSpace(line: string, i: number): number {
  while (line[i] === ' ' || line[i] === '\t') i++;
  return i;
}

/** The end of the token at i: the text format's value runs to a space, a tab or `{`. */
function tokenEnd(line: string, i: number): number {
  let j = i;
  while (j < line.length && line[j] !== ' ' && line[j] !== '\t' && line[j] !== '{') j++;
  return j;
}
