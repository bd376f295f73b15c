/**
 * The forward-moving searches of server/promql/search.ts answer as the binary searches do,
 * whatever order the times come in: forward in small and large steps (a range query),
 * backward, repeated, before the first and past the last sample.
 */
import { describe, expect, it } from 'vitest';
import { lower, lowerFrom, upper, upperFrom } from '../server/promql/search.js';
import { scheduleSeed } from './helpers/seed.js';

describe('forward-moving series searches', () => {
  it('equal the binary searches for any sequence of times', () => {
    const seed = scheduleSeed('PROMQL_SEARCH_SEED', 'promql-search');
    let a = seed >>> 0;
    const rand = (): number => {
      a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
      return a / 4294967296;
    };
    for (let round = 0; round < 200; round++) {
      const n = Math.floor(rand() * 40);
      const t = new Float64Array(n + 3);
      let x = 0;
      for (let i = 0; i < n; i++) t[i] = x += 1 + Math.floor(rand() * 3); // strictly increasing
      t.fill(-1, n); // past n: never read
      const hiHints = new Int32Array(1);
      const loHints = new Int32Array(1);
      let q = -5;
      for (let step = 0; step < 60; step++) {
        const r = rand();
        q = r < 0.6 ? q + Math.floor(rand() * 4) : r < 0.8 ? q + Math.floor(rand() * 50) : r < 0.9 ? q : q - Math.floor(rand() * 30);
        expect(upperFrom(t, n, q, hiHints, 0), `round ${round} step ${step} upper ${q}`).toBe(upper(t, n, q));
        expect(lowerFrom(t, n, q, loHints, 0), `round ${round} step ${step} lower ${q}`).toBe(lower(t, n, q));
      }
    }
  });
});
