/**
 * Sealed-file compaction (storage/seal-compact.ts): a sealed file's delta blocks joined into
 * larger ones, written beside it. Checked offline: the compacted file replaces the old one,
 * the catalog is rebuilt (`tapedeck reindex`), and every batch must read back as it was
 * (times, paths, order, values bit for bit), verify must pass, and each old (block, batch)
 * place must be found at its new place.
 */
import { describe, expect, it } from 'vitest';
import { open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { compactSealedFile } from '../storage/seal-compact.js';
import { reindexArchive } from '../storage/reindex.js';
import { verifyArchive } from '../storage/verify.js';
import { BlockType, Codec } from '../storage/codec/frame.js';
import type { FileEntry } from '../storage/file-list.js';
import type { Batch, Update } from '../protocol/value.js';
import { randomBatches, rng } from './helpers/workload.js';
import { FRAGILE_NANS } from './helpers/nan.js';
import { bitsDiff } from './helpers/values.js';
import { plain, readArchive as readRecorded } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const small = { imageFrequencyBytes: 16 * 1024, flushIntervalMs: 0 };

async function record(dir: string, batches: Batch[], flushEvery: number, opts: { imageFrequencyBytes?: number; flushIntervalMs: number } = small): Promise<void> {
  const a = await Archive.open(dir, opts);
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (++i % flushEvery === 0) await a.writer!.flush();
  }
  await a.writer!.flush();
  await a.writer!.rotate();
  await a.close();
}

function sealedOf(a: Archive): FileEntry {
  const e = a.fileList.all().find((f) => f.sealed);
  if (!e) throw new Error('no sealed file');
  return e;
}

interface Compacted {
  deltasBefore: number;
  deltasAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  deltaStarts: Array<{ di: number; k: number }>;
  /** Time of each old delta block's first batch. */
  oldFirstTs: number[];
}

/** Compacts the archive's sealed file and puts it in place (the server stopped), then rebuilds the catalog. */
async function compactOffline(dir: string, updates: number): Promise<Compacted> {
  const a = await Archive.open(dir, { readonly: true });
  const e = sealedOf(a);
  const table = a.table(e);
  const oldFirstTs = table.deltas.map((i) => table.firstTs(i));
  const tmp = join(dir, `${e.name}.compact.tmp`);
  const r = await compactSealedFile(a, e, tmp, { updates });
  const bytesBefore = (await stat(join(dir, e.name))).size;
  await a.close();
  await rename(tmp, join(dir, e.name));
  await (await reindexArchive(dir)).close();
  return { deltasBefore: r.deltasBefore, deltasAfter: r.deltasAfter, bytesBefore, bytesAfter: r.bytes, deltaStarts: r.deltaStarts, oldFirstTs };
}

/** Every committed batch, as plain values. */
const readArchive = async (dir: string): Promise<Batch[]> => plain(await readRecorded(dir));

function expectSame(got: Batch[], want: Batch[]): void {
  expect(got.length).toBe(want.length);
  expect(got).toStrictEqual(want);
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as Batch;
    const g = got[i] as Batch;
    for (let j = 0; j < w.updates.length; j++) {
      const d = bitsDiff((w.updates[j] as Update)[1], (g.updates[j] as Update)[1], `batch ${i} update ${j}`);
      expect(d).toBeUndefined();
    }
  }
}

describe('sealed-file compaction', () => {
  it('keeps every batch bit for bit (hostile values, repeated paths, new paths, images) and every old place', async () => {
    const seed = scheduleSeed('SEAL_COMPACT_SEED', 'seal-compact');
    const r = rng(seed);
    const batches = randomBatches(seed, 4000, { paths: 400, maxUpdates: 30 });
    // Prometheus' stale marker and other NaNs whose bits must survive a re-encoding.
    for (const b of batches) if (r() < 0.05) b.updates.push(['/nan/' + Math.floor(r() * 5), FRAGILE_NANS[Math.floor(r() * FRAGILE_NANS.length)] as number]);
    const dir = await tmpDir();
    await record(dir, batches, 7);
    const want = await readArchive(dir);
    expectSame(want, plain(batches));
    const c = await compactOffline(dir, 4096);
    expect(c.deltasAfter).toBeGreaterThan(1);
    expect(c.deltasAfter).toBeLessThan(c.deltasBefore / 4);
    expectSame(await readArchive(dir), want);
    const v = await verifyArchive(dir);
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
    // Each old delta block's first batch is where deltaStarts says.
    const a = await Archive.open(dir, { readonly: true });
    const t = a.table(sealedOf(a));
    for (let i = 0; i < c.deltaStarts.length; i++) {
      const { di, k } = c.deltaStarts[i] as { di: number; k: number };
      const d = await a.readBlock(sealedOf(a), t.row(t.deltas[di] as number));
      expect(d.ts[k]).toBe(c.oldFirstTs[i]);
    }
    // PATHS and IMAGE frames are still there, and no delta block spans one.
    const types = Array.from({ length: t.length }, (_, i) => t.type(i));
    // Joined blocks are codec 3 (split): their column bodies lie verbatim in the file.
    for (const i of t.deltas) expect((await a.readBytes(sealedOf(a), t.offset(i), 48))[5]).toBe(Codec.SPLIT);
    expect(types.filter((x) => x === BlockType.IMAGE).length).toBeGreaterThan(1);
    expect(types.filter((x) => x === BlockType.PATHS).length).toBeGreaterThan(1);
    await a.close();
  });

  it('makes numeric telemetry smaller', async () => {
    const r = rng(7);
    const batches: Batch[] = [];
    const counters = Array.from({ length: 500 }, () => Math.floor(r() * 1e6));
    for (let s = 0; s < 120; s++) {
      const updates: Update[] = [];
      for (let i = 0; i < 500; i++) {
        counters[i] = (counters[i] as number) + Math.floor(r() * 1000);
        updates.push([`/dev-${i % 50}/if-${i}/in_octets`, counters[i] as number]);
        updates.push([`/dev-${i % 50}/if-${i}/temp`, Math.round((40 + r() * 5) * 100) / 100]);
      }
      batches.push({ ts: 1_700_000_000_000_000 + s * 15_000_000, updates });
    }
    const dir = await tmpDir();
    await record(dir, batches, 1, { flushIntervalMs: 0 });
    const want = await readArchive(dir);
    const c = await compactOffline(dir, 131_072);
    expectSame(await readArchive(dir), want);
    expect(c.deltasAfter).toBe(1);
    console.log(`compaction of 120 000 samples: ${c.bytesBefore} -> ${c.bytesAfter} bytes`);
    expect(c.bytesAfter).toBeLessThan(c.bytesBefore * 0.8);
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('refuses a file with a damaged block and leaves it as it was', async () => {
    const dir = await tmpDir();
    await record(dir, randomBatches(3, 500, { paths: 40 }), 5);
    const a = await Archive.open(dir, { readonly: true });
    const e = sealedOf(a);
    const t = a.table(e);
    const row = t.row(t.deltas[2] as number);
    const fh = await open(join(dir, e.name), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, row.offset + 60);
    b[0] = (b[0] as number) ^ 0x10;
    await fh.write(b, 0, 1, row.offset + 60);
    await fh.close();
    await expect(compactSealedFile(a, e, join(dir, 'x.tmp'))).rejects.toMatchObject({ code: 'TPD_CORRUPT_BLOCK' });
    await a.close();
  });

  it('refuses the open file', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    a.writer!.append([['/x', 1]], 1_700_000_000_000_000);
    await a.writer!.flush();
    const cur = a.fileList.last() as FileEntry;
    await expect(compactSealedFile(a, cur, join(dir, 'x.tmp'))).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT' });
    await a.close();
  });
});
