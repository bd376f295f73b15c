import type { Batch } from '../../protocol/value.js';

/**
 * 1 000 batches of 200 paths (`/s/p0` ...) holding strings that do not compress, one
 * millisecond apart from `t0`: about 15 MB in every history format, more than the kernels'
 * buffers take on loopback (for tests of clients that stop reading).
 */
export function noiseBatches(t0: number): Batch[] {
  let x = 1;
  const noise = (): string => {
    let out = '';
    for (let i = 0; i < 6; i++) out += ((x = (x * 48271) % 2147483647) >>> 0).toString(36);
    return out;
  };
  const batches: Batch[] = [];
  for (let b = 0; b < 1000; b++) batches.push({ ts: t0 + b * 1000, updates: Array.from({ length: 200 }, (_, p) => [`/s/p${p}`, noise()] as [string, string]) });
  return batches;
}
