/**
 * A per-series sidecar belongs to one archive (storage/series-index/format.ts, version 3):
 * another archive's sidecar of a segment with the same name, seq, committed bytes, block
 * count and time range (two recorders fed the same times, a directory restored next to
 * another's sidecars) is refused and rebuilt, never read as this archive's values.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyFile, readFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { readSeries } from '../storage/series-read.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { identityOf, sidecarPath } from '../storage/series-index/build.js';
import { decodeHeader } from '../storage/series-index/format.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { FileEntry } from '../storage/file-list.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/**
 * One rotated file and current; the same times in both archives, and the same numbers with
 * /a's and /b's swapped: files of the same shape (name, seq, bytes, blocks, times), other values.
 */
async function record(dir: string, seed: number, swap: boolean): Promise<void> {
  const rand = rng(seed);
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  const w = a.writer!;
  let ts = 1_700_000_000_000_000;
  for (let b = 0; b < 12; b++) {
    for (let j = 0; j < 3; j++) {
      ts += 1000 + Math.floor(rand() * 5000);
      const x = Math.round(rand() * 1e6) / 100;
      const y = Math.round(rand() * 1e6) / 100;
      w.append([['/a', swap ? y : x], ['/b', swap ? x : y]], ts);
    }
    await w.flush();
  }
  await w.rotate();
  w.append([['/a', 0]], ts + 1000);
  await w.flush();
  const store = await startSeriesIndex(a);
  await store.whenIdle();
  expect(store.stats.built).toBe(1);
  await a.close();
}

async function series(a: Archive, sidecars: boolean): Promise<Array<[number, number, unknown]>> {
  const out: Array<[number, number, unknown]> = [];
  for await (const pieces of readSeries(a, [0, 1], 0, Number.MAX_SAFE_INTEGER, { sidecars })) {
    for (const { id, run, from, to } of pieces) for (let i = from; i < to; i++) out.push([id, run.ts[i] as number, run.num ? run.num[i] : run.values?.[i]]);
  }
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

const sealed = (a: Archive): FileEntry => a.files.find((f) => f.sealed) as FileEntry;

describe('a sidecar carries its archive id', () => {
  it("another archive's sidecar of a same-shaped file is refused, the blocks answer, and it is rebuilt", async () => {
    const seed = scheduleSeed('DAMAGE2_SEED', 'damage2-sidecar-archive');
    const [mine, other] = [await tmpDir(), await tmpDir()];
    await record(mine, seed, false);
    await record(other, seed, true);
    const ro = [await Archive.open(mine, { readonly: true }), await Archive.open(other, { readonly: true })] as const;
    const [fa, fb] = [sealed(ro[0]), sealed(ro[1])];
    // The precondition: everything but the archive id (and the values) is the same.
    const shape = (a: Archive, f: FileEntry): object => ({ ...identityOf(a, f), archiveId: undefined });
    expect(shape(ro[1], fb), `seed ${seed}`).toEqual(shape(ro[0], fa));
    expect(ro[1].archiveId).not.toBe(ro[0].archiveId);
    const want = await series(ro[0], false);
    expect(await series(ro[1], false)).not.toEqual(want);
    for (const a of ro) await a.close();

    await copyFile(sidecarPath(ro[1], fb.name), sidecarPath(ro[0], fa.name));
    const a1 = await Archive.open(mine, { readonly: true });
    try {
      expect(await series(a1, true), `seed ${seed}: the other archive's values`).toEqual(want);
      expect(seriesIndexOf(a1).stats.damaged, 'the foreign sidecar is refused').toBe(1);
    } finally {
      await a1.close();
    }

    const a2 = await Archive.open(mine, { flushIntervalMs: 0 });
    cleanup.push(() => a2.close());
    const store = await startSeriesIndex(a2);
    await store.whenIdle();
    expect(await series(a2, true), `seed ${seed}`).toEqual(want);
    await store.whenIdle();
    expect(store.stats.built, 'rebuilt').toBe(1);
    const bytes = await readFile(sidecarPath(a2, fa.name));
    expect(decodeHeader(bytes, identityOf(a2, sealed(a2))!, bytes.length).archiveId).toBe(a2.archiveId);
    expect(await series(a2, true)).toEqual(want);
    expect(seriesIndexOf(a2).stats.reads).toBeGreaterThan(0);
  });
});
