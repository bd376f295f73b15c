// The recorded history of some paths in [fromUs, toUs), for the charts after a seek, when a
// path joins a panel, or when the time window is moved before what is loaded:
// GET /api/v1/history (NDJSON, one batch a line), as exact µs and wire values per path.
// Null when the server cannot answer (the connection status says why).
import { apiFetch } from './http.js';

export async function loadHistory(base, paths, fromUs, toUs) {
  const ts = toUs;
  const q = new URLSearchParams({ from: String(Math.max(0, fromUs)), to: String(ts), format: 'ndjson' });
  for (const p of paths) q.append('glob', p);
  let text;
  try {
    const res = await apiFetch(`${base}/api/v1/history?${q}`);
    if (!res.ok) return null;
    text = await res.text();
  } catch {
    return null;
  }
  const got = new Map(paths.map((p) => [p, { tsUs: [], wire: [] }]));
  for (const line of text.split('\n')) {
    if (!line) continue;
    const b = JSON.parse(line);
    // A merged answer may end with a `partial` or `error` record (docs/cluster.md): no batch.
    if (typeof b.ts !== 'number' || b.ts >= ts) continue;
    for (const [p, v] of Object.entries(b.updates)) {
      const h = got.get(p);
      if (h) { h.tsUs.push(b.ts); h.wire.push(v); }
    }
  }
  return got;
}
