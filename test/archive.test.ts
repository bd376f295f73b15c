import { describe, expect, it } from 'vitest';
import { readdir, stat, truncate, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { crc32c } from '../storage/codec/crc.js';
import { reindexArchive } from '../storage/reindex.js';
import { rng, randomBatches, fabricBatches } from './helpers/workload.js';
import { tmpDir } from './helpers/tmp.js';
import { naiveState, plain, readAll as readRaw, sorted as sortedRaw } from './helpers/replay.js';
import type { Cursor } from '../storage/cursor.js';
import type { Value } from '../protocol/value.js';

const readAll = async (c: Cursor): Promise<Batch[]> => plain(await readRaw(c));
const sorted = (m: Map<string, Value>) => plain(sortedRaw(m));
import type { Batch } from '../protocol/value.js';

const small = { imageFrequencyBytes: 4096, flushIntervalMs: 0 };

/** Flips the lowest bit of the byte at `offset` of `file`. */
async function flipBit(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] = b[0]! ^ 0x01;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}

async function writeAll(a: Archive, batches: Batch[], flushEvery = 0): Promise<void> {
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (flushEvery && ++i % flushEvery === 0) await a.writer!.flush();
  }
  await a.writer!.flush();
}

describe('archive round trip', () => {
  it('reads back random workloads bit-exact with batch boundaries and timestamps kept', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(11, 3000, { paths: 200, maxUpdates: 40 });
    const a = await Archive.open(dir, small);
    await writeAll(a, batches, 500);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    await a.close();
    const b = await Archive.open(dir, { readonly: true });
    expect(await readAll(b.cursor())).toStrictEqual(batches);
    await b.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('keeps timestamps strictly increasing when the clock repeats or goes backwards', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    const w = a.writer!;
    const t1 = w.append([['/x', 1]], 1000);
    const t2 = w.append([['/x', 2]], 1000);
    const t3 = w.append([['/x', 3]], 10);
    const t4 = w.append([['/x', 4]]);
    expect([t1, t2, t3]).toEqual([1000, 1001, 1002]);
    expect(t4).toBeGreaterThan(t3);
    await w.flush();
    expect((await readAll(a.cursor())).map((b) => b.ts)).toEqual([t1, t2, t3, t4]);
    await a.close();
  });

  it('rejects bad batches whole and keeps what was accepted', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    const w = a.writer!;
    w.append([['/ok', 1]], 10);
    expect(() => w.append([['/ok', 2], ['no-slash', 3]], 20)).toThrow(expect.objectContaining({ code: 'TPD_BAD_PATH' }));
    expect(() => w.append([['/ok', 2], ['/f', (() => 1) as never]], 20)).toThrow(expect.objectContaining({ code: 'TPD_BAD_ARGUMENT' }));
    expect(() => w.append('nope' as never, 20)).toThrow(expect.objectContaining({ code: 'TPD_BAD_ARGUMENT' }));
    expect(() => w.append([['/ok', 2]], -5)).toThrow(expect.objectContaining({ code: 'TPD_BAD_ARGUMENT' }));
    w.append([['/ok', 3]], 30);
    await w.flush();
    expect(await readAll(a.cursor())).toStrictEqual([{ ts: 10, updates: [['/ok', 1]] }, { ts: 30, updates: [['/ok', 3]] }]);
    expect(a.paths).toEqual(['/ok']);
    await a.close();
  });
});

describe('seek', () => {
  it('state after seeking to random times equals naive replay, with and without a filter', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(5, 4000, { paths: 120, maxUpdates: 30 });
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 40_000 });
    await writeAll(a, batches, 700);
    expect(a.files.length).toBeGreaterThan(2);
    const r = rng(99);
    const first = batches[0]!.ts;
    const last = batches[batches.length - 1]!.ts;
    for (const filter of [undefined, ['/w5/dev-1/*'], ['/**/m1*']]) {
      const c = a.cursor(filter ? { filter } : {});
      for (let i = 0; i < 40; i++) {
        const t = Math.floor(first - 1000 + r() * (last - first + 2000));
        await c.seek({ ts: t });
        expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, t, filter)));
        // The next batch is the first one after t.
        const nextB = batches.find((b) => b.ts > t && b.updates.some(([p]) => !filter || naiveState([b], b.ts, filter).has(p)));
        expect((await c.next())?.ts).toBe(nextB?.ts);
      }
    }
    await a.close();
  });

  it('steps back and forward by whole batches across blocks and files', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(8, 1500, { paths: 30, maxUpdates: 10 });
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 20_000 });
    await writeAll(a, batches, 300);
    const c = a.cursor();
    await c.seek({ ts: batches[1000]!.ts });
    await c.seek({ batches: -128 });
    expect(c.pos).toBe(batches[872]!.ts);
    expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, batches[872]!.ts)));
    expect((await c.next())?.ts).toBe(batches[873]!.ts);
    await c.seek({ batches: 100 });
    expect(c.pos).toBe(batches[973]!.ts);
    await c.seek({ batches: -1 });
    expect(c.pos).toBe(batches[972]!.ts);
    await c.seek({ batches: -5000 });
    expect(c.pos).toBeNull();
    expect((await c.next())?.ts).toBe(batches[0]!.ts);
    await c.seek('end');
    expect(c.pos).toBe(batches[batches.length - 1]!.ts);
    expect(await c.next()).toBeNull();
    expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, Infinity)));
    await a.close();
  });

  it('refuses a step past STORAGE_LIMITS.seekBatchesMax either way, naming the limit, and takes one at it', async () => {
    const a = await Archive.open(await tmpDir(), small);
    await writeAll(a, [{ ts: 1, updates: [['/a', 1]] }]);
    const c = a.cursor();
    await c.seek('end');
    const max = STORAGE_LIMITS.seekBatchesMax;
    for (const n of [-(max + 1), max + 1, 0.5]) {
      await expect(c.seek({ batches: n })).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: `seek by batches takes an integer within ±${max} (STORAGE_LIMITS.seekBatchesMax), got ${n}` });
    }
    expect(c.pos).toBe(1);
    await c.seek({ batches: -max });
    expect(c.pos).toBeNull();
    await a.close();
  });
});

describe('rotation and tail', () => {
  it('rotates by size into RFC 3339 names, each file starting with a full image', async () => {
    const dir = await tmpDir();
    const batches = [...fabricBatches(1, 16, 400)];
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 12_000 });
    await writeAll(a, batches, 50);
    const names = (await readdir(dir)).filter((n) => /^\d{4}-/.test(n)).sort();
    expect(names.length).toBeGreaterThan(1);
    for (const n of names) expect(Number.isNaN(Date.parse(n))).toBe(false);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    // Seeking into the second file's first batch needs only that file's image.
    const second = a.files[1]!;
    const c = a.cursor();
    await c.seek({ ts: second.firstTs! });
    expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, second.firstTs!)));
    await a.close();
  });

  it('tells a tailing cursor about each commit and crosses into the rotated file', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    const c = a.cursor();
    await c.seek('end');
    const got: Batch[] = [];
    const reader = (async () => {
      while (got.length < 30) {
        const b = await c.next();
        if (b) got.push(b);
        else await c.waitForCommit();
      }
    })();
    const sent: Batch[] = [];
    for (let i = 0; i < 30; i++) {
      const b: Batch = { ts: 1_000_000 + i, updates: [[`/t/${i % 3}`, i]] };
      sent.push(b);
      a.writer!.append(b.updates, b.ts);
      if (i % 5 === 4) await a.writer!.flush();
      if (i === 12) await a.writer!.rotate();
    }
    await reader;
    expect(got).toStrictEqual(sent);
    await a.close();
  });

  it('rotates on rotate_interval', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { ...small, rotateIntervalMs: 50 });
    a.writer!.append([['/x', 1]]);
    await new Promise<void>((resolve) => a.once('rotate', () => resolve()));
    expect(a.files[0]!.sealed).toBe(true);
    await a.close();
  });
});

describe('recovery', () => {
  it('reopens, cuts a torn tail and keeps committed data', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(2, 300);
    let a = await Archive.open(dir, small);
    await writeAll(a, batches);
    await a.close();
    // Simulate a crash mid-write: garbage after the committed length.
    const fh = await open(join(dir, 'current'), 'a');
    await fh.write(Buffer.alloc(5000, 0xab));
    await fh.close();
    const report = await verifyArchive(dir);
    expect(report.ok).toBe(true);
    expect(report.files[0]!.uncommittedTailBytes).toBe(5000);
    a = await Archive.open(dir, small);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    a.writer!.append([['/after', 1]], batches[batches.length - 1]!.ts + 1);
    await a.writer!.flush();
    await a.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
    a = await Archive.open(dir, { readonly: true });
    expect((await readAll(a.cursor())).length).toBe(batches.length + 1);
    await a.close();
  });

  it('rebuilds a missing catalog and reindex gives the same view', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(4, 2000);
    let a = await Archive.open(dir, { ...small, rotateSizeBytes: 25_000 });
    await writeAll(a, batches, 400);
    const files = a.files.length;
    await a.close();
    for (const f of await readdir(dir)) if (f.startsWith('catalog')) await truncate(join(dir, f), 0).catch(() => undefined);
    a = await reindexArchive(dir, small);
    expect(a.files.length).toBe(files);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    const c = a.cursor();
    await c.seek({ ts: batches[1234]!.ts });
    expect(sorted(await c.state())).toStrictEqual(sorted(naiveState(batches, batches[1234]!.ts)));
    await a.close();
  });

  it('detects a flipped byte in a committed block: verify names file and offset, readers get TPD_CORRUPT_BLOCK', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(6, 500);
    let a = await Archive.open(dir, small);
    await writeAll(a, batches);
    const row = a.table(a.files[0]!).rows.find((r) => r.type === 2)!;
    await a.close();
    await flipBit(join(dir, 'current'), row.offset + 60);
    const report = await verifyArchive(dir);
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ file: 'current', offset: row.offset, code: 'TPD_CORRUPT_BLOCK' });
    a = await Archive.open(dir, { readonly: true });
    await expect(readAll(a.cursor())).rejects.toMatchObject({ code: 'TPD_CORRUPT_BLOCK', details: { file: 'current', offset: row.offset } });
    await a.close();
  });

  it('opens for writing over a bad block among the newest: seals current, starts afresh, reindex works', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(7, 500);
    let a = await Archive.open(dir, small);
    await writeAll(a, batches);
    const rows = a.table(a.files[0]!).rows;
    // The newest block that the writer reads back to rebuild the latest state.
    const row = rows.filter((r) => r.type !== 1).at(-1)!;
    await a.close();
    await flipBit(join(dir, 'current'), row.offset + 60);
    a = await Archive.open(dir, small);
    expect(a.problems).toContainEqual(expect.objectContaining({ file: 'current', code: 'TPD_CORRUPT_BLOCK' }));
    // The damaged file was sealed under a rotated name; recording goes on in a new current.
    expect(a.files.map((f) => f.name)).toEqual([expect.stringMatching(/^\d{4}-/), 'current']);
    const ts = a.writer!.append([['/after', 1]]);
    await a.writer!.flush();
    const c = a.cursor({ filter: ['/after'] });
    await c.seek({ ts });
    expect(await c.state()).toStrictEqual(new Map([['/after', 1]]));
    await a.close();
    a = await reindexArchive(dir, small);
    expect(a.files).toHaveLength(2);
    await a.close();
    const report = await verifyArchive(dir);
    expect(report.problems).toContainEqual(expect.objectContaining({ offset: row.offset, code: 'TPD_CORRUPT_BLOCK' }));
  });

  it('refuses a second writer and files from a newer format version', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    await expect(Archive.open(dir, small)).rejects.toMatchObject({ code: 'TPD_ARCHIVE_LOCKED' });
    a.writer!.append([['/x', 1]], 5);
    await a.close();
    // What a newer writer leaves: version 9 under a valid header checksum.
    const fh = await open(join(dir, 'current'), 'r+');
    const head = Buffer.alloc(44);
    await fh.read(head, 0, 44, 0);
    head.writeUInt16LE(9, 8);
    head.writeUInt32LE(crc32c(head.subarray(0, 40)), 40);
    await fh.write(head, 0, 44, 0);
    await fh.close();
    const report = await verifyArchive(dir);
    expect(report.problems[0]).toMatchObject({ code: 'TPD_FORMAT_VERSION' });
    const b = await Archive.open(dir, { readonly: true });
    expect(b.problems[0]).toMatchObject({ code: 'TPD_FORMAT_VERSION' });
    await b.close();
    expect((await stat(join(dir, 'current'))).size).toBeGreaterThan(96);
  });
});

describe('flush policy and images', () => {
  it('commits on flush_interval without an explicit flush', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 20 });
    const c = a.cursor();
    a.writer!.append([['/x', 1]], 100);
    expect(await c.next()).toBeNull();
    await new Promise<void>((resolve) => a.once('commit', () => resolve()));
    expect(await c.next()).toStrictEqual({ ts: 100, updates: [['/x', 1]] });
    await a.close();
  });

  it('commits after flush_frequency pages and writes images every image_frequency bytes', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0, flushFrequencyPages: 4, imageFrequencyBytes: 8 * 1024 });
    let commits = 0;
    a.on('commit', () => commits++);
    const batches = [...fabricBatches(9, 64, 600)];
    for (const b of batches) {
      a.writer!.append(b.updates, b.ts);
      if (a.writer!.needsDrain) await a.writer!.drain();
    }
    // Let the queue drain without asking for a flush.
    while (commits < 5) await new Promise<void>((resolve) => a.once('commit', () => resolve()));
    const images = a.table(a.files[0]!).rows.filter((r) => r.type === 3).length;
    expect(images).toBeGreaterThan(5);
    await a.writer!.flush();
    expect(plain(await readRaw(a.cursor()))).toStrictEqual(batches);
    await a.close();
  });
});

describe('truncated files', () => {
  it('reports a file cut below its committed length, serves the blocks before the cut, and reports its lost end to a read forward', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(12, 2000);
    const a = await Archive.open(dir, { ...small, rotateSizeBytes: 30_000 });
    await writeAll(a, batches, 200);
    const f = a.files[0]!;
    const rows = a.table(f).rows;
    const cutRow = rows[Math.floor(rows.length / 2)]!;
    await a.close();
    // Lose the catalog too, so the file must be indexed from its own bytes.
    for (const n of await readdir(dir)) if (n.startsWith('catalog')) await truncate(join(dir, n), 0);
    await truncate(join(dir, f.name), cutRow.offset + 10);
    const report = await verifyArchive(dir);
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.file === f.name)).toBe(true);
    const b = await Archive.open(dir, { readonly: true });
    expect(b.problems.some((p) => p.file === f.name && /truncated/.test(p.message))).toBe(true);
    // Everything before the cut, then the lost end reported (TPD_CORRUPT_BLOCK, as a seek into
    // it: it was passed over in silence), then, crossed as playback crosses it, everything from
    // the next file on: nothing invented.
    const c = b.cursor();
    const got: Batch[] = [];
    let err: unknown;
    const nextOrHole = (): Promise<Batch | null> => c.next().catch((e: unknown) => ((err = e), null));
    for (let x = await nextOrHole(); x; x = await nextOrHole()) got.push(x);
    const lastBefore = b.files[0]!.lastTs!;
    expect(got).toStrictEqual(plain(batches.filter((x) => x.ts <= lastBefore)));
    expect(err).toMatchObject({ code: 'TPD_CORRUPT_BLOCK', details: { file: f.name } });
    expect(await c.crossGone(err)).toMatchObject({ fromUs: lastBefore, files: [f.name] });
    for (let x = await c.next(); x; x = await c.next()) got.push(x);
    expect(got).toStrictEqual(plain(batches.filter((x) => x.ts <= lastBefore || x.ts >= b.files[1]!.firstTs!)));
    await b.close();
  });
});

describe('catalog schema 1 (no row checksums)', () => {
  it('is upgraded by a writable open; a read-only open indexes the files into memory and leaves it', async () => {
    const dir = await tmpDir();
    const batches = randomBatches(41, 400);
    let a = await Archive.open(dir, small);
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    await a.close();
    const { default: Database } = await import('better-sqlite3');
    const file = join(dir, 'catalog.sqlite');
    const db = new Database(file);
    for (const t of ['meta', 'files', 'blocks', 'paths', 'puts']) db.exec(`ALTER TABLE ${t} DROP COLUMN crc`);
    db.exec("UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    db.close();

    a = await Archive.open(dir, { readonly: true });
    expect(a.recovery.catalogRebuilds).toBe(1);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    await a.close();

    a = await Archive.open(dir, small);
    expect(a.problems).toEqual([]);
    expect(a.recovery.catalogRebuilds).toBe(0);
    expect(await readAll(a.cursor())).toStrictEqual(batches);
    await a.close();
    expect((await readdir(dir)).filter((n) => n.includes('.bad-'))).toEqual([]);
    expect((await verifyArchive(dir)).ok).toBe(true);
    a = await Archive.open(dir, { readonly: true });
    expect(a.problems).toEqual([]);
    await a.close();
  });
});
