import type { Batch, Update } from '../../protocol/value.js';
import { rng } from './workload.js';

/** Batch number i of the crash workload: a pure function of i. */
export function crashBatch(i: number): Batch {
  const r = rng(i + 1);
  const n = 1 + Math.floor(r() * 12);
  const updates: Update[] = [];
  for (let j = 0; j < n; j++) {
    const p = Math.floor(r() * 300);
    updates.push([`/crash/dev-${p % 17}/m${p}`, r() < 0.8 ? Math.round(r() * 10000) / 100 : `s${i}-${j}`]);
  }
  return { ts: 1_750_000_000_000_000 + i * 1000, updates };
}
