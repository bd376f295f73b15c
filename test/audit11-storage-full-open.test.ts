/**
 * The catalog is derived from the files except for what only it knows: the put status of
 * rotated files and the rows of files that live in cold storage only (shipped, then evicted
 * by retention). Moving a sound catalog aside loses both: an evicted file is then no longer
 * part of the archive (without a list hook nothing brings it back), its batches gone from
 * every read. Two ways did that:
 * - a writable open on a full disk: SQLite's SQLITE_FULL or SQLITE_IOERR_SHMSIZE was taken
 *   for damage (TPD_CORRUPT_CATALOG "rebuild it with tapedeck reindex"), the catalog moved
 *   aside as catalog.sqlite.bad-<ms>, and the next open rebuilt it from the local files
 *   without a word;
 * - `tapedeck reindex` of a directory a server records into: the catalog was moved aside
 *   before the lock was tried, then the reindex failed TPD_ARCHIVE_LOCKED.
 * AUDIT11_FULL_OPEN_SEED=<n> replays the slivers of space given back.
 */
import { mkdir, readdir, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { reindexArchive } from '../storage/reindex.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch } from '../protocol/value.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { tmpDir } from './helpers/tmp.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { plain, readAll } from './helpers/replay.js';
import { HOOKS as FIX, recordEvicted } from './helpers/cold-shipped.js';

const T0 = 1_760_000_000_000_000;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 4096 };
const PER_FILE = 120;
const OPENS = 8;

function batches(n: number): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: T0 + i * 1000, updates: [[`/d${i % 7}/a`, i], ['/b', `v${i}`]] }));
}

/**
 * Opens with a get hook and reads everything: every batch, exactly, none missing; no problem
 * reported. Retention then evicts the fetched files again (their put status known).
 */
async function expectWhole(dir: string, cold: string, all: Batch[], where: string): Promise<void> {
  const a = await Archive.open(dir, STORAGE);
  const c = await ColdStorage.start(a, {
    hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [cold] }, get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] } },
    retention: { maxAgeMs: 0, maxBytes: 1 }, checkIntervalMs: 0, listIntervalMs: 0, fetchedKeepMs: 0,
  });
  try {
    expect(a.problems, where).toEqual([]);
    expect(a.files.map((f) => f.location), where).toEqual(['remote', 'remote', 'local']);
    const got = await readAll(a.cursor());
    expect(got.length, where).toBe(all.length);
    expect(plain(got), where).toEqual(plain(all));
    await c.check();
    expect(a.files.map((f) => f.location), where).toEqual(['remote', 'remote', 'local']);
  } finally {
    await c.stop();
    await a.close();
  }
}

async function asideNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => /\.(bad|old)-/.test(n));
}

describe('a sound catalog is never moved aside for want of space or of the lock', () => {
  const fs = useTmpfs('tapedeck-a11-full-open-', 'the full-disk opens');

  it('a writable open on a full disk fails TPD_DISK_FULL or opens, and keeps the catalog; evicted files stay readable once space is back', async (ctx) => {
    if (!fs.mounted) return ctx.skip();
    const seed = scheduleSeed('AUDIT11_FULL_OPEN_SEED', 'audit11-storage-full-open');
    const r = rng(seed);
    const dir = join(fs.dir, 'archive');
    const cold = join(await tmpDir('tapedeck-a11-cold-'), 'cold');
    await mkdir(cold);
    const all = batches(3 * PER_FILE);
    await recordEvicted(dir, cold, all, { perFile: PER_FILE, rotations: 2, storage: STORAGE });
    const codes = new Set<string>();
    for (let i = 0; i < OPENS; i++) {
      // From nothing to a few pages: the lock, the -shm, the WAL, the slot repair each run out in turn.
      const sliver = i === 0 ? 0 : Math.floor(r() * 48) * 1024;
      const where = `seed ${seed}, open ${i}, ${sliver} bytes free`;
      const filler = await fillDisk(fs.dir);
      await truncate(filler, Math.max(0, (await stat(filler)).size - sliver));
      let failed: unknown;
      try {
        const a = await Archive.open(dir, STORAGE);
        codes.add('opened');
        expect(a.problems, where).toEqual([]);
        await a.close();
      } catch (err) {
        failed = err;
      } finally {
        await unlink(filler);
      }
      expect(await asideNames(dir), where).toEqual([]);
      await expectWhole(dir, cold, all, where);
      if (failed === undefined) continue;
      if (!isTapedeckError(failed)) throw new Error(`${where}: ${String(failed)}`, { cause: failed });
      expect(failed.code, `${where}: ${failed.message}`).toBe('TPD_DISK_FULL');
      codes.add(failed.code);
    }
    expect(codes.has('TPD_DISK_FULL'), `seed ${seed}: no open ran out of space`).toBe(true);
  }, 60_000);

  it('tapedeck reindex of an archive a writer holds fails TPD_ARCHIVE_LOCKED and leaves its catalog where it is', async () => {
    const base = await tmpDir('tapedeck-a11-reindex-');
    const dir = join(base, 'archive');
    const cold = join(base, 'cold');
    await mkdir(cold);
    const all = batches(3 * PER_FILE + 40);
    await recordEvicted(dir, cold, all.slice(0, 3 * PER_FILE), { perFile: PER_FILE, rotations: 2, storage: STORAGE });
    const a = await Archive.open(dir, STORAGE);
    try {
      await expect(reindexArchive(dir)).rejects.toMatchObject({ code: 'TPD_ARCHIVE_LOCKED' });
      expect(await asideNames(dir)).toEqual([]);
      for (const b of all.slice(3 * PER_FILE)) a.writer!.append(b.updates, b.ts);
      await a.writer!.flush();
    } finally {
      await a.close();
    }
    const b = await Archive.open(dir, STORAGE);
    const c = await ColdStorage.start(b, { hooks: { get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] } }, checkIntervalMs: 0, listIntervalMs: 0 });
    try {
      expect(b.problems).toEqual([]);
      expect(plain(await readAll(b.cursor()))).toEqual(plain(all));
    } finally {
      await c.stop();
      await b.close();
    }
  });
});
