/**
 * OpenMetrics text lines, as Prometheus 2.42 reads them (model/textparse/openmetricslex.l and
 * openmetricsparse.go), stricter than the text format 0.0.4 (protocol/prom-text.ts):
 *
 * - tokens are separated by exactly one space: no tabs, no runs, nothing trailing, no `\r`;
 *   no empty line, no space inside `{...}`, no comma before `}`;
 * - the only comments are `# HELP <name> <text>`, `# TYPE <name> <type>` (one of the
 *   OpenMetrics types), `# UNIT <name> <unit>` (the name must end in `_<unit>`) and `# EOF`;
 * - a sample is `name{labels} value [timestamp] [# {labels} value [timestamp]]`: the
 *   timestamp is seconds (any float spelling but NaN and the infinities), kept here down to
 *   the µs (Prometheus truncates it to ms; reading the archive in ms gives the same);
 * - an exemplar (` # {...} v [t]`) is allowed only on a name ending in `_total` or `_bucket`,
 *   and must be well formed; it is then dropped (Tapedeck records no exemplars).
 */
import { LABEL_NAME, METRIC_NAME, addLabel, bad, parseFloatText, parseQuoted, sampleValue, shown, type TextSample } from './prom-text-lex.js';

const OM_TYPES = new Set(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'info', 'stateset', 'unknown']);
const META = /^# (HELP|TYPE|UNIT) /;

/** A comment line (starting with `#`) other than `# EOF`: checked, nothing returned. */
export function checkOpenMetricsComment(line: string, lineNo: number): void {
  const m = META.exec(line);
  if (!m) throw bad(lineNo, `${shown(line)} is not # HELP, # TYPE, # UNIT or # EOF (OpenMetrics has no other comments)`);
  const rest = line.slice(m[0].length);
  const name = METRIC_NAME.exec(rest)?.[0];
  if (name === undefined) throw bad(lineNo, `# ${m[1] as string} names no metric`);
  if (rest[name.length] !== ' ') throw bad(lineNo, `expected one space and the text after # ${m[1] as string} ${name}`);
  const text = rest.slice(name.length + 1);
  if (m[1] === 'TYPE' && !OM_TYPES.has(text)) throw bad(lineNo, `unknown metric type ${shown(text)}`);
  if (m[1] === 'UNIT' && text !== '' && !name.endsWith(`_${text}`)) throw bad(lineNo, `unit ${shown(text)} is not a suffix of metric ${name}`);
}

/** A sample line of OpenMetrics text. */
export function parseOpenMetricsSample(line: string, lineNo: number): TextSample {
  const name = METRIC_NAME.exec(line)?.[0];
  if (name === undefined) throw bad(lineNo, 'does not start with a metric name');
  let labels: Array<[string, string]> = [];
  let i = name.length;
  if (line[i] === '{') [labels, i] = strictLabels(line, i + 1, lineNo, true);
  const value = field(line, i, lineNo, 'a value after the metric');
  i = value.end;
  let tsUs: number | undefined;
  if (i < line.length && !line.startsWith(' # {', i)) {
    const ts = field(line, i, lineNo, 'a timestamp');
    tsUs = secondsToUs(ts.text, lineNo, 'timestamp');
    i = ts.end;
  }
  if (i < line.length) {
    if (!line.startsWith(' # {', i)) throw bad(lineNo, `unexpected ${shown(line.slice(i))} after the ${tsUs === undefined ? 'value' : 'timestamp'}`);
    if (!name.endsWith('_total') && !name.endsWith('_bucket')) throw bad(lineNo, `metric name ${name} does not support exemplars (only _total and _bucket)`);
    checkExemplar(line, i + ' # {'.length, lineNo);
  }
  return { name, labels, value: sampleValue(value.text, lineNo), tsUs };
}

/** ` {...} value [timestamp]` from just after the exemplar's `{`, to the end of the line. */
function checkExemplar(line: string, from: number, lineNo: number): void {
  const [, afterLabels] = strictLabels(line, from, lineNo, false);
  const value = field(line, afterLabels, lineNo, 'the exemplar\'s value');
  if (parseFloatText(value.text) === undefined) throw bad(lineNo, `${shown(value.text)} is not an exemplar value`);
  if (value.end === line.length) return;
  const ts = field(line, value.end, lineNo, 'the exemplar\'s timestamp');
  secondsToUs(ts.text, lineNo, 'exemplar timestamp');
  if (ts.end !== line.length) throw bad(lineNo, `unexpected ${shown(line.slice(ts.end))} after the exemplar's timestamp`);
}

/** One space, then a token up to the next space or the end of the line. */
function field(line: string, at: number, lineNo: number, what: string): { text: string; end: number } {
  if (line[at] !== ' ') throw bad(lineNo, `expected one space and ${what} at column ${at + 1}`);
  let end = line.indexOf(' ', at + 1);
  if (end < 0) end = line.length;
  if (end === at + 1) throw bad(lineNo, `expected ${what} at column ${at + 2}`);
  return { text: line.slice(at + 1, end), end };
}

/**
 * `name="value",...}` from just after `{`, without a space anywhere and without a comma
 * before `}`. A series' labels must be unique; an exemplar's need not be (Prometheus keeps
 * the last). Returns the labels and the index after `}`.
 */
function strictLabels(line: string, from: number, lineNo: number, series: boolean): [Array<[string, string]>, number] {
  const labels: Array<[string, string]> = [];
  let i = from;
  if (line[i] === '}') return [labels, i + 1];
  for (;;) {
    const m = LABEL_NAME.exec(line.slice(i, i + 1024));
    if (!m) throw bad(lineNo, `expected a label name at column ${i + 1}`);
    i += m[0].length;
    if (line[i] !== '=') throw bad(lineNo, `expected "=" right after label ${m[0]}`);
    if (line[i + 1] !== '"') throw bad(lineNo, `expected a quoted value right after ${m[0]}=`);
    const [value, next] = parseQuoted(line, i + 2, lineNo);
    if (series) addLabel(labels, m[0], value, lineNo);
    i = next;
    if (line[i] === '}') return [labels, i + 1];
    if (line[i] !== ',') throw bad(lineNo, `expected "," or "}" after label ${m[0]}`);
    i++;
  }
}

/** Beyond this many digits of µs a time is past any archive's (TS_MAX_US has 16). */
const US_DIGITS_MAX = 22;
const SECONDS = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * A time in seconds, written as a float, in whole µs (rounded down): from its decimal digits,
 * so `1700000000.123456` is 1700000000123456 µs exactly, where a double times 1e6 is not.
 * NaN and the infinities are refused (Prometheus: invalid timestamp); a time past what any
 * archive holds comes back as +-Infinity, never wrapped.
 */
export function secondsToUs(s: string, lineNo: number, what: string): number {
  const v = parseFloatText(s);
  if (v === undefined || !Number.isFinite(v)) throw bad(lineNo, `${shown(s)} is not a ${what} (seconds)`);
  const m = SECONDS.exec(s) as RegExpExecArray;
  const negative = m[1] === '-';
  const frac = m[3] ?? '';
  const digits = `${m[2] ?? ''}${frac}`.replace(/^0+/, '');
  if (digits === '') return 0;
  const exp10 = Number(m[4] ?? '0') - frac.length + 6;
  if (digits.length + exp10 > US_DIGITS_MAX) return negative ? -Infinity : Infinity;
  let us: bigint;
  let cut = false;
  if (exp10 >= 0) us = BigInt(digits) * 10n ** BigInt(exp10);
  else if (-exp10 >= digits.length) [us, cut] = [0n, true];
  else {
    const kept = digits.slice(0, digits.length + exp10);
    us = BigInt(kept);
    cut = /[1-9]/.test(digits.slice(kept.length));
  }
  if (!negative) return Number(us);
  return us === 0n && !cut ? 0 : -Number(us) - (cut ? 1 : 0);
}
