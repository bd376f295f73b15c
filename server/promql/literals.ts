/**
 * PromQL literals: numbers (Prometheus 2.42's forms: decimal, hex, octal, Inf, NaN), durations
 * (`1h30m`, units ms s m h d w y in that order) and strings ("...", '...' with Go escapes,
 * `...` raw). Pure.
 */
import { badData } from './errors.js';

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };
/** What Prometheus' lexer reads as a duration token: digits and units, in any order. */
const DURATION_TOKEN = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;
/** What model.ParseDuration takes: each unit at most once, from years down to milliseconds. */
const DURATION = /^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$/;
const DURATION_PART = /(\d+)(ms|s|m|h|d|w|y)/g;
/**
 * A decimal float (`1`, `-.5`, `2e3`): what Go's ParseFloat reads besides hex, Inf and NaN.
 * Unambiguous (the fraction's digits only after its dot), so a refusal costs linear time:
 * `\d+\.?\d*` tried every split of a long run of digits (quadratic: a 256 KB form value
 * of digits and one letter held the event loop for minutes).
 */
export const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** The largest int64, which ParseInt reads a literal into before ParseFloat is tried. */
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A Prometheus duration in milliseconds (model.ParseDuration: units in order, each once; or
 * seconds as the API's parameters take them); `anyOrder`: units in any order, repeated too
 * (`1y1y`), as Tapedeck reads lookback_delta, which Prometheus 2.42 does not read. Throws
 * bad_data.
 */
export function parseDurationMs(text: string, anyOrder = false): number {
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000); // seconds, as Prometheus takes them
  if (text === '' || !(anyOrder ? DURATION_TOKEN : DURATION).test(text)) throw badData(`not a valid duration string: ${JSON.stringify(text.slice(0, 40))}`);
  let ms = 0;
  for (const m of text.matchAll(DURATION_PART)) ms += Number(m[1]) * (DURATION_UNITS_MS[m[2] as string] as number);
  if (!Number.isSafeInteger(ms)) throw badData(`duration out of range: ${JSON.stringify(text.slice(0, 40))}`);
  return ms;
}

/** A duration written in a query (a range, an offset) in milliseconds: units required, as Prometheus 2.42's lexer requires them (`x[300]` is refused). */
export function parseQueryDurationMs(text: string): number {
  if (DECIMAL.test(text)) throw badData(`missing unit character in duration: ${JSON.stringify(text.slice(0, 40))}`);
  return parseDurationMs(text);
}

/**
 * A number literal as Prometheus 2.42's parser reads it (parser.number: Go's ParseInt with
 * base 0, then ParseFloat), signed (the grammar takes a leading sign into the literal):
 * decimal, hex up to the largest int64 (a larger one is refused, as ParseFloat refuses hex
 * without an exponent), a leading 0 octal (`010` is 8; `08` decimal), Inf and NaN in any
 * case. A decimal past the largest double, a duration (`5m`) and digits with `_` are refused.
 */
export function parseNumber(text: string): number {
  const sign = text.startsWith('-') ? -1 : 1;
  const t = text.replace(/^[+-]/, '');
  if (/^inf$/i.test(t)) return sign * Infinity;
  if (/^nan$/i.test(t)) return NaN;
  if (/^0x[0-9a-f]+$/i.test(t)) {
    const n = BigInt(`0x${t.slice(2)}`);
    if (n > INT64_MAX) throw badData(`error parsing number: strconv.ParseFloat: parsing ${JSON.stringify(t.slice(0, 40))}: invalid syntax`);
    return sign * Number(n);
  }
  if (/^0[0-7]+$/.test(t)) {
    const n = BigInt(`0o${t.slice(1)}`);
    // Past int64 ParseFloat reads the digits as a decimal.
    return sign * (n > INT64_MAX ? Number(t) : Number(n));
  }
  if (DECIMAL.test(t)) {
    const v = Number(t);
    if (!Number.isFinite(v)) throw badData(`error parsing number: strconv.ParseFloat: parsing ${JSON.stringify(t.slice(0, 40))}: value out of range`);
    return sign * v;
  }
  if (DURATION_TOKEN.test(t)) throw badData(`unexpected duration ${JSON.stringify(t.slice(0, 40))}`);
  throw badData(`bad number or duration syntax: ${JSON.stringify(text.slice(0, 40))}`);
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const isWordChar = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 58;

/**
 * Number spellings Prometheus' lexer reads (lex.go scanNumber) that the upstream grammar
 * does not: a point without digits after it (`5.`, `1.e3`) and an upper-case hex prefix
 * (`0X1F`), rewritten to `5.0`, `1.0e3` and `0x1F` outside string literals and comments, so
 * the grammar reads the number Prometheus reads. Anything else is left as it is; a text
 * without either spelling is returned at once.
 */
export function normalizeNumbers(text: string): string {
  if (!/\d\.(?!\d)|0X/.test(text)) return text;
  const at = (k: number): number => (k < text.length ? text.charCodeAt(k) : -1);
  let out = '';
  let done = 0;
  let i = 0;
  while (i < text.length) {
    const c = at(i);
    let j = i + 1;
    if (c === 34 || c === 39 || c === 96) {
      // A quoted string ends at its quote or a line's end, a raw one only at its backquote.
      while (j < text.length && at(j) !== c && (c === 96 || at(j) !== 10)) j += c !== 96 && at(j) === 92 ? 2 : 1;
      i = j + 1;
      continue;
    }
    if (c === 35) {
      while (j < text.length && at(j) !== 10) j++;
      i = j;
      continue;
    }
    if (!isDigit(c) && !(c === 46 && isDigit(at(i + 1)))) {
      if (isWordChar(c)) while (isWordChar(at(j))) j++;
      i = j;
      continue;
    }
    // A number: Go's scanNumber.
    let fix = '';
    if (c === 48 && (at(i + 1) === 120 || at(i + 1) === 88)) {
      j = i + 2;
      while (isHexDigit(at(j))) j++;
      if (at(i + 1) === 88) fix = `0x${text.slice(i + 2, j)}`;
    } else {
      j = i;
      while (isDigit(at(j))) j++;
      let pointAt = -1;
      if (at(j) === 46) {
        j++;
        if (j - 1 > i && !isDigit(at(j))) pointAt = j;
        while (isDigit(at(j))) j++;
      }
      if (at(j) === 101 || at(j) === 69) {
        j++;
        if (at(j) === 43 || at(j) === 45) j++;
        while (isDigit(at(j))) j++;
      }
      if (pointAt >= 0) fix = `${text.slice(i, pointAt)}0${text.slice(pointAt, j)}`;
    }
    // Followed by a letter or digit it is no number (a duration, or an error): kept whole.
    if (isWordChar(at(j))) {
      while (isWordChar(at(j))) j++;
    } else if (fix !== '') {
      out += text.slice(done, i) + fix;
      done = j;
    }
    i = j;
  }
  return out + text.slice(done);
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };

/** The value of a string literal (Go's strconv.Unquote rules). */
export function unquoteString(text: string): string {
  const q = text[0];
  if (text.length < 2 || text[text.length - 1] !== q) throw badData(`unterminated string ${JSON.stringify(text.slice(0, 40))}`);
  const body = text.slice(1, -1);
  if (q === '`') return body;
  if (q !== '"' && q !== "'") throw badData(`not a string: ${JSON.stringify(text.slice(0, 40))}`);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[i + 1] ?? '';
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      i += 1;
      continue;
    }
    const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = body.slice(i + 2, i + 2 + hexLen);
      if (hex.length !== hexLen || !/^[0-9a-fA-F]+$/.test(hex)) throw badData(`invalid escape in string ${JSON.stringify(text.slice(0, 40))}`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw badData(`invalid code point in string ${JSON.stringify(text.slice(0, 40))}`);
      out += String.fromCodePoint(cp);
      i += 1 + hexLen;
      continue;
    }
    if (/^[0-7]{3}$/.test(body.slice(i + 1, i + 4))) {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 4), 8));
      i += 3;
      continue;
    }
    throw badData(`unknown escape sequence in string ${JSON.stringify(text.slice(0, 40))}`);
  }
  return out;
}
