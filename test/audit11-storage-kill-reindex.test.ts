/**
 * SIGKILL of `tapedeck reindex` (the CLI as a process) at seeded instants: while it moves
 * the catalog aside, while it indexes the files into a new one (one transaction a file, bulk
 * checkpoints of the dictionary), while it repairs and closes. After each kill the archive
 * opens without a problem, verify is clean, every batch is read back exactly once with its
 * values, and a writer appends on from where it ended. AUDIT11_KILL_REINDEX_SEED=<n> replays.
 * Then the same at every step of a reindex in turn (each call it makes on a catalog's
 * database, each rename of a catalog file: a kill point preloaded into the process), and
 * catalogs left by a version that created them in place (a file whose schema was never
 * committed), which verify and open take for a missing catalog.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { tmpDir } from './helpers/tmp.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { crashBatch } from './helpers/crash-workload.js';
import { childArgs, tapedeckArgs } from './helpers/built.js';

const KILLS = 8;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024, rotateSizeBytes: 48 * 1024 };

/**
 * A kill point, preloaded (--require) into the reindex: counts each call the process makes on
 * a catalog's database that may write (pragma, exec, each transaction's start and end) and
 * each rename of a catalog file, and SIGKILLs the process at step KILL_AT. Prints the number
 * of steps to stderr when it exits on its own.
 */
const KILL_POINT = `
const fs = require('node:fs');
const Database = require(process.env.KILL_SQLITE);
const at = Number(process.env.KILL_AT);
let n = 0;
const step = () => { if (++n === at) process.kill(process.pid, 'SIGKILL'); };
const ours = (name) => String(name).includes('catalog.sqlite');
for (const m of ['pragma', 'exec']) {
  const f = Database.prototype[m];
  Database.prototype[m] = function (...args) { if (ours(this.name)) step(); return f.apply(this, args); };
}
const transaction = Database.prototype.transaction;
Database.prototype.transaction = function (fn) {
  const t = transaction.call(this, fn);
  if (!ours(this.name)) return t;
  return function (...args) { step(); const r = t.apply(this, args); step(); return r; };
};
const rename = fs.promises.rename;
fs.promises.rename = function (from, to) { if (ours(from)) step(); return rename(from, to); };
require('node:module').syncBuiltinESMExports();
process.on('exit', () => process.stderr.write('steps ' + n + '\\n'));
`;

/** Runs `tapedeck reindex dir`, SIGKILLed after `kill.afterMs` or at step `kill.atStep` (KILL_POINT), never when neither; resolves with its wall time and its steps (when it ran to its end). */
function reindex(dir: string, kill: { afterMs?: number; atStep?: number } = {}): Promise<{ ms: number; killed: boolean; steps?: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const preload = kill.atStep === undefined ? [] : ['--require', join(dir, '..', 'kill-point.cjs')];
    const env = { ...process.env, KILL_AT: String(kill.atStep ?? 0), KILL_SQLITE: createRequire(import.meta.url).resolve('better-sqlite3') };
    const p = spawn(process.execPath, [...preload, ...tapedeckArgs('reindex', dir)], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = kill.afterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), kill.afterMs);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      const steps = /^steps (\d+)$/m.exec(stderr)?.[1];
      if (signal === 'SIGKILL') resolve({ ms: performance.now() - t0, killed: true });
      else if (code === 0) resolve({ ms: performance.now() - t0, killed: false, ...(steps !== undefined ? { steps: Number(steps) } : {}) });
      else reject(new Error(`reindex exited ${code}: ${stderr}`));
    });
  });
}

/** An archive dir (inside its own temporary dir, beside the kill point) holding batches 0..n-1. */
async function archiveOf(n: number): Promise<string> {
  const root = await tmpDir('tapedeck-a11-kill-reindex-');
  await writeFile(join(root, 'kill-point.cjs'), KILL_POINT);
  const dir = join(root, 'archive');
  await appendBatches(dir, 0, n);
  return dir;
}

/** Verify is clean, a read-only open finds no problem and reads batches 0..total-1 back exactly once. */
async function expectWhole(dir: string, total: number, where: string): Promise<void> {
  const report = await verifyArchive(dir);
  expect(report.problems, where).toEqual([]);
  const a = await Archive.open(dir, { readonly: true });
  try {
    expect(a.problems, where).toEqual([]);
    const c = a.cursor();
    let n = 0;
    for (let b = await c.next(); b; b = await c.next(), n++) {
      const want = crashBatch(n);
      if (b.ts !== want.ts || JSON.stringify(b.updates) !== JSON.stringify(want.updates)) throw new Error(`${where}: batch ${n} differs from what was written`);
    }
    expect(n, where).toBe(total);
  } finally {
    await a.close();
  }
}

/** Runs the crash test's writer (test/helpers/crash-child.ts) on `dir` and SIGKILLs it once it flushed `more` batches past what it found. */
function killWriter(dir: string, more: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, childArgs('crash-child', dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let start: number | undefined;
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: p.stdout }).on('line', (line) => {
      const [tag, n] = line.split(' ');
      if (tag === 'READY') start = Number(n);
      else if (tag === 'F' && start !== undefined && Number(n) >= start + more) p.kill('SIGKILL');
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`))));
  });
}

/** How many batches a read-only open of `dir` finds. */
async function batchesIn(dir: string): Promise<number> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    return a.totals().batches;
  } finally {
    await a.close();
  }
}

const exists = (file: string): Promise<boolean> => stat(file).then(() => true, () => false);

/** Appends batches from..from+n-1 through a writable open, which must find no problem. */
async function appendBatches(dir: string, from: number, n: number, where = 'append'): Promise<void> {
  const a = await Archive.open(dir, STORAGE);
  try {
    expect(a.problems, where).toEqual([]);
    for (let i = from; i < from + n; i++) {
      const b = crashBatch(i);
      a.writer!.append(b.updates, b.ts);
      if (i % 100 === 99) await a.writer!.flush();
    }
    await a.writer!.flush();
  } finally {
    await a.close();
  }
}

describe('SIGKILL during tapedeck reindex', () => {
  it('leaves an archive that opens clean, verifies clean and holds every batch exactly once', async () => {
    const seed = scheduleSeed('AUDIT11_KILL_REINDEX_SEED', 'audit11-storage-kill-reindex');
    const r = rng(seed);
    let total = 3000;
    const dir = await archiveOf(total);
    const full = await reindex(dir);
    expect(full.killed).toBe(false);
    const asides = async (): Promise<number> => (await readdir(dir)).filter((n) => /^catalog\.sqlite\.old-\d+$/.test(n)).length;
    let reached = 0;
    let slower = 1;
    for (let k = 0; k < KILLS; k++) {
      const before = await asides();
      const where = `seed ${seed}, kill ${k}`;
      // Most of the wall time is the process starting: the kills land mostly in its second half.
      await reindex(dir, { afterMs: Math.floor(full.ms * slower * (0.4 + 0.6 * r())) });
      if ((await asides()) > before) reached++;
      // Killed before it moved the catalog: the machine is busier than when full.ms was measured.
      else slower = Math.min(slower * 1.25, 3);
      await expectWhole(dir, total, where);
      await appendBatches(dir, total, 50, where);
      total += 50;
    }
    expect(reached, `seed ${seed}: no kill landed after the catalog was moved aside`).toBeGreaterThan(0);
  }, 60_000);

  it('at every step of the reindex in turn, from moving the catalog aside to its last row', async () => {
    let total = 600;
    const dir = await archiveOf(total);
    for (let at = 1; ; at++) {
      const run = await reindex(dir, { atStep: at });
      if (!run.killed) {
        // Every step was a kill once: moving the catalog aside, creating the new one, a transaction a file.
        expect(run.steps).toBe(at - 1);
        expect(at).toBeGreaterThan(15);
        break;
      }
      await expectWhole(dir, total, `killed at step ${at}`);
      await appendBatches(dir, total, 5, `killed at step ${at}`);
      total += 5;
    }
    await expectWhole(dir, total, 'at the end');
  }, 120_000);

  it('between moving a catalog aside and its WAL (a writer was killed with rows in it): the new catalog takes nothing of that WAL', async () => {
    const dir = await archiveOf(600);
    await killWriter(dir, 2000);
    const wal = join(dir, 'catalog.sqlite-wal');
    expect((await stat(wal)).size).toBeGreaterThan(0);
    let total = await batchesIn(dir);
    await expectWhole(dir, total, 'writer killed');
    // Killed between the renames of catalog.sqlite and catalog.sqlite-wal.
    expect((await reindex(dir, { atStep: 2 })).killed).toBe(true);
    expect(await exists(join(dir, 'catalog.sqlite'))).toBe(false);
    expect(await exists(wal)).toBe(true);
    await expectWhole(dir, total, 'catalog moved aside, its WAL left');
    await appendBatches(dir, total, 50, 'the first open for writing after');
    total += 50;
    await expectWhole(dir, total, 'after a writer appended');
    expect((await reindex(dir)).killed).toBe(false);
    await expectWhole(dir, total, 'after a reindex');
  }, 60_000);

  it('a catalog file that holds nothing (its schema never committed) is taken for a missing one by verify and open', async () => {
    const total = 300;
    const dir = await archiveOf(total);
    const file = join(dir, 'catalog.sqlite');
    // What a version that created the catalog in place left when killed: an empty file;
    // SQLite's header in WAL mode, no table; some of the tables, no row.
    const states: Array<[string, (db: Database.Database) => void]> = [
      ['an empty file', () => undefined],
      ['no table', (db) => db.pragma('journal_mode = WAL')],
      ['two of its tables, no row', (db) => {
        db.pragma('journal_mode = WAL');
        db.exec(`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER);
          CREATE TABLE files(seq INTEGER PRIMARY KEY, name TEXT NOT NULL, location TEXT NOT NULL,
            first_ts INTEGER, last_ts INTEGER, indexed_bytes INTEGER NOT NULL, sealed INTEGER NOT NULL, crc INTEGER);`);
      }],
    ];
    for (const [what, make] of states) {
      for (const suffix of ['', '-wal', '-shm']) await rm(file + suffix, { force: true });
      if (what === 'an empty file') await writeFile(file, '');
      else {
        const db = new Database(file);
        make(db);
        db.close();
      }
      await expectWhole(dir, total, what);
      // A writable open fills it (or one in its place) from the files, without a word.
      const w = await Archive.open(dir, STORAGE);
      try {
        expect(w.problems, `${what}, opened for writing`).toEqual([]);
      } finally {
        await w.close();
      }
      await expectWhole(dir, total, `${what}, opened for writing`);
    }
  });
});
