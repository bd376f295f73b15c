/**
 * PromQL literals: numbers (Go's ParseFloat forms: decimal, hex, Inf, NaN), durations
 * (`1h30m`, units ms s m h d w y) and strings ("...", '...' with Go escapes, `...` raw). Pure.
 */
import { badData } from './errors.js';

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;
const DURATION_PART = /(\d+)(ms|s|m|h|d|w|y)/g;
/**
 * A decimal float (`1`, `-.5`, `2e3`): what Go's ParseFloat reads besides hex, Inf and NaN.
 * Unambiguous (the fraction's digits only after its dot), so a refusal costs linear time:
 * `\d+\.?\d*` tried every split of a long run of digits (quadratic: a 256 KB form value
 * of digits and one letter held the event loop for minutes).
 */
export const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A Prometheus duration in milliseconds; throws bad_data. */
export function parseDurationMs(text: string): number {
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000); // seconds, as Prometheus takes them
  if (!DURATION.test(text)) throw badData(`not a valid duration string: ${JSON.stringify(text.slice(0, 40))}`);
  let ms = 0;
  for (const m of text.matchAll(DURATION_PART)) ms += Number(m[1]) * (DURATION_UNITS_MS[m[2] as string] as number);
  if (!Number.isSafeInteger(ms)) throw badData(`duration out of range: ${JSON.stringify(text.slice(0, 40))}`);
  return ms;
}

/** A number literal as Go's strconv.ParseFloat (and PromQL) reads it; a duration reads as seconds. */
export function parseNumber(text: string): number {
  const t = text.replace(/_/g, '');
  if (DECIMAL.test(t)) return Number(t);
  if (/^[+-]?0x[0-9a-f]+$/i.test(t)) return (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^[+-]?0x/i, ''), 16);
  if (/^[+-]?inf(?:inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(t)) return NaN;
  if (DURATION.test(t)) return parseDurationMs(t) / 1000;
  throw badData(`bad number or duration syntax: ${JSON.stringify(text.slice(0, 40))}`);
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
