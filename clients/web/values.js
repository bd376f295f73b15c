// Values as they travel in JSON frames: the one JSON form of protocol/value-json.ts
// (docs/values.md): plain JSON, except tags for bytes, bigints, NaN, ±Infinity and -0
// ({"$bytes": base64}, {"$bigint": "..."}, {"$num": "..."}) and {"$obj": {...}} around a user
// object whose one key starts with "$". The page keeps the wire form and revives it with the
// server's own codec only to show or chart. Globs are matched by the server's own matcher.
// Both come from ./vendor/protocol.js, the bundle scripts/build-web.mjs makes of protocol/.
import { compileSpec, valueFromJson, valueToDisplayText, visibleText } from './vendor/protocol.js';

/** The wire value as a JS value (Uint8Array, BigInt, NaN, ±Infinity, -0); a malformed tag stays as sent. */
export function reviveValue(v) {
  if (v === null || typeof v !== 'object') return v;
  try {
    return valueFromJson(v, 'value');
  } catch {
    return v;
  }
}

/** A number for a chart: numbers as they are (NaN and infinities become gaps), else null. */
export function chartNumber(v) {
  const x = reviveValue(v);
  if (typeof x === 'number') return Number.isFinite(x) ? x : null;
  if (typeof x === 'bigint') return Number(x);
  return null;
}

/** True when a wire value can be drawn as a time series. */
export function isNumeric(v) {
  const x = reviveValue(v);
  return typeof x === 'number' || typeof x === 'bigint';
}

const TEXT_MAX = 160;

/** At most TEXT_MAX code units of `s`, never half a surrogate pair, then "…" when cut. */
function cut(s) {
  if (s.length <= TEXT_MAX) return s;
  const end = /[\ud800-\udbff]/.test(s[TEXT_MAX - 1]) && /[\udc00-\udfff]/.test(s[TEXT_MAX]) ? TEXT_MAX - 1 : TEXT_MAX;
  return s.slice(0, end) + '…';
}

/** The page's own notations (no value, bytes): a string reading the same is shown as JSON text. */
const NOTATION = /^(?:—|<\d+ bytes>)$/;

/**
 * The text a table cell shows for a wire value: the server's display rule
 * (protocol/value-json.ts valueToDisplayText: a string as itself only when nothing else reads
 * the same and every character shows as itself, else JSON text with controls, bidi
 * overrides and lone surrogates as escapes), bigints as their digits, bytes as their count.
 */
export function formatValue(v) {
  if (v === null || v === undefined) return '—';
  const x = reviveValue(v);
  if (typeof x === 'bigint' || typeof x === 'boolean') return String(x);
  if (x instanceof Uint8Array) return `<${x.length} bytes>`;
  if (x === v && typeof v === 'object') return cut(JSON.stringify(v)); // a malformed tag (reviveValue kept it): as sent
  const text = valueToDisplayText(x);
  return cut(typeof x === 'string' && text === x && NOTATION.test(x) ? JSON.stringify(x) : text);
}

/**
 * A path name (or part of one) as the page shows it: controls, bidi overrides and isolates as
 * `\\uXXXX` escapes (a recorded name may hold them; drawn, they would hide or reverse it).
 * Attributes that carry the path for code (data-path) keep it as it is.
 */
export function shownPath(p) {
  return visibleText(p);
}

/** The glob a filter box's (trimmed) text stands for, or null for a substring search. */
export function filterGlob(t) {
  if (t.includes('*')) return t;
  // A path without wildcards selects itself and everything under it.
  return t.startsWith('/') ? t.replace(/\/?$/, '/**') : null;
}

/** Why a filter box's text is not a valid glob (the server's TPD_BAD_GLOB message), or null. */
export function filterProblem(text) {
  const glob = filterGlob(text.trim());
  if (glob === null) return null;
  try {
    compileSpec([glob]);
    return null;
  } catch (err) {
    return err.message;
  }
}

/**
 * A filter box's text as a predicate: a glob (the server's rules) when it has `*` or starts
 * with "/", else a case-insensitive substring. A malformed glob matches nothing
 * (filterProblem says why).
 */
export function pathFilter(text) {
  const t = text.trim();
  if (t === '') return () => true;
  const glob = filterGlob(t);
  if (glob === null) {
    const low = t.toLowerCase();
    return (p) => p.toLowerCase().includes(low);
  }
  try {
    return compileSpec([glob]);
  } catch {
    return () => false;
  }
}
