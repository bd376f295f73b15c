import { describe, expect, it } from 'vitest';
import { copyFile, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { reindexArchive } from '../storage/reindex.js';
import { readHeaderAt } from '../storage/segment-file.js';
import { decodeHeader, encodeHeader, slotOffset } from '../storage/codec/header.js';
import { xorByte, zeroBytes, tapedeckCli } from './helpers/damage.js';
import { crc32c } from '../storage/codec/crc.js';
import { rng, randomBatches } from './helpers/workload.js';
import { tmpDir } from './helpers/tmp.js';
import { naiveState, plain, readAll as readRaw, readArchive, sorted as sortedRaw } from './helpers/replay.js';
import type { Cursor } from '../storage/cursor.js';
import type { Batch, Value } from '../protocol/value.js';

const readAll = async (c: Cursor): Promise<Batch[]> => plain(await readRaw(c));
const sorted = (m: Map<string, Value>) => plain(sortedRaw(m));

const small = { imageFrequencyBytes: 4096, flushIntervalMs: 0 };

async function writeAll(a: Archive, batches: readonly Batch[], flushEvery = 0): Promise<void> {
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (flushEvery && ++i % flushEvery === 0) await a.writer!.flush();
  }
  await a.writer!.flush();
}

/** Sets the header's format version and, unless told otherwise, recomputes the header CRC32C (bytes 0..40 at 40). */
async function setVersion(file: string, version: number, fixCrc = true): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const h = Buffer.alloc(96);
    await fh.read(h, 0, 96, 0);
    h.writeUInt16LE(version, 8);
    if (fixCrc) h.writeUInt32LE(crc32c(h.subarray(0, 40)), 40);
    await fh.write(h, 0, 96, 0);
  } finally {
    await fh.close();
  }
}

async function committedLength(file: string): Promise<number> {
  return (await readHeaderAt(file)).commit.committedBytes;
}

async function catalogFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('catalog.sqlite'));
}

/** Seeks to random times and compares the state with a naive replay of `batches`. */
async function expectSeeksMatch(a: Archive, batches: readonly Batch[], seed: number, n = 30): Promise<void> {
  const r = rng(seed);
  const first = batches[0]!.ts;
  const last = batches[batches.length - 1]!.ts;
  const c = a.cursor();
  for (let i = 0; i < n; i++) {
    const t = Math.floor(first - 1000 + r() * (last - first + 2000));
    await c.seek({ ts: t });
    expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, t)));
  }
}

describe('files from a newer format version', () => {
  it('a writable open refuses a newer-version current and leaves it byte-identical', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(21, 200);
    const a = await Archive.open(dir, small);
    await writeAll(a, batches);
    await a.close();
    const file = join(dir, 'current');
    await setVersion(file, 2);
    const before = await readFile(file);
    expect(() => decodeHeader(before)).toThrow(expect.objectContaining({ code: 'TPD_FORMAT_VERSION' }));

    await expect(Archive.open(dir, small)).rejects.toMatchObject({ code: 'TPD_FORMAT_VERSION', details: { file: 'current', version: 2 } });
    await expect(Archive.open(dir, small)).rejects.toThrow(/current/);
    expect(await readFile(file)).toStrictEqual(before);
    expect((await readdir(dir)).filter((n) => n.startsWith('current'))).toEqual(['current']);
    // The failed open released the lock: a read-only open reports the file as a problem.
    const b = await Archive.open(dir, { readonly: true });
    expect(b.problems).toContainEqual(expect.objectContaining({ file: 'current', code: 'TPD_FORMAT_VERSION' }));
    await b.close();
    const report = await verifyArchive(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ file: 'current', code: 'TPD_FORMAT_VERSION' }));
    expect(await readFile(file)).toStrictEqual(before);
  });

  it('a writable open refuses a newer-version rotated file; a read-only open does not call it missing', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(22, 1500);
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 20_000 });
    await writeAll(a, batches, 300);
    const rotated = a.files[0]!.name;
    expect(rotated).toMatch(/^\d{4}-/);
    await a.close();
    const file = join(dir, rotated);
    await setVersion(file, 7);
    const before = await readFile(file);
    const names = (await readdir(dir)).sort();

    await expect(Archive.open(dir, small)).rejects.toMatchObject({ code: 'TPD_FORMAT_VERSION', details: { file: rotated } });
    expect(await readFile(file)).toStrictEqual(before);
    expect((await readdir(dir)).sort()).toEqual(names);

    const b = await Archive.open(dir, { readonly: true });
    const mine = b.problems.filter((p) => p.file === rotated);
    expect(mine[0]).toMatchObject({ code: 'TPD_FORMAT_VERSION' });
    expect(mine.some((p) => /not on disk/.test(p.message))).toBe(false);
    await b.close();
  });

  it('a flipped version byte with a stale header CRC is a corrupt header, not a newer version', async () => {
    const h = encodeHeader({ version: 1, archiveId: '0123456789abcdef', seq: 0, createdUs: 0 });
    h[8] = (h[8] as number) ^ 0x02;
    expect(() => decodeHeader(h)).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_HEADER' }));

    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    a.writer!.append([['/x', 1]], 5);
    await a.close();
    await setVersion(join(dir, 'current'), 9, false);
    const report = await verifyArchive(dir);
    expect(report.problems[0]).toMatchObject({ file: 'current', code: 'TPD_CORRUPT_HEADER' });
    const b = await Archive.open(dir, { readonly: true });
    expect(b.problems[0]).toMatchObject({ file: 'current', code: 'TPD_CORRUPT_HEADER' });
    await b.close();
  });

  it('a current with a corrupt header that the catalog knows is moved aside; older files stay, recording goes on, again and again', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(28, 300);
    let a = await Archive.open(dir, small);
    await writeAll(a, batches.slice(0, 200));
    await a.writer!.rotate();
    await writeAll(a, batches.slice(200));
    await a.close();
    await setVersion(join(dir, 'current'), 9, false); // header CRC now fails
    a = await Archive.open(dir, small);
    expect(a.problems).toContainEqual(expect.objectContaining({ file: 'current', message: expect.stringMatching(/^moved aside to current\.bad-/) }));
    expect(await readAll(a.cursor())).toStrictEqual(batches.slice(0, 200));
    const ts = a.writer!.append([['/after', 1]]);
    await a.writer!.flush();
    await a.close();
    a = await Archive.open(dir, small);
    expect(a.problems).toEqual([]);
    const got = await readAll(a.cursor());
    expect(got.slice(0, 200)).toStrictEqual(batches.slice(0, 200));
    expect(got.slice(200)).toStrictEqual([{ ts, updates: [['/after', 1]] }]);
    await a.close();
    expect((await readdir(dir)).filter((n) => n.startsWith('current.bad-'))).toHaveLength(1);
  });
});

describe('torn tail', () => {
  it('is cut when the archive is opened for writing, and new data follows the committed end', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(23, 400);
    const file = join(dir, 'current');
    let a = await Archive.open(dir, small);
    await writeAll(a, batches.slice(0, 300), 100);
    await a.close();
    const committed = await committedLength(file);
    expect((await stat(file)).size).toBe(committed);
    const fh = await open(file, 'a');
    await fh.write(Buffer.alloc(7000, 0xcd));
    await fh.close();
    expect((await stat(file)).size).toBe(committed + 7000);

    a = await Archive.open(dir, small);
    expect((await stat(file)).size).toBe(committed);
    await writeAll(a, batches.slice(300));
    const after = await committedLength(file);
    expect(after).toBeGreaterThan(committed);
    expect((await stat(file)).size).toBe(after);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    await a.close();
    expect(await readArchive(dir).then(plain)).toStrictEqual(batches);
    const report = await verifyArchive(dir);
    expect(report.ok).toBe(true);
    expect(report.files[0]!.uncommittedTailBytes).toBe(0);
  });
});

describe('catalog out of step with the files', () => {
  it('a catalog that lags the files (across rotations) is brought up to date', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(27, 3000, { paths: 150, maxUpdates: 20 });
    let a = await Archive.open(dir, { ...small, rotateSizeBytes: 30_000 });
    await writeAll(a, batches.slice(0, 800), 200);
    const filesThen = a.files.length;
    const copies: string[] = [];
    for (const n of await catalogFiles(dir)) {
      await copyFile(join(dir, n), join(dir, `${n}.aside`));
      copies.push(n);
    }
    expect(copies).toContain('catalog.sqlite');
    await writeAll(a, batches.slice(800), 250);
    expect(a.files.length).toBeGreaterThan(filesThen + 1);
    await a.close();
    for (const n of await catalogFiles(dir)) if (!n.endsWith('.aside')) await rm(join(dir, n));
    for (const n of copies) await copyFile(join(dir, `${n}.aside`), join(dir, n));
    for (const n of copies) await rm(join(dir, `${n}.aside`));

    for (const readonly of [true, false]) {
      a = await Archive.open(dir, { ...small, readonly });
      expect(a.problems).toEqual([]);
      expect(await readAll(a.cursor())).toStrictEqual(batches);
      await expectSeeksMatch(a, batches, readonly ? 1 : 2);
      await a.close();
    }
    // The writable open repaired the catalog: a read-only open sees everything without scanning.
    a = await Archive.open(dir, { readonly: true });
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    await a.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('a catalog ahead of current is corrected: exactly the older file reads back, and recording goes on', async () => {
    const dir = await tmpDir();
    // The second part brings paths the first never used, so the catalog's dictionary is ahead too.
    const older = randomBatches(25, 600, { paths: 40, maxUpdates: 10 });
    const lastOld = older[older.length - 1]!.ts;
    const newer: Batch[] = randomBatches(26, 600, { paths: 40, maxUpdates: 10, startTs: lastOld + 1_000_000 })
      .map((b, i) => ({ ts: b.ts, updates: [...b.updates, [`/only-later/${i % 7}`, i] as [string, Value]] }));
    let a = await Archive.open(dir, small);
    await writeAll(a, older, 150);
    const oldPaths = a.paths.length;
    const copy = join(dir, 'current.older');
    await copyFile(join(dir, 'current'), copy);
    await writeAll(a, newer, 150);
    expect(a.paths.length).toBeGreaterThan(oldPaths);
    await a.close();
    await rm(join(dir, 'current'));
    await copyFile(copy, join(dir, 'current'));
    await rm(copy);
    const bytes = await readFile(join(dir, 'current'));

    // Read-only: the catalog is left as it is, and the view is exactly the older file.
    a = await Archive.open(dir, { readonly: true });
    expect(await readAll(a.cursor())).toStrictEqual(older);
    expect(a.paths).toHaveLength(oldPaths);
    expect(a.lastTs).toBe(lastOld);
    await expectSeeksMatch(a, older, 3);
    await a.close();
    expect(await readFile(join(dir, 'current'))).toStrictEqual(bytes);

    // Writable: the catalog is corrected and recording resumes after the older file's end.
    a = await Archive.open(dir, small);
    expect(await readAll(a.cursor())).toStrictEqual(older);
    expect(a.paths).toHaveLength(oldPaths);
    await expectSeeksMatch(a, older, 4);
    expect((await verifyArchive(dir)).ok).toBe(true);
    const more: Batch[] = [
      { ts: lastOld + 10, updates: [['/only-later/3', 'again'], ['/brand-new', 1]] },
      { ts: lastOld + 20, updates: [['/only-later/5', null]] },
    ];
    await writeAll(a, more);
    await a.close();
    const all = [...older, ...more];
    expect(await readArchive(dir).then(plain)).toStrictEqual(all);
    expect((await verifyArchive(dir)).ok).toBe(true);
    // The files alone say the same thing: the paths reused after the cut are defined in the file.
    a = await reindexArchive(dir, small);
    expect(a.problems).toEqual([]);
    expect(await readAll(a.cursor())).toStrictEqual(all);
    await expectSeeksMatch(a, all, 5);
    await a.close();
  });
});

describe('a damaged commit slot', () => {
  it('open recovers every intact block past the surviving slot, reports the damage, and a writable open rewrites the slots', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(31, 600);
    let a = await Archive.open(dir, small);
    await writeAll(a, batches, 100);
    await a.close();
    const file = join(dir, 'current');
    const h = await readHeaderAt(file);
    expect(h.commit.generation).toBeGreaterThan(2);
    // The newest slot's committed length: the older slot now wins and commits less.
    await xorByte(file, slotOffset(h.commit.generation) + 9, 0x10);
    const bytes = await readFile(file);

    const report = await verifyArchive(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ file: 'current', code: 'TPD_CORRUPT_HEADER', message: expect.stringMatching(/^commit slot [AB] fails its CRC32C/) }));

    a = await Archive.open(dir, { readonly: true });
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    expect(a.recovery).toMatchObject({ damagedSlots: 1, cutBytes: 0 });
    expect(a.recovery.recoveredBlocks).toBeGreaterThan(0);
    expect(a.problems).toContainEqual(expect.objectContaining({ file: 'current', code: 'TPD_CORRUPT_HEADER' }));
    await a.close();
    expect(await readFile(file)).toStrictEqual(bytes);

    a = await Archive.open(dir, small);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    const more = randomBatches(32, 50, { startTs: batches.at(-1)!.ts + 1000 });
    await writeAll(a, more);
    await a.close();
    expect(await readArchive(dir).then(plain)).toStrictEqual([...batches, ...more]);
    expect((await verifyArchive(dir)).ok).toBe(true);
  });
});

describe('a damaged catalog', () => {
  async function recorded(dir: string): Promise<Batch[]> {
    const batches = randomBatches(33, 1500, { paths: 60 });
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 30_000 });
    await writeAll(a, batches, 200);
    await a.close();
    return batches;
  }

  it('a zeroed page: verify names it, read-only opens and the CLI index the files into memory, a writable open moves it aside', async () => {
    const dir = await tmpDir();
    const batches = await recorded(dir);
    const catalog = join(dir, 'catalog.sqlite');
    expect(await zeroBytes(catalog, 4096, 4096)).toBe(true);
    const bytes = await readFile(catalog);

    const report = await verifyArchive(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ file: 'catalog.sqlite', code: 'TPD_CORRUPT_CATALOG' }));

    let a = await Archive.open(dir, { readonly: true });
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    expect(a.recovery.catalogRebuilds).toBe(1);
    expect(a.problems).toContainEqual(expect.objectContaining({ file: 'catalog.sqlite', code: 'TPD_CORRUPT_CATALOG' }));
    await a.close();

    const inspect = await tapedeckCli('inspect', dir, '--json');
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout).batches).toBe(batches.length);
    const out = join(dir, '..', `${dir.split('/').at(-1)}-export.ndjson`);
    const exp = await tapedeckCli('export', '--archive', dir, '--out', out);
    expect(exp.code, exp.stderr).toBe(0);
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(batches.length);
    await rm(out);
    expect(await readFile(catalog)).toStrictEqual(bytes);
    // Only SQLite's empty -wal/-shm, which any read-only open of a WAL database leaves, sit beside it.
    expect((await catalogFiles(dir)).filter((n) => !/^catalog\.sqlite(-wal|-shm)?$/.test(n))).toEqual([]);

    a = await Archive.open(dir, small);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    expect(a.problems).toContainEqual(expect.objectContaining({ file: 'catalog.sqlite', message: expect.stringMatching(/moved aside to catalog\.sqlite\.bad-\d+/) }));
    await a.close();
    expect((await catalogFiles(dir)).filter((n) => n.startsWith('catalog.sqlite.bad-'))).toHaveLength(1);
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('a changed byte inside a row, which SQLite does not check, fails the row checksum and the catalog is rebuilt', async () => {
    const dir = await tmpDir();
    const batches = await recorded(dir);
    const catalog = join(dir, 'catalog.sqlite');
    const path = batches[0]!.updates[0]![0];
    // The dictionary is stored deflated (catalog schema 3): change a byte inside its first row's blob.
    const db = new Database(catalog, { readonly: true });
    const blob = db.prepare('SELECT defs FROM paths ORDER BY first_id LIMIT 1').pluck().get() as Buffer;
    db.close();
    const at = (await readFile(catalog)).indexOf(blob);
    expect(at).toBeGreaterThan(0);
    await xorByte(catalog, at + Math.floor(blob.length / 2), 0x01);

    // SQLite's checks do not look inside a row's values; the row checksum does.
    expect((await verifyArchive(dir)).problems).toContainEqual(expect.objectContaining({ file: 'catalog.sqlite', code: 'TPD_CORRUPT_CATALOG' }));
    for (const readonly of [true, false]) {
      const a = await Archive.open(dir, { ...small, readonly });
      expect(a.paths).toContain(path);
      expect(await readAll(a.cursor())).toStrictEqual(batches);
      expect(a.recovery.catalogRebuilds).toBe(1);
      await a.close();
    }
    expect((await verifyArchive(dir)).ok).toBe(true);
  });
});
