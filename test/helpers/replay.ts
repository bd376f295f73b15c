import type { Batch, Value } from '../../protocol/value.js';
import type { Cursor } from '../../storage/cursor.js';
import { Archive } from '../../storage/archive.js';
import { compileSpec } from '../../protocol/glob.js';

/** State after every batch with ts <= t, computed the slow obvious way. */
export function naiveState(batches: readonly Batch[], t: number | null, filter?: string[]): Map<string, Value> {
  const m = compileSpec(filter);
  const out = new Map<string, Value>();
  if (t === null) return out;
  for (const b of batches) {
    if (b.ts > t) break;
    for (const [p, v] of b.updates) if (m(p)) out.set(p, v);
  }
  return out;
}

export async function readAll(c: Cursor): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let b = await c.next(); b; b = await c.next()) out.push(b);
  return out;
}

export function sorted(m: Map<string, Value>): Array<[string, Value]> {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Deep copy with Buffers turned into plain Uint8Arrays (msgpackr decodes bin as Buffer). */
export function plain<T>(v: T): T {
  if (Buffer.isBuffer(v)) return new Uint8Array(v) as T;
  if (Array.isArray(v)) return v.map(plain) as T;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, plain(x)])) as T;
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) as T;
  }
  return v;
}

/** Every committed batch of the archive in `dir`, opened read-only. */
export async function readArchive(dir: string): Promise<Batch[]> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    return await readAll(a.cursor());
  } finally {
    await a.close();
  }
}
