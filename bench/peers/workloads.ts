/**
 * The two workloads of the "Performance" issue, from the generators the other benchmarks
 * use (not copies): fabric from server/sim/fabric.ts via test/helpers/workload.ts, mixed from
 * test/bench/archives.ts floatPool.
 */
import type { Update } from '../../protocol/value.js';
import { fabricBatches, rng } from '../../test/helpers/workload.js';
import { floatPool } from '../../test/bench/archives.js';
import type { PoolBatch, Workload } from './workload-file.js';

const START_US = 1_763_000_000_000_000;

/** 64 switches x 8 counters, one full matrix per simulated second (every batch distinct). */
export function fabricWorkload(hours: number): Workload {
  const seconds = Math.round(hours * 3600);
  const pool: PoolBatch[] = [];
  const ts = new Float64Array(seconds);
  let paths: string[] = [];
  let ids = new Uint32Array(0);
  for (const b of fabricBatches(1, 64, seconds, START_US)) {
    if (pool.length === 0) {
      paths = b.updates.map(([p]) => p);
      ids = Uint32Array.from(paths, (_, i) => i);
    }
    ts[pool.length] = b.ts;
    pool.push({ ids, values: Float64Array.from(b.updates, ([, v]) => v as number) });
  }
  return { name: 'fabric', paths, pool, ts };
}

/** 100 decimal values per batch over 10 000 paths, one batch per millisecond. */
export function mixedWorkload(updates: number): Workload {
  const pairs = floatPool(100, true);
  const idOf = new Map<string, number>();
  const paths: string[] = [];
  const column = (ups: Update[]): PoolBatch => {
    const ids = new Uint32Array(ups.length);
    const values = new Float64Array(ups.length);
    ups.forEach(([p, v], k) => {
      let id = idOf.get(p);
      if (id === undefined) idOf.set(p, (id = paths.push(p) - 1));
      ids[k] = id;
      values[k] = v as number;
    });
    return { ids, values };
  };
  const pool = pairs.map(column);
  const ts = Float64Array.from({ length: Math.ceil(updates / 100) }, (_, i) => START_US + (i + 1) * 1000);
  return { name: 'mixed', paths, pool, ts };
}

/** `count` seek instants spread uniformly over the workload's time range, from `seed`. */
export function seekInstants(w: Workload, count: number, seed: number): number[] {
  const r = rng(seed);
  const first = w.ts[0] as number;
  const last = w.ts[w.ts.length - 1] as number;
  return Array.from({ length: count }, () => Math.floor(first + r() * (last - first)));
}
