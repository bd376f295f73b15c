/**
 * The chart's gap breaker (clients/web/gaps.js), run in Node: a null at each recorder gap's
 * start and end inside the points' range, points inside a gap drawn as nulls, nothing
 * bridged, nothing else changed. Fixed cases for the edges, then a seeded property over
 * random points and overlapping, open, empty and out-of-range gaps.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { breakAtGaps, gapSpans, type Span } from '../clients/web/gaps.js';

const gap = (startS: number, endS: number | null): { startUs: number; endUs: number | null } =>
  ({ startUs: startS * 1e6, endUs: endS === null ? null : endS * 1e6 });
const run = (xs: number[], gaps: Array<{ startUs: number; endUs: number | null }>): [number[], Array<number | null>] =>
  breakAtGaps(xs, xs.map((x) => x * 10), gapSpans(gaps));

describe('breakAtGaps', () => {
  it('puts a null after the point at a gap start and before the point at its end', () => {
    expect(run([1, 2, 4, 5], [gap(2, 4)])).toEqual([[1, 2, 2, 4, 4, 5], [10, 20, null, null, 40, 50]]);
  });

  it('nulls a point inside a gap (a seek into the hole) and leaves gaps outside the points alone', () => {
    expect(run([1, 3, 5], [gap(2, 4), gap(-5, 0), gap(9, 12)])).toEqual([[1, 2, 3, 4, 5], [10, null, null, null, 50]]);
  });

  it('runs an open gap to the last point, and takes empty, reversed and non-finite gaps as none', () => {
    expect(run([1, 2, 3], [gap(2, null)])).toEqual([[1, 2, 2, 3], [10, 20, null, null]]);
    expect(run([1, 2, 3], [gap(2, 2), gap(3, 1), { startUs: NaN, endUs: 5e6 }])).toEqual([[1, 2, 3], [10, 20, 30]]);
  });

  it('blanks every point under a gap wider than the chart', () => {
    expect(run([1, 2], [gap(0, 3)])).toEqual([[1, 2], [null, null]]);
  });

  it('returns the very arrays when there is nothing to break, and never touches its input', () => {
    const xs = [1, 2];
    const ys = [1, 2];
    expect(breakAtGaps(xs, ys, [])).toEqual([xs, ys]);
    expect(breakAtGaps([], [], gapSpans([gap(0, 1)]))).toEqual([[], []]);
    breakAtGaps(xs, ys, gapSpans([gap(1, 2)]));
    expect([xs, ys]).toEqual([[1, 2], [1, 2]]);
  });

  it('keeps x sorted, keeps every point outside the gaps, and bridges no gap, for any points and gaps (seeded)', () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`web-gaps property seed ${seed} (FC_SEED=${seed} to replay)`);
    const xsArb = fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }).map((a) => [...a].sort((p, q) => p - q));
    const gapArb = fc.record({ startS: fc.integer({ min: -5, max: 65 }), endS: fc.option(fc.integer({ min: -5, max: 65 })) });
    fc.assert(fc.property(xsArb, fc.array(gapArb, { maxLength: 8 }), (xs, gs) => {
      const spans: Span[] = gapSpans(gs.map((g) => gap(g.startS, g.endS)));
      const ys = xs.map((_, i) => i);
      const [ox, oy] = breakAtGaps(xs, ys, spans);
      const inside = (x: number): boolean => spans.some(([s, e]) => s < x && x < e);
      expect(ox).toEqual([...ox].sort((p, q) => p - q));
      expect(oy.filter((y) => y !== null)).toEqual(ys.filter((_, i) => !inside(xs[i]!)));
      if (xs.length === 0) return;
      for (let i = 0; i + 1 < ox.length; i++) {
        if (oy[i] === null || oy[i + 1] === null) continue;
        expect(spans.find(([s, e]) => ox[i]! <= s && ox[i + 1]! >= e)).toBeUndefined();
      }
      // A null at every boundary within the points' range.
      for (const [s, e] of spans) {
        for (const b of [s, e]) {
          if (b >= xs[0]! && b <= xs[xs.length - 1]!) expect(ox.some((x, i) => x === b && oy[i] === null)).toBe(true);
        }
      }
    }), { seed, numRuns: 500 });
  });
});
