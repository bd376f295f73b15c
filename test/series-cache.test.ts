/** The series cache (storage/series-cache.ts): least recently used go first, within its byte budget. */
import { describe, expect, it } from 'vitest';
import { runBytes, SeriesCache, type ChunkRun } from '../storage/series-cache.js';
import { rng } from './helpers/workload.js';

const run = (n: number): ChunkRun => ({ run: { n, ts: new Float64Array(n), num: new Float64Array(n), values: undefined }, blocks: 1 });

describe('series cache', () => {
  it('evicts the least recently used (a get refreshes an entry) and stays within its bytes', () => {
    const one = runBytes(run(10));
    const c = new SeriesCache(one * 3);
    c.put('a', run(10));
    c.put('b', run(10));
    c.put('c', run(10));
    expect(c.get('a')).toBeDefined(); // a is now the most recent
    c.put('d', run(10)); // b goes
    expect(c.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => c.get(k) !== undefined)).toEqual([true, true, true]);
    c.put('c', run(10)); // replaced, not counted twice
    expect(c.sizeBytes).toBe(one * 3);
    expect(c.entries).toBe(3);
    c.put('huge', run(1_000_000)); // larger than the whole budget: not kept
    expect(c.get('huge')).toBeUndefined();
    expect(c.entries).toBe(3);
  });

  it('keeps exactly the most recent entries that fit, over a long random workload (as a reference LRU)', () => {
    const rand = rng(5);
    const c = new SeriesCache(50_000);
    const ref: Array<{ key: string; bytes: number }> = [];
    const touch = (key: string): void => {
      const i = ref.findIndex((e) => e.key === key);
      if (i >= 0) ref.push(...ref.splice(i, 1));
    };
    for (let i = 0; i < 20_000; i++) {
      const key = `k${Math.floor(rand() * 300)}`;
      if (rand() < 0.5) {
        const hit = c.get(key);
        expect(hit !== undefined, `get ${key} at ${i}`).toBe(ref.some((e) => e.key === key));
        touch(key);
      } else {
        const r = run(1 + Math.floor(rand() * 300));
        c.put(key, r);
        const j = ref.findIndex((e) => e.key === key);
        if (j >= 0) ref.splice(j, 1);
        ref.push({ key, bytes: runBytes(r) });
        let total = ref.reduce((n, e) => n + e.bytes, 0);
        while (total > 50_000) total -= (ref.shift() as { bytes: number }).bytes;
        expect(c.sizeBytes).toBe(total);
      }
      expect(c.entries).toBe(ref.length);
    }
  });
});
