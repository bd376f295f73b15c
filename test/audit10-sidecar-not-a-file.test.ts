/**
 * Something other than a regular file in the sidecar directory (series-index/): a directory
 * at a sidecar's name, at a build's temporary name, or beside them (a user's `backup/`), and
 * a FIFO at a sidecar's name or at a build's temporary name. The sweep at start removed what
 * it did not know with rm, which refuses a directory: the error failed the server's start
 * (startSeriesIndex, awaited by server/main.ts). A FIFO was opened as a file, which blocks
 * until something writes to it: the start, a query through the sidecar, or a build hung
 * forever. Now nothing of this stops the start, a query or a build: what is not a regular
 * file is never read as a sidecar (the blocks answer), a FIFO is opened without waiting, and a
 * build writes its files only under names it created itself (one that cannot, a directory
 * in its way, fails and is logged).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/index.js';
import { seriesIndexOf, type SeriesIndexStore } from '../storage/series-index/store.js';
import { sidecarDir, sidecarPath } from '../storage/series-index/build.js';
import { startSeriesIndex } from '../server/series-index.js';
import { readSeriesExact } from './helpers/series-exact.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = 1_700_000_000_000_000;
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Three sealed files of a few paths and the open one; returns the time of the last batch. */
async function record(dir: string): Promise<number> {
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  let ts = T0;
  for (let file = 0; file < 4; file++) {
    for (let k = 0; k < 200; k++) {
      ts += 15_000_000;
      a.writer!.append([['/a', k * 1.5], ['/b', file * 1000 + k], ['/c', k % 7 === 0 ? null : -k]], ts);
    }
    if (file < 3) await a.writer!.rotate();
  }
  await a.close();
  return ts;
}

function read(a: Archive, last: number, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  return readSeriesExact(a, T0, last, sidecars);
}

/** `p`, or a failure naming `what` if it has not settled within `ms` (it hung: a FIFO opened as a file). */
async function settles<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung`)), ms)));
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A FIFO at `path`; at cleanup something opens it for writing and reading, so that an open blocked on it (the defect) returns. */
function fifo(path: string): void {
  execFileSync('mkfifo', [path]);
  cleanup.push(async () => {
    for (const flags of [constants.O_RDONLY | constants.O_NONBLOCK, constants.O_RDWR]) {
      const fh = await open(path, flags).catch(() => undefined);
      await fh?.close();
    }
  });
}

async function sealedNames(dir: string): Promise<string[]> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    return a.files.filter((f) => f.sealed).map((f) => f.name);
  } finally {
    await a.close();
  }
}

/** A writable open of `dir` with its sidecar builds started and done (neither may hang); reads through sidecars equal the blocks. */
async function startedExact(dir: string, last: number): Promise<{ a: Archive; store: SeriesIndexStore; want: Map<number, Array<[number, unknown]>> }> {
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  cleanup.push(() => a.close());
  const want = await read(a, last, false);
  const store = await settles(startSeriesIndex(a), 10_000, 'the start');
  await settles(store.whenIdle(), 10_000, 'the builds');
  expect(await read(a, last, true)).toEqual(want);
  return { a, store, want };
}

describe('not a regular file in the sidecar directory', () => {
  it('directories at a sidecar\'s name, a temporary name and beside them: the start goes on, the blocks answer, the builds they are in the way of fail, the other one is built', async () => {
    const dir = await tmpDir('tapedeck-sidecar-dirs-');
    const last = await record(dir);
    const [first, second, third] = await sealedNames(dir);
    const sd = join(dir, 'series-index');
    for (const d of [`${first}.sidx`, `${second}.sidx.tmp`, 'backup']) {
      await mkdir(join(sd, d), { recursive: true });
      await writeFile(join(sd, d, 'kept'), 'a file inside');
    }
    const { a, store, want } = await startedExact(dir, last);
    await settles(store.whenIdle(), 10_000, 'the builds');
    // The directories are left as they are (not the server's to delete): the builds of the two
    // files they stand in the way of fail (logged), the third file's sidecar is built and used.
    const names = await readdir(sd);
    for (const n of [`${first}.sidx`, `${second}.sidx.tmp`, `${third}.sidx`, 'backup']) expect(names, n).toContain(n);
    expect((await stat(sidecarPath(a, first!))).isDirectory()).toBe(true);
    expect((await stat(sidecarPath(a, third!))).isFile()).toBe(true);
    expect(store.stats.buildFailures).toBe(2);
    expect(store.stats.built).toBe(1);
    expect(await read(a, last, true)).toEqual(want);
  });

  it('a FIFO at a sidecar\'s name: neither a read-only read nor the start waits on it, the blocks answer, and it is built again', async () => {
    const dir = await tmpDir('tapedeck-sidecar-fifo-');
    const last = await record(dir);
    const [first] = await sealedNames(dir);
    {
      const a = await Archive.open(dir, { flushIntervalMs: 0 });
      await (await startSeriesIndex(a)).whenIdle();
      await a.close();
    }
    const path = join(dir, 'series-index', `${first}.sidx`);
    await rm(path);
    fifo(path);
    const ro = await Archive.open(dir, { readonly: true });
    try {
      const want = await read(ro, last, false);
      expect(await settles(read(ro, last, true), 10_000, 'a read-only read')).toEqual(want);
      expect(seriesIndexOf(ro).stats.damaged).toBe(1);
    } finally {
      await ro.close();
    }
    const { store } = await startedExact(dir, last);
    expect((await stat(path)).isFile(), 'built again in its place').toBe(true);
    expect(store.stats.fallbacks + store.stats.damaged).toBe(0);
  });

  it('a FIFO at a build\'s temporary names after the start: the build does not wait on it', async () => {
    const dir = await tmpDir('tapedeck-sidecar-fifo-tmp-');
    const last = await record(dir);
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => a.close());
    const store = await startSeriesIndex(a);
    await store.whenIdle();
    // The open file is sealed next: FIFOs wait at its sidecar's temporary and scratch names.
    const next = a.nextRotatedName(last);
    fifo(`${sidecarPath(a, next)}.tmp`);
    fifo(`${sidecarPath(a, next)}.slices.tmp`);
    await a.writer!.rotate();
    await settles(store.whenIdle(), 10_000, 'the build');
    expect(store.stats.buildFailures).toBe(0);
    expect((await stat(sidecarPath(a, next))).isFile()).toBe(true);
    expect(await read(a, last, true)).toEqual(await read(a, last, false));
    expect((await readdir(sidecarDir(a))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
