/**
 * The diff pass with and without a filter answers alike: no filter (a glob list holding
 * "/**") reads every column, a filter skips the columns of other paths, whether it selects
 * a few paths or most of them. Each narrowed answer must equal the full answer restricted
 * to the matching paths. Seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import type { Batch, Value } from '../protocol/value.js';
import { DiffFold, sameValue, type DiffAnswer } from '../server/diff.js';
import { diffRange } from '../server/routes/diff.js';
import { compileSpec } from '../protocol/glob.js';
import { startServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;
const S = 1_000_000;

/** Values that trip shortcuts: -0 and 0, NaN, bigints, repeated strings, null, nested. */
const TRICKY: Value[] = [0, -0, NaN, 1, 1.5, -2, 'a', 'b', '', null, 7n, 2n ** 70n, [1, 2], { k: [0] }, Uint8Array.of(1, 2), true, false, Infinity];

function restrict(full: DiffAnswer, match: (p: string) => boolean): Omit<DiffAnswer, 'counts'> {
  return {
    paths: full.paths.filter((p) => match(p.path)),
    appeared: full.appeared.filter(match),
    disappeared: full.disappeared.filter(match),
    truncated: full.truncated,
  };
}

describe('diff read modes', () => {
  it('gives the full answer restricted to the paths, whether it reads every column or skips those of other paths', async () => {
    const seed = scheduleSeed('DIFF_SELECTIVE_SEED', 'diff read modes');
    const r = rng(seed);
    const paths = Array.from({ length: 400 }, (_, i) => `/g/dev-${String(i % 40).padStart(2, '0')}/m-${i}`);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
    const batches: Batch[] = Array.from({ length: 120 }, (_, b) => ({
      ts: T0 + b * S,
      updates: paths.filter(() => r() < 0.3).map((p) => [p, r() < 0.5 ? pick(TRICKY.slice(0, 6)) : pick(TRICKY)] as [string, Value]),
    }));
    const srv = await startServer(batches, {}, { imageFrequencyBytes: 8 * 1024 });
    try {
      const few = '/g/dev-07/*'; // 10 of 400 paths
      const most = '/g/**'; // every path, but not "/**": a filter all the same
      for (let round = 0; round < 8; round++) {
        const a = T0 + Math.floor(r() * 100) * S + (r() < 0.5 ? 0 : 123);
        const b = a + Math.floor(r() * 40) * S;
        const full = await diffRange(srv.archive, ['/**'], a, b);
        for (const glob of [few, most, '/g/dev-1*/*']) {
          const match = compileSpec([glob]);
          const narrowed = await diffRange(srv.archive, [glob], a, b);
          const { counts, ...rest } = narrowed;
          expect(rest, `seed ${seed} round ${round} ${glob}`).toEqual(restrict(full, match));
          expect(counts.changed).toBe(full.paths.filter((p) => match(p.path)).length);
        }
      }
    } finally {
      await srv.close();
    }
  });

  it('counts a change exactly as deep equality does, through the fold\'s shortcuts', () => {
    const seq: Value[] = [0, 0, -0, -0, 0, NaN, NaN, 'a', 'a', 'b', 1n, 1n, 2n, null, null, [1], [1], [2], 3, 3, Infinity, Infinity];
    const fold = new DiffFold(new Map(), 1);
    seq.forEach((v, i) => fold.apply(0, v, T0 + i));
    let changes = 0;
    let held: Value | undefined;
    for (const v of seq) {
      if (held === undefined || !sameValue(held, v)) changes++;
      held = v;
    }
    const got = fold.answer(() => '/x', 10).paths[0]!;
    expect(got.changes).toBe(changes);
    expect(got.updates).toBe(seq.length);
  });
});
