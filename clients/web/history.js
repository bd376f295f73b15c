// The recorded history of some paths in [fromUs, toUs), for the charts after a seek, when a
// path joins a panel, or when the time window is moved before what is loaded:
// GET /api/v1/history (NDJSON, one batch a line), as exact µs and wire values per path.
// Null when the server cannot be reached (the connection status says why); an error answer
// is thrown with the server's code and message (the charts show it).
//
// The route selects by glob, and a path is not a glob: a recorded name may hold the reserved
// `?[]{}` (TPD_BAD_GLOB), `**` inside a segment, more segments or bytes than a glob may have,
// or `*`. Each path is asked for by pathGlob (a valid glob that selects it, perhaps with
// others), and the answer is kept for the exact paths asked; the globs are sent in requests
// of at most HISTORY_QUERY_CHARS_MAX characters, so no selection makes a URL the server
// refuses, and one hostile name cannot make the others' history fail.
import { apiFetch } from './http.js';
import { PROTOCOL_LIMITS, parseGlob } from './vendor/protocol.js';

/** Longest query string of one history request (Node refuses request heads past 16 KiB). */
export const HISTORY_QUERY_CHARS_MAX = 8 * 1024;
const RESERVED = /[[\]?{}]/g;
const utf8 = new globalThis.TextEncoder();

/** The longest prefix of `s` (whole code points) of at most `bytes` UTF-8 bytes. */
function prefixOfBytes(s, bytes) {
  let used = 0;
  let end = 0;
  for (const ch of s) {
    used += utf8.encode(ch).length;
    if (used > bytes) break;
    end += ch.length;
  }
  return s.slice(0, end);
}

/**
 * A glob, valid under the server's rules (globBytesMax, globSegmentsMax, reserved
 * characters, `**` a whole segment), that selects `path`: reserved characters and runs of
 * `*` become one `*`, and a path past the limits is cut to a prefix followed by `/**`.
 */
export function pathGlob(path) {
  const budget = PROTOCOL_LIMITS.globBytesMax - '/**'.length;
  const segs = path.split('/').slice(1).map((s) => s.replace(RESERVED, '*').replace(/\*+/g, '*'));
  let glob = '';
  let used = 0;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    const bytes = 1 + utf8.encode(seg).length;
    const last = i === segs.length - 1;
    if (i + 1 >= PROTOCOL_LIMITS.globSegmentsMax && !last) return `${glob}/**`;
    if (used + bytes > (last ? PROTOCOL_LIMITS.globBytesMax : budget)) {
      if (i + 2 > PROTOCOL_LIMITS.globSegmentsMax || budget - used < 2) return `${glob}/**`;
      const head = prefixOfBytes(seg, budget - used - 2).replace(/\*$/, '');
      return `${glob}/${head}*/**`;
    }
    glob += `/${seg}`;
    used += bytes;
  }
  return glob || '/';
}

/** The globs of `paths`, each once, split into query strings of at most HISTORY_QUERY_CHARS_MAX characters. */
export function historyQueries(paths, fromUs, toUs) {
  const head = new URLSearchParams({ from: String(Math.max(0, fromUs)), to: String(toUs), format: 'ndjson' }).toString();
  const out = [];
  let q = head;
  let n = 0;
  for (const g of new Set(paths.map(pathGlob))) {
    parseGlob(g); // throws on a programmer error: pathGlob made a glob the server refuses
    const part = `&${new URLSearchParams({ glob: g })}`;
    if (n > 0 && (q.length + part.length > HISTORY_QUERY_CHARS_MAX || n === PROTOCOL_LIMITS.globsPerSpecMax)) {
      out.push(q);
      q = head;
      n = 0;
    }
    q += part;
    n++;
  }
  if (n > 0) out.push(q);
  return out;
}

export async function loadHistory(base, paths, fromUs, toUs) {
  const ts = toUs;
  const texts = await Promise.all(historyQueries(paths, fromUs, ts).map(async (q) => {
    const res = await apiFetch(`${base}/api/v1/history?${q}`).catch(() => null);
    if (res === null) return null;
    if (!res.ok) {
      const e = (await res.json().catch(() => null))?.error;
      throw Object.assign(new Error(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`), { code: e?.code ?? `HTTP_${res.status}` });
    }
    return res.text().catch(() => null);
  }));
  if (texts.includes(null)) return null;
  // Per path, its updates in time order (the requests' answers are each in time order).
  const got = new Map(paths.map((p) => [p, { tsUs: [], wire: [] }]));
  const seen = new Map(paths.map((p) => [p, -Infinity]));
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const b = JSON.parse(line);
      // A merged answer may end with a `partial` or `error` record (docs/cluster.md): no batch.
      if (typeof b.ts !== 'number' || b.ts >= ts) continue;
      for (const [p, v] of Object.entries(b.updates)) {
        // A glob may select other paths too, and two requests the same path (each answer
        // in time order): keep each asked path's own updates, once.
        const h = got.get(p);
        if (h && b.ts > seen.get(p)) { h.tsUs.push(b.ts); h.wire.push(v); seen.set(p, b.ts); }
      }
    }
  }
  return got;
}
