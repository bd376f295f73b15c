/**
 * A batch's updates with each path once. Writers before the sources refused it (and the
 * storage API still takes it) could record a batch listing a path twice (docs/format.md: "a
 * path may be listed many times in a batch"). Replay and the state apply a batch's updates in
 * order, so the path's value is its last update. A /history NDJSON line, an object keyed by
 * path, writes that one, or it answers the same key twice, which JSON parsers read
 * differently (the last in JavaScript, the first in others). CSV and Parquet rows, like
 * playback's batches, are every update in order: a row log is not ambiguous.
 */
import type { Batch, Update } from '../protocol/value.js';

/**
 * `b` with each path once: its last update's value, at its first update's place (as
 * JavaScript's Map and JSON.parse keep a key set twice). `b` itself when no path repeats.
 * `seen` is scratch the caller keeps across batches.
 */
export function lastUpdatePerPath(b: Batch, seen: Map<string, number>): Batch {
  if (b.updates.length < 2) return b;
  seen.clear();
  let repeated = false;
  for (let i = 0; i < b.updates.length && !repeated; i++) {
    const p = (b.updates[i] as Update)[0];
    if (seen.has(p)) repeated = true;
    else seen.set(p, i);
  }
  if (!repeated) return b;
  seen.clear();
  const updates: Update[] = [];
  for (const u of b.updates) {
    const at = seen.get(u[0]);
    if (at === undefined) {
      seen.set(u[0], updates.length);
      updates.push(u);
    } else {
      updates[at] = u;
    }
  }
  return { ts: b.ts, updates };
}
