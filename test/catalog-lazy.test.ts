/**
 * Block rows of the catalog are checked when a file's block table is first loaded, not all
 * at open (issue 19): the newest local file's rows at open, the others on first use. Every
 * damaged row must still be reported (TPD_CORRUPT_CATALOG) before a reader uses it, also
 * for a file loaded long after open, and a reader must never be served from a damaged row.
 *
 * LAZY_SEED=<n> replays the randomized damages; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Archive } from '../storage/archive.js';
import { rowCrc } from '../storage/catalog.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { open } from 'node:fs/promises';
import { reindexArchive } from '../storage/reindex.js';
import { isTapedeckError } from '../protocol/errors.js';
import { rng, randomBatches } from './helpers/workload.js';
import { plain } from './helpers/replay.js';
import { tapedeck } from './helpers/cli.js';
import type { Batch } from '../protocol/value.js';

const SEED = Number(process.env.LAZY_SEED ?? 1919);
const OPTIONS = { imageFrequencyBytes: 2000, flushIntervalMs: 0, rotateSizeBytes: 4000 };

let base: string;
let work: string;
let batches: Batch[];
const byTs = new Map<number, string>();
let n = 0;

function text(v: unknown): string {
  return JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
}

/** A fresh copy of the base archive with `damage` applied to its catalog. */
async function damagedCopy(damage: (db: Database.Database) => void): Promise<string> {
  const dir = join(work, `c${n++}`);
  await cp(base, dir, { recursive: true });
  const db = new Database(join(dir, 'catalog.sqlite'));
  try {
    damage(db);
  } finally {
    db.close();
  }
  return dir;
}

/** seq of the catalog's files, oldest first. */
function seqs(db: Database.Database): number[] {
  return (db.prepare('SELECT seq FROM files ORDER BY seq').pluck().all() as number[]);
}

type BlockValues = [number, number, number, number, number, number, number, number];
function blockRows(db: Database.Database, seq: number): BlockValues[] {
  return db.prepare('SELECT seq, offset, frame_bytes, type, first_ts, last_ts, batches, updates FROM blocks WHERE seq = ? ORDER BY offset').raw().all(seq) as BlockValues[];
}

/** Rewrites a block row, with a checksum that matches the new values when `validCrc`. */
function rewriteBlock(db: Database.Database, old: BlockValues, next: BlockValues, validCrc: boolean): void {
  const crc = validCrc ? rowCrc('blocks', next) : rowCrc('blocks', old);
  db.prepare('DELETE FROM blocks WHERE seq = ? AND offset = ?').run(old[0], old[1]);
  db.prepare('INSERT INTO blocks(seq, offset, frame_bytes, type, first_ts, last_ts, batches, updates, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(...next, crc);
}

/** Every batch a cursor serves from the start, and the error that stopped it, if any. */
async function serve(a: Archive): Promise<{ served: Batch[]; error: unknown }> {
  const served: Batch[] = [];
  const c = a.cursor();
  try {
    for (let b = await c.next(); b; b = await c.next()) served.push(b);
  } catch (err) {
    return { served, error: err };
  }
  return { served, error: undefined };
}

function expectOriginals(served: readonly Batch[], where: string): void {
  for (const b of served) expect(text(b.updates), `${where}: batch at ${b.ts} altered`).toBe(byTs.get(b.ts));
}

function catalogProblems(a: Archive): string[] {
  return a.problems.filter((p) => p.code === 'TPD_CORRUPT_CATALOG').map((p) => p.message);
}

beforeAll(async () => {
  console.log(`catalog-lazy seed ${SEED} (replay with LAZY_SEED=${SEED})`);
  base = await mkdtemp(join(tmpdir(), 'tapedeck-lazy-base-'));
  work = await mkdtemp(join(tmpdir(), 'tapedeck-lazy-'));
  batches = randomBatches(SEED, 400, { paths: 30, maxUpdates: 6 });
  const a = await Archive.open(base, OPTIONS);
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (++i % 20 === 0) await a.writer!.flush();
  }
  await a.close();
  for (const b of batches) byTs.set(b.ts, text(b.updates));
  const db = new Database(join(base, 'catalog.sqlite'), { readonly: true });
  expect(seqs(db).length, 'the base archive needs several files').toBeGreaterThanOrEqual(4);
  db.close();
});

afterAll(async () => {
  for (const d of [base, work]) if (d) await rm(d, { recursive: true, force: true });
});

describe('catalog block rows checked on first load', () => {
  it('a sound archive opens with no problem and serves every batch', async () => {
    const a = await Archive.open(base, { readonly: true });
    const { served, error } = await serve(a);
    await a.close();
    expect(error).toBeUndefined();
    expect(served.length).toBe(batches.length);
    expectOriginals(served, 'sound');
    expect(a.problems).toEqual([]);
  });

  // Damages to the rows of an old file, each of a kind the open used to catch by reading every row.
  const kinds: Array<{ name: string; damage: (db: Database.Database, rows: BlockValues[], r: () => number) => void }> = [
    {
      name: 'a value changed under its checksum',
      damage: (db, rows, r) => {
        const row = rows[Math.floor(r() * rows.length)]!;
        rewriteBlock(db, row, [row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] + 1 + Math.floor(r() * 100)], false);
      },
    },
    {
      name: 'a row missing (a gap in the file\'s index, every checksum sound)',
      damage: (db, rows, r) => {
        // A middle row: without the last one the index still tiles (a shorter file, not damage to see).
        expect(rows.length, 'a file with a middle block').toBeGreaterThanOrEqual(3);
        const row = rows[1 + Math.floor(r() * (rows.length - 2))]!;
        db.prepare('DELETE FROM blocks WHERE seq = ? AND offset = ?').run(row[0], row[1]);
      },
    },
    {
      name: 'the last row longer than the file was indexed (checksum recomputed)',
      damage: (db, rows) => {
        const row = rows.at(-1)!;
        rewriteBlock(db, row, [row[0], row[1], row[2] + 64, row[3], row[4], row[5], row[6], row[7]], true);
      },
    },
    {
      name: 'an impossible block type (checksum recomputed)',
      damage: (db, rows, r) => {
        const row = rows[Math.floor(r() * rows.length)]!;
        rewriteBlock(db, row, [row[0], row[1], row[2], 99, row[4], row[5], row[6], row[7]], true);
      },
    },
  ];

  for (const kind of kinds) {
    it(`an old file's rows with ${kind.name}: open stays lazy, the first load reports it, no batch of that file is served`, async () => {
      const r = rng(SEED + kinds.indexOf(kind));
      let victim = -1;
      const dir = await damagedCopy((db) => {
        const all = seqs(db);
        // Any file but the newest (whose rows open checks): loaded late, by a cursor walking from the start.
        victim = all[Math.floor(r() * (all.length - 1))]!;
        kind.damage(db, blockRows(db, victim), r);
      });
      const where = `${kind.name}, file seq ${victim} (seed ${SEED})`;
      for (const readonly of [true, false]) {
        const a = await Archive.open(dir, readonly ? { readonly: true } : OPTIONS);
        try {
          // Lazy: nothing read of the victim's rows yet, so nothing known.
          expect(catalogProblems(a), where).toEqual([]);
          expect(a.recovery.catalogRebuilds).toBe(0);
          const entry = a.fileList.bySeq(victim)!;
          expect(entry.table, `${where}: loaded at open`).toBeUndefined();
          const { served, error } = await serve(a);
          expectOriginals(served, where);
          // The walk stops at the victim with the catalog's code, before any of its batches.
          expect(isTapedeckError(error) && error.code, `${where}: ${String(error)}`).toBe('TPD_CORRUPT_CATALOG');
          const victimFirstTs = entry.firstTs;
          if (victimFirstTs !== null) for (const b of served) expect(b.ts, where).toBeLessThan(victimFirstTs);
          expect(catalogProblems(a).length, where).toBe(1);
          expect(catalogProblems(a)[0], where).toContain(entry.name);
          // Asked again, the same answer, reported once.
          expect(() => a.table(entry)).toThrow(/TPD_CORRUPT_CATALOG|catalog/);
          expect(catalogProblems(a).length, where).toBe(1);
          // warm() skips the damaged file instead of failing.
          await a.warm().catch((err: unknown) => {
            if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_CATALOG') throw err;
          });
          if (!readonly) {
            // The writer goes on: its file's rows were checked at open.
            a.writer!.append([['/after/damage', 1]]);
            await a.writer!.flush();
          }
        } finally {
          await a.close();
        }
      }
      // Rebuilt from the files, every batch is served again.
      const re = await reindexArchive(dir, OPTIONS);
      await re.close();
      const a = await Archive.open(dir, { readonly: true });
      const { served, error } = await serve(a);
      await a.close();
      expect(error).toBeUndefined();
      expectOriginals(served.filter((b) => byTs.has(b.ts)), `${where} after reindex`);
      expect(served.filter((b) => byTs.has(b.ts)).length).toBe(batches.length);
    });
  }

  it('inspect lists a file whose rows are damaged as such, with the problem, instead of failing', async () => {
    let victim = -1;
    const dir = await damagedCopy((db) => {
      const all = seqs(db);
      victim = all[0]!;
      const row = blockRows(db, victim)[0]!;
      rewriteBlock(db, row, [row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] + 7], false);
    });
    const r = await tapedeck('inspect', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { files: Array<{ seq: number; catalogDamaged?: boolean; blocks: number }>; problems: Array<{ code?: string }> };
    const damaged = out.files.filter((f) => f.catalogDamaged === true).map((f) => f.seq);
    expect(damaged).toEqual([victim]);
    expect(out.files.filter((f) => f.seq !== victim).every((f) => f.blocks > 0)).toBe(true);
    expect(JSON.stringify(out.problems)).toContain('TPD_CORRUPT_CATALOG');
  });

  it('damaged rows of the newest file are found at open and the catalog rebuilt, as before', async () => {
    const r = rng(SEED + 100);
    const dir = await damagedCopy((db) => {
      const newest = seqs(db).at(-1)!;
      const rows = blockRows(db, newest);
      const row = rows[Math.floor(r() * rows.length)]!;
      rewriteBlock(db, row, [row[0], row[1], row[2], row[3], row[4], row[5], row[6] + 1, row[7]], false);
    });
    const a = await Archive.open(dir, { readonly: true });
    expect(a.recovery.catalogRebuilds).toBe(1);
    expect(catalogProblems(a).length).toBe(1);
    const { served, error } = await serve(a);
    await a.close();
    expect(error).toBeUndefined();
    expect(served.length).toBe(batches.length);
    expectOriginals(served, 'newest file damaged');
  });

  it('random damages to several old files: each is caught on its first load, whatever the order; every sound file loads exactly its blocks', async () => {
    const r = rng(SEED + 200);
    for (let round = 0; round < 6; round++) {
      const damaged = new Set<number>();
      const dir = await damagedCopy((db) => {
        const old = seqs(db).slice(0, -1);
        for (const seq of old) {
          if (r() < 0.5) continue;
          damaged.add(seq);
          kinds[Math.floor(r() * kinds.length)]!.damage(db, blockRows(db, seq), r);
        }
      });
      const where = `round ${round}, damaged seqs ${[...damaged].join(',')} (seed ${SEED})`;
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(catalogProblems(a), where).toEqual([]);
        const order = [...a.files].sort(() => r() - 0.5);
        for (const f of order) {
          if (damaged.has(f.seq)) {
            expect(() => a.table(f), `${where}: seq ${f.seq}`).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_CATALOG' }) as Error);
            continue;
          }
          const fh = await open(join(dir, f.name), 'r');
          const { blocks } = await scanBlocks(fh, HEADER_BYTES, f.committedBytes).finally(() => fh.close());
          expect(a.table(f).rows, `${where}: seq ${f.seq}`).toEqual(blocks);
        }
        expect(catalogProblems(a).length, where).toBe(damaged.size);
      } finally {
        await a.close();
      }
    }
  });

  it('a late load through a seek (not a walk from the start) also reports the damage before serving', async () => {
    const dir = await damagedCopy((db) => {
      const old = seqs(db)[0]!;
      const row = blockRows(db, old)[0]!;
      rewriteBlock(db, row, [row[0], row[1], row[2], row[3], row[4] + 1, row[5], row[6], row[7]], false);
    });
    const a = await Archive.open(dir, { readonly: true });
    try {
      // Use the archive first: the newest files load and serve fine.
      const c = a.cursor();
      await c.seek('end');
      await c.stateById();
      expect(catalogProblems(a)).toEqual([]);
      const first = a.files[0]!;
      const err = await c.seek({ ts: first.firstTs! }).then(() => c.next()).then(() => undefined, (e: unknown) => e);
      expect(isTapedeckError(err) && err.code, String(err)).toBe('TPD_CORRUPT_CATALOG');
      expect(catalogProblems(a).length).toBe(1);
    } finally {
      await a.close();
    }
  });
});
