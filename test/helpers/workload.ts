/**
 * Deterministic workloads for tests and benchmarks: a seeded PRNG, random values of every
 * type the archive carries, and the fabric workload (switches x metrics drifting like
 * seed 001's simulator).
 */
import type { Batch, Update, Value } from '../../protocol/value.js';
import type { FlatBatches } from '../../storage/codec/payload.js';

export { rng } from '../../server/sim/fabric.js';
import { rng } from '../../server/sim/fabric.js';

export function randomValue(r: () => number, depth = 0): Value {
  const k = Math.floor(r() * (depth > 1 ? 8 : 10));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor((r() - 0.5) * 2 ** 40);
    case 3: return Math.round(r() * 10000) / 10;
    case 4: return (r() - 0.5) * 1e6;
    case 5: return 'v' + Math.floor(r() * 1e6).toString(36);
    case 6: return Uint8Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 256));
    // -0 is kept at any depth (the msgpack value codec writes it as a float64).
    case 7: return [-0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300][Math.floor(r() * 6)] as number;
    case 8: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: { [k: string]: Value } = {};
      const n = Math.floor(r() * 4);
      for (let i = 0; i < n; i++) o['k' + i] = randomValue(r, depth + 1);
      return o;
    }
  }
}

export function randomBatches(seed: number, count: number, opts: { paths?: number; maxUpdates?: number; startTs?: number } = {}): Batch[] {
  const r = rng(seed);
  const nPaths = opts.paths ?? 50;
  const maxUpdates = opts.maxUpdates ?? 20;
  const paths = Array.from({ length: nPaths }, (_, i) => `/w${seed % 7}/dev-${i % 9}/m${i}`);
  let ts = opts.startTs ?? 1_700_000_000_000_000;
  const out: Batch[] = [];
  for (let b = 0; b < count; b++) {
    ts += 1 + Math.floor(r() * 2_000_000);
    const n = 1 + Math.floor(r() * maxUpdates);
    const updates: Update[] = [];
    for (let i = 0; i < n; i++) {
      // Skewed choice: low-numbered paths update often, high-numbered rarely.
      const p = paths[Math.floor(r() * r() * nPaths)] as string;
      const v = r() < 0.6 ? Math.round(r() * 1000) / 10 : randomValue(r);
      updates.push([p, v]);
    }
    out.push({ ts, updates });
  }
  return out;
}

export { FABRIC_METRICS, fabricBatches } from '../../server/sim/fabric.js';

/** Batches in the codec's flat form (storage/codec/payload.ts FlatBatches), path ids by first appearance; `names` are the paths by id. */
export function flattenBatches(batches: Batch[]): { flat: FlatBatches & { ts: number[]; counts: number[]; ids: number[]; values: Value[] }; names: string[] } {
  const ids: number[] = [];
  const values: Value[] = [];
  const dict = new Map<string, number>();
  for (const b of batches) for (const [p, v] of b.updates) {
    let id = dict.get(p);
    if (id === undefined) dict.set(p, (id = dict.size));
    ids.push(id);
    values.push(v);
  }
  return {
    flat: { ts: batches.map((b) => b.ts), counts: batches.map((b) => b.updates.length), ids, values, batchCount: batches.length, updateCount: ids.length },
    names: [...dict.keys()],
  };
}
