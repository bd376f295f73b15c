/**
 * Deterministic workloads for tests and benchmarks: a seeded PRNG, random values of every
 * type the archive carries, and the fabric workload (switches x metrics drifting like
 * seed 001's simulator).
 */
import type { Batch, Update, Value } from '../../protocol/value.js';

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
    // Nested -0 is stored as 0 (msgpackr packs it as an integer; docs/format.md says so).
    case 7: return [depth === 0 ? -0 : 0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300][Math.floor(r() * 6)] as number;
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
