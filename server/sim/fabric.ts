/**
 * The fabric model behind the simulator, demo and benchmarks: switches x 8 metrics as in
 * seed 001's CSV matrix, one full matrix per poll. Pure and deterministic for a seed.
 */
import type { Batch, Update } from '../../protocol/value.js';

/** mulberry32: a small seeded PRNG (deterministic models, tests, benchmarks). */
export function rng(seed: number): () => number {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FABRIC_METRICS = [
  'bandwidth_gbps', 'latency_us', 'packet_errors', 'cpu_util_pct',
  'mem_util_pct', 'buffer_occupancy_pct', 'egress_drops_per_s', 'temperature_c',
] as const;

/**
 * The fabric workload: `switches` x 8 metrics, one batch per second, every value present in
 * every batch (a full CSV matrix per poll). Gauges random-walk with 0.1 resolution and rare
 * spikes; error and drop counts are small non-negative integers.
 */
export function* fabricBatches(seed: number, switches: number, seconds: number, startTs = 1_763_000_000_000_000): Generator<Batch> {
  const r = rng(seed);
  const paths: string[] = [];
  const state: number[] = [];
  const base = [120, 10, 0, 35, 60, 30, 0, 47];
  for (let s = 0; s < switches; s++) {
    for (let m = 0; m < FABRIC_METRICS.length; m++) {
      paths.push(`/fabric/sw-${String(s).padStart(3, '0')}/${FABRIC_METRICS[m]}`);
      state.push((base[m] as number) * (0.8 + 0.4 * r()));
    }
  }
  const step = [1.5, 0.3, 0, 1.2, 0.4, 1.5, 0, 0.2];
  for (let t = 0; t < seconds; t++) {
    // Poll jitter of a few milliseconds around one second.
    const ts = startTs + t * 1_000_000 + Math.floor(r() * 5000);
    const updates: Update[] = new Array(paths.length);
    for (let i = 0; i < paths.length; i++) {
      const m = i % 8;
      let v: number;
      if (m === 2 || m === 6) {
        v = r() < 0.9 ? 0 : Math.floor(r() * (m === 2 ? 3 : 40));
      } else {
        let x = (state[i] as number) + ((r() - 0.5) * 2 * (step[m] as number));
        if (r() < 0.002) x *= 1.5; // rare spike
        const lo = m === 7 ? 30 : 0;
        const hi = m === 0 ? 400 : m === 7 ? 90 : 100;
        x = Math.min(hi, Math.max(lo, x));
        state[i] = x;
        v = Math.round(x * 10) / 10;
      }
      updates[i] = [paths[i] as string, v];
    }
    yield { ts, updates };
  }
}
