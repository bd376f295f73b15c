/**
 * A seeded storage workload whose every output is a pure function of the seed, run against
 * the storage/ of any checkout, and the digest of what it leaves on disk. It proves a
 * refactoring of the writer, catalog or cold storage changed no byte: run it on two trees
 * and compare the digests (`node --import tsx test/helpers/archive-identity.ts <tree> [seed]`
 * prints one JSON object; test/archive-identity.test.ts runs it).
 *
 * What it drives: appends of rows and of columns with hostile paths and values, blocks
 * sealed by size, by durable waits (group commits) and by flushes, images by size, rotations
 * by size and on demand; a crash image (the directory copied while the writer is open, a
 * torn tail and a damaged block added) reopened and written on; a catalog deleted and
 * rebuilt; catalogs of schemas 1 and 2 upgraded; cold storage shipping, evicting, listing
 * and fetching back. Digested: every file's bytes (by name), every catalog row (puts
 * without their wall-clock time), what a cursor reads back, the writers' counters and the
 * problems found. Timers are off, the clock is injected and archive ids are seeded (when run
 * as a script), so two runs agree to the byte.
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import crypto, { createHash } from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { fillDisk } from './fill-disk.js';
import { rng } from './workload.js';

type Value = null | boolean | number | bigint | string | Uint8Array;
type Update = [string, Value];

/* eslint-disable @typescript-eslint/no-explicit-any -- the storage module is loaded from another checkout at run time */
type StorageModule = any;
type ArchiveLike = any;

const T0 = 1_760_000_000_000_000;
const HOSTILE_PATHS = ['/ü/ñ/€', '/a b/c\td', '/quote"/back\\slash', '/' + 'x'.repeat(900), '/emoji/😀/𝄞', '/empty//segment', '/dot/./..'];

function randomValue(r: () => number, i: number): Value {
  const k = Math.floor(r() * 12);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return BigInt(Math.floor(r() * 2 ** 52)) * 4096n - 2n ** 60n;
    case 3: return `s${i}-${Math.floor(r() * 1e6)}`;
    case 4: return Uint8Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 256));
    case 5: return [NaN, -0, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE][Math.floor(r() * 6)] as number;
    case 6: return Math.round(r() * 1e6) / 100;
    case 7: return Math.floor(r() * 1e9) - 5e8;
    default: return Math.round(r() * 1e4) / 10;
  }
}

function randomPath(r: () => number, growth: number): string {
  if (r() < 0.02) return HOSTILE_PATHS[Math.floor(r() * HOSTILE_PATHS.length)] as string;
  const n = Math.floor(r() * growth);
  return `/dev-${n % 23}/if-${n % 7}/m${n}`;
}

/** One writer session: appends in rows and columns, durable waits, flushes and rotations at seeded moments. */
async function drive(a: ArchiveLike, clock: { ts: number }, seed: number, batches: number): Promise<void> {
  const r = rng(seed);
  const w = a.writer;
  for (let i = 0; i < batches; i++) {
    clock.ts += 1 + Math.floor(r() * 3000);
    const n = 1 + Math.floor(r() * (r() < 0.05 ? 400 : 15));
    const growth = 50 + i;
    let ts: number;
    if (r() < 0.3) {
      // Columns: numbers in a Float64Array (signalling NaN bits kept) or any values in an array.
      const ids = new Uint32Array(n);
      for (let j = 0; j < n; j++) ids[j] = w.pathId(randomPath(r, growth));
      if (r() < 0.6) {
        const f = new Float64Array(n);
        for (let j = 0; j < n; j++) f[j] = Math.round(r() * 1e5) / 100;
        if (n > 1 && r() < 0.2) new DataView(f.buffer).setBigUint64(8, 0x7ff0000000000001n, true);
        ts = w.appendColumns(ids, f, r() < 0.1 ? undefined : clock.ts);
      } else {
        ts = w.appendColumns(ids, Array.from({ length: n }, () => randomValue(r, i)), clock.ts);
      }
    } else {
      const updates: Update[] = [];
      for (let j = 0; j < n; j++) updates.push([randomPath(r, growth), randomValue(r, i)]);
      // A timestamp at or before the last one is moved to the last + 1 µs.
      ts = w.append(updates, r() < 0.05 ? clock.ts - 10_000 : clock.ts);
    }
    const roll = r();
    if (roll < 0.08) await w.whenDurable(ts);
    else if (roll < 0.1) await w.flush();
    else if (roll < 0.11) await w.rotate();
    if (w.needsDrain) await w.drain();
  }
}

function options(clock: { ts: number }): Record<string, unknown> {
  return { flushIntervalMs: 0, rotateIntervalMs: 0, imageFrequencyBytes: 16_384, rotateSizeBytes: 96 * 1024, flushFrequencyPages: 4, clockUs: () => clock.ts };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Every catalog row, in key order; put rows without their wall-clock time and checksum. */
function dumpCatalog(file: string): unknown {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = ['meta', 'files', 'blocks', 'paths', 'puts'];
    const out: Record<string, unknown> = {};
    for (const t of tables) {
      const cols = (db.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>).map((c) => c.name);
      const keep = t === 'puts' ? cols.filter((c) => c !== 'updated_ms' && c !== 'crc') : cols;
      const rows = db.prepare(`SELECT ${keep.join(', ')} FROM ${t} ORDER BY ${keep.slice(0, t === 'blocks' ? 2 : 1).join(', ')}`).raw(true).all() as unknown[][];
      out[t] = { cols: keep, rows: rows.map((row) => row.map((v) => (v instanceof Uint8Array ? hex(v) : v))) };
    }
    // The tables' statements as SQLite keeps them (their text, whitespace included).
    out.schema = db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').raw(true).all();
    return out;
  } finally {
    db.close();
  }
}

/** Each file's bytes by name (the catalog by its rows), what a cursor reads and the archive's problems. */
async function digest(S: StorageModule, dir: string): Promise<Record<string, unknown>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('catalog.sqlite') || name.startsWith('.')) continue;
    files[name] = createHash('sha256').update(await readFile(join(dir, name))).digest('hex');
  }
  const catalog = dumpCatalog(join(dir, 'catalog.sqlite'));
  const a = await S.Archive.open(dir, { readonly: true });
  const h = createHash('sha256');
  let batches = 0;
  let error: string | undefined;
  try {
    const c = a.cursor();
    await c.seek('beginning');
    for (let b = await c.next(); b !== null; b = await c.next()) {
      batches++;
      h.update(String(b.ts));
      for (const [p, v] of b.updates) h.update(`${p}=${typeof v}:${v instanceof Uint8Array ? hex(v) : typeof v === 'number' ? String(Object.is(v, -0) ? '-0' : v) : String(v)};`);
    }
  } catch (err) {
    // A damaged block ends the read: where and how is part of the digest.
    error = `${(err as { code?: string }).code ?? ''} after ${batches} batches`;
  } finally {
    await a.close();
  }
  return { files, catalog, batches, read: h.digest('hex'), problems: a.problems.map((p: { file: string; code: string }) => `${p.file} ${p.code}`), error };
}

/** The crash image: a copy taken while the writer is open, then a torn tail and a flipped byte in a block of `current`. */
async function crashImage(from: string, to: string, r: () => number, damageBlock: boolean): Promise<void> {
  await cp(from, to, { recursive: true, filter: (src) => !src.endsWith('/LOCK') });
  const path = join(to, 'current');
  const fh = await open(path, 'r+');
  try {
    const size = (await fh.stat()).size;
    if (damageBlock) {
      // A byte of the newest block: the writer must seal this file and start another.
      if (size < 1024) throw new Error(`current holds ${size} bytes: too few to damage a block`);
      const at = size - 8 - Math.floor(r() * 8);
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, at);
      b[0] = (b[0] as number) ^ 0x5a;
      await fh.write(b, 0, 1, at);
    }
    await fh.write(Buffer.from(Array.from({ length: 37 + Math.floor(r() * 300) }, () => Math.floor(r() * 256))), 0, undefined, size);
  } finally {
    await fh.close();
  }
}

/** Rewrites a catalog into schema 2 (one paths row per path, checked) or 1 (no checksums). */
function downgradeCatalog(S: StorageModule, crc32c: (s: string) => number, file: string, schema: 1 | 2): void {
  const c = new S.Catalog(file);
  const defs = c.paths() as Array<{ id: number; path: string; firstTs: number }>;
  c.close();
  const db = new Database(file);
  try {
    db.exec('DROP TABLE paths; CREATE TABLE paths(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, first_ts INTEGER NOT NULL, crc INTEGER);');
    const ins = db.prepare('INSERT INTO paths(id, path, first_ts, crc) VALUES (?, ?, ?, ?)');
    for (const p of defs) ins.run(p.id, p.path, p.firstTs, crc32c(JSON.stringify(['paths', p.id, p.path, p.firstTs])));
    if (schema === 1) {
      for (const t of ['meta', 'files', 'blocks', 'paths', 'puts']) db.exec(`ALTER TABLE ${t} DROP COLUMN crc`);
      db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema_version'").run();
    } else {
      db.prepare("UPDATE meta SET value = '2', crc = ? WHERE key = 'schema_version'").run(crc32c(JSON.stringify(['meta', 'schema_version', '2'])));
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

const HOOKS = resolve('test/fixtures/hooks');

function nextColdEvent(c: ArchiveLike, type: string): Promise<unknown> {
  return new Promise((res) => {
    const on = (e: { type: string }): void => {
      if (e.type !== type) return;
      c.off('event', on);
      res(e);
    };
    c.on('event', on);
  });
}

/** Ships rotated files, evicts them, lists and fetches them back through a read. */
async function coldPhase(S: StorageModule, base: string, clock: { ts: number }, seed: number): Promise<Record<string, unknown>> {
  const dir = join(base, 'cold-archive');
  const store = join(base, 'cold');
  await mkdir(store, { recursive: true });
  await writeFile(join(base, 'calls.log'), '');
  const hook = (script: string): { cmd: string; args: string[] } => ({ cmd: join(HOOKS, script), args: [store] });
  const a = await S.Archive.open(dir, options(clock));
  const c = await S.ColdStorage.start(a, {
    hooks: { put: hook('put-copy.sh'), get: hook('get-copy.sh'), list: hook('list-dir.sh') },
    policy: { put: { attempts: 1 }, get: { attempts: 1 }, list: { attempts: 1 } },
    retention: { maxAgeMs: 0, maxBytes: 1 },
    listIntervalMs: 0,
    checkIntervalMs: 0,
    fetchedKeepMs: 0,
  });
  const events: string[] = [];
  c.on('event', (e: { type: string; name?: string; ok?: boolean }) => events.push(`${e.type} ${e.name ?? ''} ${String(e.ok ?? '')}`));
  for (let k = 0; k < 3; k++) {
    await drive(a, clock, seed + 100 + k, 120);
    await a.writer.rotate();
    // Every rotated file shipped (drive rotates too) before retention looks at them.
    while (c.stats.putsPending > 0) await nextColdEvent(c, 'put');
  }
  await c.check();
  // Read everything: the evicted files are fetched back one at a time.
  const cur = a.cursor();
  await cur.seek('beginning');
  let n = 0;
  for (let b = await cur.next(); b !== null; b = await cur.next()) n++;
  await c.refreshList();
  const stats = c.stats;
  await c.stop();
  await a.close();
  return { events, batchesRead: n, fetched: stats.fetched, evicted: stats.evicted, putsPending: stats.putsPending, store: (await readdir(store)).sort() };
}


/**
 * A full disk for real (a 4 MiB tmpfs; mounting needs root, else the phase says so and both
 * trees skip it alike): the writer is fed until its writes fail, then a durable wait and a
 * rotation wait while it retries, and both end once the filler is removed; then a rotation
 * stopped while it writes the new `current`. The queue at each of those moments is the same
 * in every run (nothing is appended while the disk is full), so the bytes are too, however
 * many retries the timer made.
 */
async function diskFullPhase(S: StorageModule, base: string, clock: { ts: number }, seed: number): Promise<Record<string, unknown>> {
  const mount = join(base, 'tmpfs');
  await mkdir(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount], { stdio: 'pipe' });
  } catch {
    return { skipped: 'mounting a tmpfs was refused (needs root)' };
  }
  try {
    const dir = join(mount, 'archive');
    const a = await S.Archive.open(dir, { ...options(clock), diskFull: { retryMs: 5, retryMaxMs: 10, ackWaitMs: 600_000, bufferBytesMax: 64 * 1024 * 1024 } });
    await drive(a, clock, seed + 200, 300);
    await a.writer.whenDurable(a.writer.lastTimestamp);
    const filler = await fillDisk(mount);
    const full = new Promise((res) => a.once('disk-full', res));
    const r = rng(seed + 201);
    let last = 0;
    for (let i = 0; i < 400; i++) {
      clock.ts += 1 + Math.floor(r() * 3000);
      last = a.writer.append(Array.from({ length: 1 + Math.floor(r() * 15) }, (_, j): Update => [`/full/m${Math.floor(r() * 500)}`, j % 3 === 0 ? `v${i}` : Math.round(r() * 1e5) / 10]), clock.ts);
    }
    const durable = a.writer.whenDurable(last);
    const rotated = a.writer.rotate();
    await full;
    await rm(filler);
    await Promise.all([durable, rotated]);
    await drive(a, clock, seed + 202, 200);
    // A rotation the full disk stops at its last step, writing the new `current`: it goes on from there.
    await a.writer.whenDurable(a.writer.lastTimestamp);
    const filler2 = await fillDisk(mount);
    let onFull: (() => void) | undefined;
    const full2 = new Promise<'full'>((res) => a.once('disk-full', (onFull = () => res('full'))));
    const rotated2 = a.writer.rotate();
    // Some seeds leave the rotation room enough after the filler (seed 638534: it fit, and
    // waiting for 'disk-full' alone left nothing pending: the process exited 13). Then it
    // simply completes; the digest says which it was.
    const stopped = (await Promise.race([full2, rotated2.then(() => 'fit' as const)])) === 'full';
    if (!stopped && onFull) a.off('disk-full', onFull);
    await rm(filler2);
    await rotated2;
    await drive(a, clock, seed + 203, 100);
    const stats = { ...a.writer.stats, lastCommitMs: 0 };
    await a.close();
    return { stats, secondRotationStoppedByFullDisk: stopped, archive: await digest(S, dir) };
  } finally {
    execFileSync('umount', ['-l', mount]);
  }
}

export async function runWorkload(tree: string, seed: number): Promise<Record<string, unknown>> {
  const S: StorageModule = { ...(await import(pathToFileURL(join(tree, 'storage', 'index.ts')).href)) };
  S.Catalog = (await import(pathToFileURL(join(tree, 'storage', 'catalog.ts')).href)).Catalog;
  const { crc32c } = await import(pathToFileURL(join(tree, 'storage', 'codec', 'crc.ts')).href) as { crc32c: (s: string) => number };
  const base = await mkdtemp(join(tmpdir(), 'tapedeck-identity-'));
  const out: Record<string, unknown> = { seed };
  try {
    const r = rng(seed ^ 0x9e3779b9);
    const clock = { ts: T0 };
    const first = join(base, 'first');
    // Session 1, then a crash image taken while its writer is open.
    let a = await S.Archive.open(first, options(clock));
    await drive(a, clock, seed, 1500);
    await a.writer.whenDurable(a.writer.lastTimestamp);
    const crashed = join(base, 'crashed');
    const damaged = join(base, 'damaged');
    await crashImage(first, crashed, r, false);
    await crashImage(first, damaged, r, true);
    await drive(a, clock, seed + 1, 400);
    out.stats1 = { ...a.writer.stats, lastCommitMs: 0 };
    await a.close();
    out.first = await digest(S, first);

    // The crash images reopened (torn tail cut; a damaged `current` sealed) and written on.
    for (const [name, dir] of [['crashed', crashed], ['damaged', damaged]] as const) {
      const clock2 = { ts: clock.ts };
      a = await S.Archive.open(dir, options(clock2));
      out[`${name}Recovery`] = { ...a.recovery, problems: a.problems.map((p: { file: string; code: string }) => `${p.file} ${p.code}`) };
      await drive(a, clock2, seed + 2, 600);
      out[`${name}Stats`] = { ...a.writer.stats, lastCommitMs: 0 };
      await a.close();
      out[name] = await digest(S, dir);
    }

    // The catalog lost: rebuilt from the files at open.
    const rebuilt = join(base, 'rebuilt');
    await cp(first, rebuilt, { recursive: true });
    for (const f of await readdir(rebuilt)) if (f.startsWith('catalog.sqlite')) await rm(join(rebuilt, f));
    a = await S.Archive.open(rebuilt, options({ ts: clock.ts }));
    await a.close();
    out.rebuilt = await digest(S, rebuilt);

    // Catalogs of the older schemas upgraded at open.
    for (const schema of [2, 1] as const) {
      const dir = join(base, `schema${schema}`);
      await cp(first, dir, { recursive: true });
      downgradeCatalog(S, crc32c, join(dir, 'catalog.sqlite'), schema);
      a = await S.Archive.open(dir, options({ ts: clock.ts }));
      await a.close();
      out[`schema${schema}`] = await digest(S, dir);
    }

    out.diskFull = await diskFullPhase(S, base, { ts: clock.ts }, seed);
    out.cold = await coldPhase(S, base, { ts: clock.ts }, seed);
    out.coldArchive = await digest(S, join(base, 'cold-archive'));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  return out;
}

/**
 * A new archive's id is random (randomBytes in reconcile.ts): in this process it is made a
 * function of the seed, so two trees name their archives alike.
 */
function seedArchiveIds(seed: number): void {
  const r = rng(seed ^ 0x51ed);
  crypto.randomBytes = ((size: number) => Buffer.from(Array.from({ length: size }, () => Math.floor(r() * 256)))) as typeof crypto.randomBytes;
  syncBuiltinESMExports();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  seedArchiveIds(Number(process.argv[3] ?? 1));
  const tree = resolve(process.argv[2] ?? '.');
  const seed = Number(process.argv[3] ?? 1);
  const out = await runWorkload(tree, seed);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
