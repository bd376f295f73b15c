/**
 * Sidecar builds on a full disk (a real 4 MiB tmpfs, test/helpers/tmpfs.ts; skipped without
 * root). The disk fills at a seeded point of a build: the build fails and leaves nothing (no
 * temporary or scratch file, no sidecar under a final name but whole ones), every read gives
 * what the blocks give, the recorder still commits in the space there was, and once space is
 * back the next build asked for (a rotation) builds again what failed for want of space (it
 * stayed without a sidecar until a restart: reads of it from the blocks, whatever their cost),
 * as a start does.
 *
 * AUDIT10_FULL_SEED=<n> replays a run; the seed is printed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/index.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { sidecarDir } from '../storage/series-index/build.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { readSeriesExact } from './helpers/series-exact.js';

const SEED = scheduleSeed('AUDIT10_FULL_SEED', 'audit10-sidecar-full-disk');
const T0 = 1_700_000_000_000_000;
const fs = useTmpfs('tapedeck-sidecar-full-', 'the sidecar full-disk test');
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function read(a: Archive, last: number, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  return readSeriesExact(a, T0, last, sidecars);
}

describe('a sidecar build on a full disk', () => {
  it('fails leaving nothing, reads stay exact, the recorder commits, and the next rotation or start builds it', async (ctx) => {
    if (!fs.mounted) ctx.skip();
    const rand = rng(SEED);
    const dir = join(fs.dir, `archive-${SEED}`);
    await mkdir(dir);
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    // Three sealed files of noisy values (their sidecars do not compress away) and the open one.
    let ts = T0;
    {
      const a = await Archive.open(dir, { flushIntervalMs: 0 });
      for (let file = 0; file < 4; file++) {
        for (let k = 0; k < 150; k++) {
          ts += 15_000_000;
          a.writer!.append(Array.from({ length: 40 }, (_, i): [string, Value] => [`/n/${i}`, rand() * 1e6]), ts);
        }
        if (file < 3) await a.writer!.rotate();
      }
      await a.close();
    }
    const last = ts;
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => a.close());
    const want = await read(a, last, false);
    // Full, then a seeded sliver of space given back: the builds run out of it somewhere inside.
    const filler = await fillDisk(fs.dir);
    cleanup.push(() => rm(filler, { force: true }));
    const sliver = Math.floor(rand() * 96 * 1024);
    await truncate(filler, Math.max(0, (await stat(filler)).size - sliver));
    console.log(`sliver ${sliver} bytes (seed ${SEED})`);
    const store = await startSeriesIndex(a);
    await store.whenIdle();
    expect(store.stats.buildFailures, `seed ${SEED}`).toBeGreaterThan(0);
    expect(store.stats.built + store.stats.buildFailures, `seed ${SEED}`).toBe(3);
    const left = await readdir(sidecarDir(a));
    expect(left.filter((n) => !n.endsWith('.sidx')), `seed ${SEED}: nothing but sidecars left`).toEqual([]);
    expect(left.length, `seed ${SEED}`).toBe(store.stats.built);
    expect(await read(a, last, true), `seed ${SEED}`).toEqual(want);
    expect(store.stats.damaged, `seed ${SEED}`).toBe(0);
    // What the failed builds took is back: the recorder commits in the space there was.
    a.writer!.append([['/n/0', 1]], last + 1);
    await a.writer!.flush();
    expect(a.lastTs).toBe(last + 1);
    // Space back: the next rotation's build asks again for those that failed for want of space.
    await rm(filler);
    const builtBefore = store.stats.built;
    await a.writer!.rotate();
    await store.whenIdle();
    expect(store.stats.built - builtBefore, `seed ${SEED}: the new file's and each failed one's`).toBe(1 + 3 - builtBefore);
    expect((await readdir(sidecarDir(a))).length).toBe(4);
    const wantNow = await read(a, last + 1, false);
    expect(await read(a, last + 1, true), `seed ${SEED}`).toEqual(wantNow);
    expect(store.stats.damaged, `seed ${SEED}`).toBe(0);
    await a.close();
    // And a start finds them all (none to build) and reads them.
    const b = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => b.close());
    const again = await startSeriesIndex(b);
    await again.whenIdle();
    expect(again.stats.built, `seed ${SEED}`).toBe(0);
    expect(await read(b, last + 1, true), `seed ${SEED}`).toEqual(wantNow);
    expect(seriesIndexOf(b).stats.damaged).toBe(0);
  }, 20_000);
});
