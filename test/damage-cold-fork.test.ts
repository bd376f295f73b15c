/**
 * A file fetched from cold storage that the catalog never indexed (known from the list hook
 * only) whose path dictionary contradicts the archive's: a fork of the archive (a copy of
 * its directory that recorded on elsewhere, same archive id and seqs) shipped a file under a
 * name this archive lists. Its values must never be served under this archive's paths: the
 * fetch is refused with a stable code and the read fails; the archive's own data still reads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyFile, cp, mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
const storage = { flushIntervalMs: 0, imageFrequencyBytes: 4096 };
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

async function write(dir: string, from: number, paths: string[], rotate: boolean): Promise<void> {
  const a = await Archive.open(dir, storage);
  for (let i = 0; i < 20; i++) a.writer!.append(paths.map((p, j) => [p, from + i + j]), T0 + (from + i) * 1000);
  if (rotate) await a.writer!.rotate();
  await a.close();
}

const rotated = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => /^\d{4}-/.test(n)).sort();

describe('a fetched file from a fork of the archive', () => {
  it('whose dictionary contradicts the archive\'s is refused, never served under the wrong paths', async () => {
    const base = await tmpDir('tapedeck-cold-fork-');
    const x = join(base, 'x');
    const y = join(base, 'y');
    const cold = join(base, 'cold');
    await mkdir(cold);
    await write(x, 0, ['/p0', '/p1'], true); // seq 0, ids 0 and 1
    await cp(x, y, { recursive: true }); // the fork: same archive id, same seq 0, current at seq 1
    await write(x, 100, ['/p0', '/a'], true); // x's seq 1 defines id 2 = /a
    await write(x, 200, ['/p0', '/a'], false); // and records on in its current (seq 2)
    await write(y, 50, ['/p0', '/b'], true); // y's seq 1 defines id 2 = /b, named earlier than x's
    const [, yName] = await rotated(y);
    const [, xName] = await rotated(x);
    expect(yName! < xName!).toBe(true);
    // x loses its seq 1 and its catalog; cold storage holds the fork's seq 1 (under its own name).
    await rm(join(x, xName!));
    for (const s of ['', '-wal', '-shm']) await rm(join(x, `catalog.sqlite${s}`), { force: true });
    await copyFile(join(y, yName!), join(cold, yName!));

    const a = await Archive.open(x, storage);
    closers.push(() => a.close());
    const c = await ColdStorage.start(a, { checkIntervalMs: 0, listIntervalMs: 0, hooks: { get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] }, list: { cmd: join(FIX, 'list-dir.sh'), args: [cold] } } });
    closers.push(() => c.stop());
    await c.refreshList();
    expect(a.files.map((f) => [f.name, f.location])).toContainEqual([yName, 'remote']);
    const got: Batch[] = [];
    let error: unknown;
    const cur = a.cursor();
    try {
      for (let b = await cur.next(); b; b = await cur.next()) got.push(b);
    } catch (err) {
      error = err;
    }
    for (const b of got) for (const [p] of b.updates) expect(p, `batch at ${b.ts} served under ${p}`).not.toBe('/a');
    expect(isTapedeckError(error) && error.code, String(error)).toBe('TPD_CORRUPT_BLOCK');
    expect(got.map((b) => b.ts)).toEqual(Array.from({ length: 20 }, (_, i) => T0 + i * 1000)); // seq 0, then the refused file
    // Its own newest data still reads by a seek past the refused file.
    const tail = a.cursor();
    await tail.seek({ ts: T0 + 200_000 });
    expect((await tail.next())?.updates).toEqual([['/p0', 201], ['/a', 202]]);
  });

  it('placed locally, with or without a catalog: the contradiction is reported, never silent; against the catalog the file of the fork is never served, at any open', async () => {
    for (const keepCatalog of [true, false]) {
      const base = await tmpDir('tapedeck-local-fork-');
      const x = join(base, 'x');
      const y = join(base, 'y');
      await write(x, 0, ['/p0', '/p1'], true);
      await cp(x, y, { recursive: true });
      await write(x, 100, ['/p0', '/a'], true);
      await write(x, 200, ['/p0', '/a'], false);
      await write(y, 50, ['/p0', '/b'], true);
      const [, yName] = await rotated(y);
      const [, xName] = await rotated(x);
      await rm(join(x, xName!));
      await copyFile(join(y, yName!), join(x, yName!));
      if (!keepCatalog) for (const s of ['', '-wal', '-shm']) await rm(join(x, `catalog.sqlite${s}`), { force: true });
      for (const [i, readonly] of [true, false, false, true].entries()) {
        // Without a catalog the first writable open takes the first definition into the one it
        // builds (which file is the fork cannot be told from the bytes): reported then, once.
        if (!keepCatalog && i >= 2) break;
        const a = await Archive.open(x, readonly ? { readonly: true } : storage);
        const where = `catalog ${keepCatalog}, ${readonly ? 'read-only' : 'writable'} open ${i}`;
        try {
          const found = a.problems.filter((p) => p.code === 'TPD_CORRUPT_BLOCK' && /path id 2/.test(p.message));
          expect(found.length, `${where}: ${JSON.stringify(a.problems)}`).toBeGreaterThan(0);
          if (!keepCatalog) continue;
          // The catalog holds the archive's dictionary: the fork's file is not served, at any open.
          const tail = a.cursor();
          await tail.seek({ ts: T0 + 19_000 });
          const got: Batch[] = [];
          try {
            for (let b = await tail.next(); b; b = await tail.next()) got.push(b);
          } catch (err) {
            expect(isTapedeckError(err) && err.code, `${where}: ${String(err)}`).toBe('TPD_FILE_UNAVAILABLE');
          }
          for (const b of got) expect(b.ts < T0 + 50_000 || b.ts >= T0 + 70_000, `${where}: the fork's batch at ${b.ts} served`).toBe(true);
        } finally {
          await a.close();
        }
      }
    }
  });
});
