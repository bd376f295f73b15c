/**
 * The catalog's dictionary (schema 3): paths stored by runs of up to PATHS_PER_ROW_MAX per
 * row, deflated, each row checksummed; schema-2 catalogs (one row per path) upgraded by a
 * writable open; and the WAL kept small however many commits are recorded (issue 17: the
 * catalog was more than half of a remote_write archive's bytes).
 *
 * CATALOG_PATHS_SEED=<n> replays the randomized damages; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { Archive } from '../storage/archive.js';
import { Catalog, PATHS_PER_ROW_MAX, rowCrc, type FileRow, type PathRow } from '../storage/catalog.js';
import { crc32c } from '../storage/codec/crc.js';
import { verifyArchive } from '../storage/verify.js';
import { randomBatches, rng } from './helpers/workload.js';
import { tmpDir } from './helpers/tmp.js';
import { plain, readAll } from './helpers/replay.js';
import { xorByte } from './helpers/damage.js';

const SEED = Number(process.env.CATALOG_PATHS_SEED ?? Date.now() % 100_000);
console.log(`catalog-paths: CATALOG_PATHS_SEED=${SEED}`);

/** Paths shaped like remote_write's (node_exporter series, about 95 bytes each). */
function promPaths(n: number, from = 0): PathRow[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { id: i, path: `/prom/node_metric_${i % 20}_total/device=eth${Math.floor(i / 2000)}/instance=host-${String(Math.floor(i / 20) % 100).padStart(3, '0')}.dc1.example.net:9100/job=node`, firstTs: 1_700_000_000_000_000 + Math.floor(i / 7) };
  });
}

function fileRow(seq: number, indexedBytes = 96): FileRow {
  return { seq, name: 'current', location: 'local', firstTs: null, lastTs: null, indexedBytes, sealed: false };
}

async function catalogBytes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of await readdir(dir)) if (n.startsWith('catalog.sqlite')) out[n] = (await stat(join(dir, n))).size;
  return out;
}

describe('catalog dictionary', () => {
  it('reads back every path in id order, whatever runs they were recorded in, and skips ids it holds', async () => {
    const dir = await tmpDir();
    const file = join(dir, 'catalog.sqlite');
    const all = promPaths(3 * PATHS_PER_ROW_MAX + 17);
    const r = rng(SEED);
    let c = new Catalog(file);
    let at = 0;
    while (at < all.length) {
      const n = Math.min(all.length - at, 1 + Math.floor(r() * (r() < 0.5 ? 5 : 1500)));
      // Every file starts with the whole dictionary: ids already held come again.
      const again = all.slice(0, Math.floor(r() * at));
      c.recordFile(fileRow(0), [], [...again, ...all.slice(at, at + n)].reverse());
      at += n;
      if (r() < 0.3) {
        c.close();
        c = new Catalog(file);
      }
    }
    expect(c.paths()).toEqual(all);
    expect(c.audit(true)).toEqual([]);
    const counts = c.db.prepare('SELECT count FROM paths ORDER BY first_id').pluck().all() as number[];
    expect(counts.every((n) => n <= PATHS_PER_ROW_MAX)).toBe(true);
    expect(counts.length).toBe(Math.ceil(all.length / PATHS_PER_ROW_MAX));
    c.close();
  });

  it('forgets the paths from an id inside a row, and takes new ones after them', async () => {
    const dir = await tmpDir();
    const c = new Catalog(join(dir, 'catalog.sqlite'));
    const all = promPaths(2 * PATHS_PER_ROW_MAX + 100);
    c.recordFile(fileRow(0), [], all);
    for (const from of [2 * PATHS_PER_ROW_MAX + 50, PATHS_PER_ROW_MAX + 3, PATHS_PER_ROW_MAX, 1]) {
      c.forgetPathsFrom(from);
      expect(c.paths()).toEqual(all.slice(0, from));
    }
    const next = promPaths(5, 1).map((p) => ({ ...p, path: `${p.path}/again` }));
    c.recordFile(fileRow(0), [], next);
    expect(c.paths()).toEqual([all[0], ...next]);
    expect(c.audit(true)).toEqual([]);
    c.close();
  });

  it('stores 10 000 remote_write paths in under 16 bytes each, WAL included', async () => {
    const dir = await tmpDir();
    const c = new Catalog(join(dir, 'catalog.sqlite'));
    c.recordFile(fileRow(0), [], promPaths(10_000));
    const bytes = await catalogBytes(dir);
    const total = Object.values(bytes).reduce((a, b) => a + b, 0);
    // Schema 2 took about 2.4 MB of table and index pages for these, plus as much WAL.
    expect(total, JSON.stringify(bytes)).toBeLessThan(10_000 * 16);
    c.close();
  });

  it('keeps the WAL small over thousands of one-block commits', async () => {
    const dir = await tmpDir();
    const c = new Catalog(join(dir, 'catalog.sqlite'));
    let offset = 96;
    for (let i = 0; i < 3000; i++) {
      c.recordFile(fileRow(0, offset + 100), [{ offset, frameBytes: 100, type: 2, firstTs: i, lastTs: i, batches: 1, updates: 10 }], i === 0 ? promPaths(50) : []);
      offset += 100;
    }
    const bytes = await catalogBytes(dir);
    // SQLite's default lets it reach 1 000 pages (4 MiB) and keeps the file at that size.
    expect(bytes['catalog.sqlite-wal'] ?? 0, JSON.stringify(bytes)).toBeLessThan(512 * 1024);
    expect(c.blocks(0)).toHaveLength(3000);
    c.close();
  });
});

describe('catalog checkpoints', () => {
  it('a bulk insert never waits for a reader in another connection holding an old snapshot', async () => {
    const dir = await tmpDir();
    const file = join(dir, 'catalog.sqlite');
    const c = new Catalog(file);
    c.recordFile(fileRow(0), [], promPaths(1));
    // Long enough that waiting for the reader would hang the test, not slow it.
    c.db.pragma('busy_timeout = 600000');
    const reader = new Database(file, { readonly: true });
    try {
      reader.prepare('BEGIN').run();
      reader.prepare('SELECT count(*) FROM paths').get();
      c.recordFile(fileRow(0), [], promPaths(5000));
      expect(c.paths()).toHaveLength(5000);
      expect(c.db.pragma('busy_timeout', { simple: true })).toBe(600000);
      reader.prepare('COMMIT').run();
    } finally {
      reader.close();
    }
    c.recordFile(fileRow(0), [], promPaths(5000, 5000));
    expect((await catalogBytes(dir))['catalog.sqlite-wal']).toBe(0);
    c.close();
  });
});

describe('catalog dictionary damage', () => {
  /** A catalog of 2 500 paths with `damage` applied to it by plain SQL. */
  async function damaged(damage: (db: Database.Database) => void): Promise<Catalog> {
    const dir = await tmpDir();
    const file = join(dir, 'catalog.sqlite');
    const c = new Catalog(file);
    c.recordFile(fileRow(0), [], promPaths(2500));
    c.close();
    const db = new Database(file);
    try {
      damage(db);
    } finally {
      db.close();
    }
    return new Catalog(file);
  }

  it('a flipped bit anywhere in a row fails its checksum', async () => {
    const r = rng(SEED + 1);
    for (let round = 0; round < 8; round++) {
      let where = '';
      const c = await damaged((db) => {
        const rows = db.prepare('SELECT rowid, first_id, count, first_ts, defs FROM paths').raw().all() as Array<[number, number, number, number, Buffer]>;
        const [rowid, firstId, count, firstTs, defs] = rows[Math.floor(r() * rows.length)] as [number, number, number, number, Buffer];
        const col = Math.floor(r() * 4);
        if (col === 3) {
          const at = Math.floor(r() * defs.length);
          defs[at] = (defs[at] as number) ^ (1 << Math.floor(r() * 8));
          where = `defs byte ${at}`;
          db.prepare('UPDATE paths SET defs = ? WHERE rowid = ?').run(defs, rowid);
        } else {
          const name = ['first_id', 'count', 'first_ts'][col] as string;
          const v = [firstId, count, firstTs][col] as number;
          where = name;
          // first_id is the rowid: move the row to a free id.
          db.prepare(`UPDATE paths SET ${name} = ? WHERE rowid = ?`).run(col === 0 ? v + 100_000 : v ^ 1, rowid);
        }
      });
      expect(() => c.paths(), where).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_CATALOG' }));
      expect(c.audit().length, where).toBeGreaterThan(0);
      c.close();
    }
  });

  it('a row that checks but does not decode, or holds other ids, is damage, not a crash', async () => {
    const cases: Array<[string, (first: number, count: number) => Buffer]> = [
      ['not deflate', () => Buffer.from([0xff, 0xff, 0xff, 0x00])],
      ['deflated garbage', () => deflateRawSync(Buffer.from([5, 1, 2, 3]))],
      ['fewer paths than count', (first) => deflateRawSync(Buffer.from([1, first, 0, 2, 0x2f, 0x61]))],
      ['a deflate bomb', () => deflateRawSync(Buffer.alloc(80 * 1024 * 1024))],
    ];
    for (const [name, blob] of cases) {
      const c = await damaged((db) => {
        const [first, count, firstTs] = db.prepare('SELECT first_id, count, first_ts FROM paths ORDER BY first_id LIMIT 1').raw().get() as [number, number, number];
        const defs = blob(first, count);
        db.prepare('UPDATE paths SET defs = ?, crc = ? WHERE first_id = ?').run(defs, rowCrc('paths', [first, count, firstTs, defs]), first);
      });
      expect(() => c.paths(), name).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_CATALOG' }));
      c.close();
    }
  });
});

describe('a damaged dictionary row in an archive', () => {
  it('a changed byte inside a row, which SQLite does not check, fails the row checksum and the catalog is rebuilt', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(33, 1500, { paths: 60 });
    const small = { imageFrequencyBytes: 4096, flushIntervalMs: 0 };
    let a = await Archive.open(dir, { ...small, rotateSizeBytes: 30_000 });
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    await a.close();
    const catalog = join(dir, 'catalog.sqlite');
    const db = new Database(catalog, { readonly: true });
    const blob = db.prepare('SELECT defs FROM paths ORDER BY first_id LIMIT 1').pluck().get() as Buffer;
    db.close();
    const at = (await readFile(catalog)).indexOf(blob);
    expect(at).toBeGreaterThan(0);
    await xorByte(catalog, at + Math.floor(blob.length / 2), 0x01);

    expect((await verifyArchive(dir)).problems).toContainEqual(expect.objectContaining({ file: 'catalog.sqlite', code: 'TPD_CORRUPT_CATALOG' }));
    for (const readonly of [true, false]) {
      a = await Archive.open(dir, { ...small, readonly });
      expect(a.paths).toContain(batches[0]!.updates[0]![0]);
      expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
      expect(a.recovery.catalogRebuilds).toBe(1);
      await a.close();
    }
    expect((await verifyArchive(dir)).ok).toBe(true);
  });
});

describe('catalog schema 2 (one row per path)', () => {
  /** Rewrites an archive's catalog into schema 2's dictionary table, rows checksummed as schema 2 did. */
  function downgrade(file: string): PathRow[] {
    const c = new Catalog(file);
    const paths = c.paths();
    c.close();
    const db = new Database(file);
    db.exec(`DROP TABLE paths;
      CREATE TABLE paths(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, first_ts INTEGER NOT NULL, crc INTEGER);
      UPDATE meta SET value = '2', crc = ${crc32c(JSON.stringify(['meta', 'schema_version', '2']))} WHERE key = 'schema_version';`);
    const ins = db.prepare('INSERT INTO paths(id, path, first_ts, crc) VALUES (?, ?, ?, ?)');
    for (const p of paths) ins.run(p.id, p.path, p.firstTs, crc32c(JSON.stringify(['paths', p.id, p.path, p.firstTs])));
    db.close();
    return paths;
  }

  it('is upgraded by a writable open; a read-only open indexes the files into memory and leaves it', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(SEED, 300, { paths: 400 });
    const small = { imageFrequencyBytes: 4000, flushIntervalMs: 0, rotateSizeBytes: 20_000 };
    let a = await Archive.open(dir, small);
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    await a.close();
    const file = join(dir, 'catalog.sqlite');
    const paths = downgrade(file);
    expect(paths.length).toBeGreaterThan(100);

    a = await Archive.open(dir, { readonly: true });
    expect(a.recovery.catalogRebuilds).toBe(1);
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
    await a.close();
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe('2');
    db.close();

    a = await Archive.open(dir, small);
    expect(a.problems).toEqual([]);
    expect(a.recovery.catalogRebuilds).toBe(0);
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
    await a.close();
    const c = new Catalog(file);
    expect(c.getMeta('schema_version')).toBe('3');
    expect(c.paths()).toEqual(paths);
    c.close();
    expect((await readdir(dir)).filter((n) => n.includes('.bad-'))).toEqual([]);
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('with a damaged row is rebuilt from the files by a writable open, not upgraded with the damage', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(SEED + 2, 200, { paths: 300 });
    let a = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    await a.close();
    const file = join(dir, 'catalog.sqlite');
    const paths = downgrade(file);
    const victim = paths[Math.floor(rng(SEED + 3)() * paths.length)] as PathRow;
    const db = new Database(file);
    // Another valid path, its schema-2 checksum left as it was.
    db.prepare('UPDATE paths SET path = ? WHERE id = ?').run(`${victim.path}x`, victim.id);
    db.close();

    a = await Archive.open(dir, { flushIntervalMs: 0 });
    expect(a.recovery.catalogRebuilds).toBe(1);
    expect(a.paths[victim.id]).toBe(victim.path);
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
    await a.close();
    const c = new Catalog(file);
    expect(c.paths()).toEqual(paths);
    c.close();
  });
});
