/**
 * Per-series sidecars replaced whole: by another sealed file's sidecar (same archive, same
 * kind of file), by zeros, by an empty file, or gone. Reads through sidecars give exactly what
 * the blocks give, the replaced sidecar counts as damaged (a missing one is just built again),
 * and a writable open builds it again.
 *
 * DAMAGE_SIDECAR_SEED=<n> replays a run; the seed is printed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { readSeries } from '../storage/series-read.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { sidecarPath } from '../storage/series-index/build.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { exactValue } from './helpers/values.js';

const SEED = scheduleSeed('DAMAGE_SIDECAR_SEED', 'damage-sidecar');
const limits = STORAGE_LIMITS as { -readonly [K in keyof typeof STORAGE_LIMITS]: number };
const saved = { ...STORAGE_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

const exact = exactValue;

/** Files of the same shape (same paths, same batch count), so that their sidecars look alike. */
async function build(dir: string): Promise<{ first: number; last: number }> {
  const r = rng(SEED);
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  let ts = 1_700_000_000_000_000;
  const first = ts + 1;
  for (let file = 0; file < 4; file++) {
    for (let b = 0; b < 12; b++) {
      for (let j = 0; j < 3; j++) {
        ts += 15_000_000;
        const updates: Array<[string, Value]> = [];
        for (let i = 0; i < 12; i++) updates.push([`/s/${i}`, i % 4 === 0 ? Math.round(r() * 1000) / 10 : r() * 1e6]);
        a.writer!.append(updates, ts);
      }
      await a.writer!.flush();
    }
    if (file < 3) await a.writer!.rotate();
  }
  await a.close();
  return { first, last: ts };
}

async function read(a: Archive, from: number, to: number, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  const out = new Map<number, Array<[number, unknown]>>();
  for await (const pieces of readSeries(a, a.paths.map((_, id) => id), from, to, { sidecars })) {
    for (const { id, run, from: i0, to: i1 } of pieces) {
      if (!out.has(id)) out.set(id, []);
      for (let i = i0; i < i1; i++) out.get(id)?.push([run.ts[i] as number, exact(run.num ? (run.num[i] as number) : (run.values?.[i] as Value))]);
    }
  }
  return out;
}

describe('sidecars replaced whole', () => {
  it('by another file\'s sidecar, zeros, nothing, or gone: never used, reads exact, built again', async () => {
    limits.seriesIndexSliceUpdatesMax = 64;
    const r = rng(SEED + 1);
    const dir = await tmpDir('tapedeck-damage-sidecar-');
    const { first, last } = await build(dir);
    let a = await Archive.open(dir, { flushIntervalMs: 0 });
    const store = await startSeriesIndex(a);
    await store.whenIdle();
    const sealed = a.files.filter((f) => f.sealed).map((f) => f.name);
    expect(sealed.length).toBe(3);
    const want = await read(a, first - 1, last, false);
    await a.close();
    const pristine = new Map<string, Buffer>();
    for (const n of sealed) pristine.set(n, await readFile(sidecarPath(a, n)));

    const victim = sealed[Math.floor(r() * sealed.length)]!;
    const donor = sealed.filter((n) => n !== victim)[Math.floor(r() * (sealed.length - 1))]!;
    const path = sidecarPath(a, victim);
    const cases: Array<{ what: string; apply: () => Promise<void>; damaged: boolean }> = [
      { what: `${victim}'s sidecar replaced by ${donor}'s`, apply: () => copyFile(sidecarPath(a, donor), path), damaged: true },
      { what: 'a sidecar of zeros', apply: () => writeFile(path, Buffer.alloc(pristine.get(victim)!.length)), damaged: true },
      { what: 'an empty sidecar', apply: () => writeFile(path, Buffer.alloc(0)), damaged: true },
      { what: 'a sidecar gone', apply: () => rm(path), damaged: false },
    ];
    for (const c of cases) {
      const where = `${c.what} (seed ${SEED})`;
      for (const n of sealed) await writeFile(sidecarPath(a, n), pristine.get(n)!);
      await c.apply();
      const ro = await Archive.open(dir, { readonly: true });
      try {
        expect(await read(ro, first - 1, last, true), where).toEqual(want);
        if (c.damaged) expect(seriesIndexOf(ro).stats.damaged, `${where}: not found damaged`).toBe(1);
      } finally {
        await ro.close();
      }
      a = await Archive.open(dir, { flushIntervalMs: 0 });
      try {
        const s = await startSeriesIndex(a);
        await s.whenIdle();
        expect(await read(a, first - 1, last, true), `${where} writable`).toEqual(want);
        await s.whenIdle();
        expect((await readFile(path)).equals(pristine.get(victim)!), `${where}: not built again`).toBe(true);
      } finally {
        await a.close();
      }
    }
  });
});
