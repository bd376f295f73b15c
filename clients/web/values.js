// Values as they travel in JSON frames: plain JSON, except bytes, bigints and non-finite
// numbers (and -0), which come as {"$bytes": base64}, {"$bigint": "..."}, {"$num": "..."}
// (docs/playback.md). The page keeps the wire form and revives only to show or chart.

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

/** Glob over paths, as the server's: `**` any run, `*` within one segment, `?` one character. */
export function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') { re += '.*'; i++; } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A filter box's text as a predicate: a glob when it has glob characters or starts with "/", else a substring. */
export function pathFilter(text) {
  const t = text.trim();
  if (t === '') return () => true;
  if (/[*?]/.test(t) || t.startsWith('/')) {
    const re = globToRegExp(t.includes('*') || t.includes('?') ? t : t.replace(/\/?$/, '/**'));
    const exact = t;
    return (p) => p === exact || re.test(p);
  }
  const low = t.toLowerCase();
  return (p) => p.toLowerCase().includes(low);
}
