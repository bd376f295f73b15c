/**
 * Held sidecar chunk bytes (storage/series-index/store.ts): once reads have asked for a
 * sidecar's chunks widely, its bytes are read whole once and chunks are sliced from memory;
 * what is read then is exactly what the block scan gives (hostile floats, the stale NaN), the
 * bytes held never pass seriesIndexHeldBytesMax (least recently read let go, a sidecar
 * larger than it never held), narrow reads do not hold, and a sidecar found damaged lets its
 * bytes go.
 */
import { describe, expect, it } from 'vitest';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { readSeries } from '../storage/series-read.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { sidecarPath } from '../storage/series-index/build.js';
import { decodeHeader, decodeIndex } from '../storage/series-index/format.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { xorByte } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { STALE_NAN } from './helpers/nan.js';
import { exactValue } from './helpers/values.js';
import { storageLimitsForTests } from './helpers/storage-limits.js';

const PATHS = 40;
const { limits, cleanup } = storageLimitsForTests();

const exact = exactValue;

/** Three sealed files with sidecars and `current`. */
async function build(seed: number, dir?: string): Promise<{ a: Archive; firstUs: number; lastUs: number }> {
  const rand = rng(seed);
  const a = await Archive.open(dir ?? (await tmpDir()), { flushIntervalMs: 0 });
  let ts = 1_700_000_000_000_000;
  const firstUs = ts + 1;
  for (let file = 0; file < 4; file++) {
    for (let b = 0; b < 20; b++) {
      ts += 1000 + Math.floor(rand() * 15_000);
      const updates: Array<[string, Value]> = [];
      for (let i = 0; i < PATHS; i++) {
        const r = rand();
        if (r < 0.1) continue;
        updates.push([`/s/${i}`, r < 0.13 ? STALE_NAN : r < 0.15 ? NaN : r < 0.16 ? -0 : r < 0.17 ? -Infinity : i % 2 === 0 ? b * 7 + i : rand() * 1e6]);
      }
      a.writer!.append(updates, ts);
      await a.writer!.flush();
    }
    if (file < 3) await a.writer!.rotate();
  }
  await (await startSeriesIndex(a)).whenIdle();
  return { a, firstUs, lastUs: ts };
}

async function read(a: Archive, ids: readonly number[], fromUs: number, toUs: number, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  const out = new Map<number, Array<[number, unknown]>>();
  for await (const pieces of readSeries(a, ids, fromUs, toUs, { sidecars, cacheSidecarChunks: false })) {
    for (const { id, run, from, to } of pieces) {
      if (!out.has(id)) out.set(id, []);
      for (let i = from; i < to; i++) out.get(id)?.push([run.ts[i] as number, exact(run.num ? (run.num[i] as number) : (run.values?.[i] as Value))]);
    }
  }
  return out;
}

describe('held sidecar chunk bytes', () => {
  it('wide reads hold a sidecar and read exactly what the blocks hold; narrow ones do not; never past the limit', async () => {
    const seed = scheduleSeed('SIDECAR_HELD_SEED', 'sidecar-held');
    const rand = rng(seed + 1);
    limits.seriesIndexSliceUpdatesMax = 97;
    const { a, firstUs, lastUs } = await build(seed);
    cleanup.push(() => a.close());
    const store = seriesIndexOf(a);
    const ids = a.paths.map((_, id) => id);
    const sizes = await Promise.all(a.files.filter((f) => f.sealed).map(async (f) => (await stat(sidecarPath(a, f.name))).size));
    // One path over one file: not held.
    const one = await read(a, [3], firstUs - 1, lastUs, true);
    expect(one).toEqual(await read(a, [3], firstUs - 1, lastUs, false));
    expect(store.heldBytesNow).toBe(0);
    // Every path: every sidecar held.
    const whole = await read(a, ids, firstUs - 1, lastUs, false);
    expect(await read(a, ids, firstUs - 1, lastUs, true), `seed ${seed}`).toEqual(whole);
    expect(store.heldBytesNow).toBeGreaterThan(0);
    expect(store.heldBytesNow).toBeLessThanOrEqual(sizes.reduce((x, y) => x + y, 0));
    // From held bytes: random subsets and ranges, exactly.
    for (let round = 0; round < 30; round++) {
      const some = ids.filter(() => rand() < 0.3);
      const span = lastUs - firstUs;
      const fromUs = firstUs + Math.floor(rand() * span);
      const toUs = fromUs + Math.floor(rand() * span);
      expect(await read(a, some, fromUs, toUs, true), `round ${round} (seed ${seed})`).toEqual(await read(a, some, fromUs, toUs, false));
    }
    expect(store.stats.damaged).toBe(0);
    // A limit that holds one sidecar at a time: reads of all still exact, held bytes within it.
    limits.seriesIndexHeldBytesMax = Math.max(...sizes);
    for (let round = 0; round < 6; round++) {
      expect(await read(a, ids, firstUs - 1, lastUs, true), `round ${round} (seed ${seed})`).toEqual(whole);
      expect(store.heldBytesNow).toBeGreaterThan(0);
      expect(store.heldBytesNow).toBeLessThanOrEqual(limits.seriesIndexHeldBytesMax);
    }
    // Smaller than any sidecar: none held.
    limits.seriesIndexHeldBytesMax = Math.min(...sizes) - 1;
    expect(await read(a, ids, firstUs - 1, lastUs, true)).toEqual(whole);
    expect(store.heldBytesNow).toBeLessThanOrEqual(limits.seriesIndexHeldBytesMax);
  });

  it('a chunk damaged on disk before it is held is found when read from the held bytes, and they are let go', async () => {
    const seed = scheduleSeed('SIDECAR_HELD_SEED', 'sidecar-held-damage');
    const rand = rng(seed + 2);
    limits.seriesIndexSliceUpdatesMax = 97;
    const dir = await tmpDir();
    const built = await build(seed, dir);
    const ids = built.a.paths.map((_, id) => id);
    const want = await read(built.a, ids, built.firstUs - 1, built.lastUs, false);
    // Each sidecar's chunk bytes (what holding it costs) and the first one's index.
    const sealed = built.a.files.filter((f) => f.sealed);
    const heads = await Promise.all(
      sealed.map(async (f) => {
        const bytes = await readFile(sidecarPath(built.a, f.name));
        return { bytes, h: decodeHeader(bytes, { archiveId: built.a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: built.a.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! }, bytes.length) };
      }),
    );
    await built.a.close();
    const file = sidecarPath(built.a, (sealed[0] as { name: string }).name);
    const { bytes: pristine, h } = heads[0] as (typeof heads)[number];
    const ix = decodeIndex(pristine.subarray(h.indexOffset), h);
    const othersHeld = heads.slice(1).reduce((n, x) => n + x.h.indexOffset, 0);
    for (let round = 0; round < 4; round++) {
      await writeFile(file, pristine);
      const c = Math.floor(rand() * ix.offset.length);
      await xorByte(file, (ix.offset[c] as number) + Math.floor(rand() * (ix.bytes[c] as number)), 1 << Math.floor(rand() * 8));
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(await read(a, ids, built.firstUs - 1, built.lastUs, true), `round ${round} (seed ${seed})`).toEqual(want);
        const store = seriesIndexOf(a);
        expect(store.stats.damaged).toBe(1);
        // The two undamaged sidecars stay held; the damaged one's bytes are let go.
        expect(store.heldBytesNow).toBe(othersHeld);
      } finally {
        await a.close();
      }
    }
  });
});
