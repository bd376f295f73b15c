/**
 * Damage to the catalog's write-ahead log (`catalog.sqlite-wal`) and its index
 * (`catalog.sqlite-shm`), as a crash leaves them: the archive copied while its writer ran
 * (commits in the WAL, not yet checkpointed into catalog.sqlite), then a byte flipped, a run
 * zeroed or the WAL cut, at seeded offsets over the whole file. SQLite checks each WAL frame
 * by its checksum and ends the log at the first that fails, as at a torn write: the commits
 * from there on are lost from the catalog, which is derived, so an open indexes the files
 * again past what the catalog holds. Each time: the read-only and the writable open serve
 * every batch the files hold, exactly (none left out: the files are intact); verify never
 * crashes; after a writable open the archive verifies clean and records on. The shm is
 * rebuilt from the WAL by the first connection: bytes damaged there change nothing.
 *
 * DAMAGE3_WAL_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { cp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch } from '../protocol/value.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { plain } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { randomBatches, rng } from './helpers/workload.js';

const DAMAGES = 60;
const OPTIONS = { flushIntervalMs: 0, rotateSizeBytes: 8_000, imageFrequencyBytes: 4000 };

const text = (v: unknown): string => JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));

/** Block rows the catalog holds (SQLite reads the WAL as far as its frames check); -1 when it cannot be read. */
function blockRows(dir: string): number {
  let db: Database.Database | undefined;
  try {
    db = new Database(join(dir, 'catalog.sqlite'), { readonly: true, fileMustExist: true });
    return (db.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n;
  } catch {
    return -1;
  } finally {
    db?.close();
  }
}

async function served(a: Archive, where: string): Promise<string[]> {
  const out: string[] = [];
  const c = a.cursor();
  try {
    for (let b = await c.next(); b; b = await c.next()) out.push(`${b.ts} ${text(b.updates)}`);
  } catch (err) {
    throw new Error(`${where}: ${isTapedeckError(err) ? `${err.code}: ${err.message}` : String(err)}`, { cause: err });
  }
  return out;
}

describe('a damaged catalog WAL or shm', () => {
  it('loses catalog rows only: every batch the files hold is served exactly, verify never crashes, a writable open settles it', async () => {
    const seed = scheduleSeed('DAMAGE3_WAL_SEED', 'damage3 catalog wal');
    const r = rng(seed);
    const base = await tmpDir();
    const snap = await tmpDir();
    const batches: Batch[] = randomBatches(seed, 400, { paths: 40, maxUpdates: 8 });
    const a = await Archive.open(base, OPTIONS);
    let i = 0;
    for (const b of batches) {
      a.writer!.append(b.updates, b.ts);
      if (++i % 4 === 0) await a.writer!.flush();
    }
    await a.writer!.flush();
    // A copy while the writer holds the archive: its last commits are in the WAL only.
    await cp(base, snap, { recursive: true });
    await a.close();
    const wal = join(snap, 'catalog.sqlite-wal');
    const walBytes = (await stat(wal)).size;
    expect(walBytes, 'the copy holds a WAL').toBeGreaterThan(32 + 24 + 4096);
    expect((await readdir(snap)).filter((n) => /^\d{4}-/.test(n)).length, 'rotated files').toBeGreaterThanOrEqual(3);
    const want = batches.map((b) => `${b.ts} ${text(b.updates)}`);
    let rows: number;
    {
      const dir = await tmpDir();
      await cp(snap, dir, { recursive: true });
      rows = blockRows(dir);
      expect(rows).toBeGreaterThan(0);
      const ro = await Archive.open(dir, { readonly: true });
      expect(await served(ro, 'undamaged copy')).toEqual(want);
      await ro.close();
    }

    const summary = { seed, walBytes, damages: 0, rowsLost: 0, verifyProblems: 0 };
    for (let k = 0; k < DAMAGES; k++) {
      const dir = await tmpDir();
      await cp(snap, dir, { recursive: true });
      const shm = k % 6 === 5;
      const file = join(dir, shm ? 'catalog.sqlite-shm' : 'catalog.sqlite-wal');
      const size = (await stat(file)).size;
      // Half the damages in the WAL header and the first frames, where they lose the most.
      const at = r() < 0.5 ? Math.floor(r() * Math.min(size, 32 + 3 * (24 + 4096))) : Math.floor(r() * size);
      const kind = r();
      let what: string;
      if (kind < 0.5) {
        const mask = 1 + Math.floor(r() * 255);
        await xorByte(file, at, mask);
        what = `xor 0x${mask.toString(16)}`;
      } else if (kind < 0.8 || shm) {
        const len = 1 + Math.floor(r() * 64);
        if (!(await zeroBytes(file, at, len))) await xorByte(file, at, 0x20);
        what = `zero ${len}`;
      } else {
        await truncate(file, at);
        what = 'cut';
      }
      const where = `${shm ? 'shm' : 'wal'} ${what} at ${at} of ${size} (seed ${seed})`;
      summary.damages++;
      // Read in a copy: the first connection rebuilds the shm, which the opens below must do themselves.
      const probe = await tmpDir();
      await cp(dir, probe, { recursive: true });
      if (blockRows(probe) !== rows) summary.rowsLost++;
      await rm(probe, { recursive: true, force: true });
      const report = await verifyArchive(dir);
      if (!report.ok) summary.verifyProblems++;
      const ro = await Archive.open(dir, { readonly: true });
      try {
        expect(await served(ro, `${where} read-only`), `${where} read-only`).toEqual(want);
      } finally {
        await ro.close();
      }
      const w = await Archive.open(dir, OPTIONS);
      try {
        expect(await served(w, `${where} writable`), `${where} writable`).toEqual(want);
        w.writer!.append([['/after/damage', k]], batches.at(-1)!.ts + 1000);
        await w.writer!.flush();
      } finally {
        await w.close();
      }
      const after = await verifyArchive(dir);
      expect(after.problems, `${where}: after a writable open`).toEqual([]);
      await rm(dir, { recursive: true, force: true });
    }
    console.log(JSON.stringify(summary));
    // The damages mattered: commits were lost from the catalog, and the files gave them back.
    expect(summary.rowsLost).toBeGreaterThan(0);
  });
});
