// Values as they travel in JSON frames: plain JSON, except bytes, bigints and non-finite
// numbers (and -0), which come as {"$bytes": base64}, {"$bigint": "..."}, {"$num": "..."}
// (docs/playback.md). The page keeps the wire form and revives only to show or chart.
// Globs are matched by the server's own matcher (protocol/glob.ts), bundled into
// ./vendor/protocol.js by scripts/build-web.mjs.
import { compileSpec } from './vendor/protocol.js';

function escapeOf(v) {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const keys = Object.keys(v);
  if (keys.length !== 1) return null;
  const k = keys[0];
  return (k === '$bytes' || k === '$bigint' || k === '$num') && typeof v[k] === 'string' ? k : null;
}

/** The wire value as a JS value: Uint8Array, BigInt, non-finite numbers. */
export function reviveValue(v) {
  if (Array.isArray(v)) return v.map(reviveValue);
  if (v && typeof v === 'object') {
    switch (escapeOf(v)) {
      case '$bytes': return Uint8Array.from(atob(v.$bytes), (c) => c.charCodeAt(0));
      case '$bigint': return BigInt(v.$bigint);
      case '$num': return Number(v.$num);
      default: {
        const out = {};
        for (const k of Object.keys(v)) out[k] = reviveValue(v[k]);
        return out;
      }
    }
  }
  return v;
}

/** A number for a chart: numbers as they are (NaN and infinities become gaps), else null. */
export function chartNumber(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (v && typeof v === 'object' && escapeOf(v) === '$num') return null;
  if (v && typeof v === 'object' && escapeOf(v) === '$bigint') return Number(v.$bigint);
  return null;
}

/** True when a wire value can be drawn as a time series. */
export function isNumeric(v) {
  return typeof v === 'number' || (v !== null && typeof v === 'object' && (escapeOf(v) === '$num' || escapeOf(v) === '$bigint'));
}

const TEXT_MAX = 160;

/** The text a table cell shows for a wire value. */
export function formatValue(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v.length > TEXT_MAX ? v.slice(0, TEXT_MAX) + '…' : v;
  if (typeof v === 'boolean') return String(v);
  switch (escapeOf(v)) {
    case '$num': return v.$num;
    case '$bigint': return v.$bigint;
    case '$bytes': return `<${Math.floor((v.$bytes.length * 3) / 4)} bytes>`;
    default: {
      const s = JSON.stringify(v);
      return s.length > TEXT_MAX ? s.slice(0, TEXT_MAX) + '…' : s;
    }
  }
}

/** The glob a filter box's text stands for, or null for a substring search. */
function filterGlob(t) {
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
