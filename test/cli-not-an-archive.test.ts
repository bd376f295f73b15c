/**
 * The tools that work on an existing archive (inspect, verify, reindex, export) refuse a
 * path that holds none (missing, a file, a directory of other things; an empty directory is
 * an empty archive), with TPD_BAD_ARGUMENT and exit 1, and leave it as it was: a mistyped path
 * used to be shown as an empty archive, verified clean, or turned into a new archive by
 * reindex. A real archive, and one whose segment files are all gone but its catalog, still
 * count as archives.
 */
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { notAnArchive } from '../storage/archive-dir.js';
import { reindexArchive } from '../storage/reindex.js';
import { verifyArchive } from '../storage/verify.js';
import { tapedeck } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';
import { useTmpfs } from './helpers/tmpfs.js';

/** Directories that are not archives, each with what the refusal must say. */
async function notArchives(root: string): Promise<Array<{ dir: string; says: RegExp }>> {
  const other = join(root, 'other');
  await mkdir(other);
  await writeFile(join(other, 'notes.txt'), 'x');
  await writeFile(join(other, 'catalog.sqlite.bak'), 'x');
  await writeFile(join(other, 'current.txt'), 'x');
  await writeFile(join(other, 'LOCKS'), 'x');
  await writeFile(join(other, '2026-11-23T14:02:00Z'), 'x'); // not the rotated name's 6 digits
  const file = join(root, 'file');
  await writeFile(file, 'x');
  const link = join(root, 'link-to-file');
  await symlink(file, link);
  return [
    { dir: other, says: /holds no archive/ },
    { dir: file, says: /is not a directory/ },
    { dir: link, says: /is not a directory/ },
    { dir: join(root, 'missing'), says: /does not exist/ },
  ];
}

async function listing(dir: string): Promise<string[] | 'absent' | 'file'> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'file';
  }
}

describe('inspect, verify and reindex of a directory that holds no archive', () => {
  it('are refused with TPD_BAD_ARGUMENT, by the library and the CLI, and change nothing', async () => {
    const root = await tmpDir();
    for (const { dir, says } of await notArchives(root)) {
      const before = await listing(dir);
      expect(await notAnArchive(dir), dir).toMatch(says);

      const report = await verifyArchive(dir);
      expect(report.ok, dir).toBe(false);
      expect(report.problems, dir).toEqual([expect.objectContaining({ code: 'TPD_BAD_ARGUMENT', message: expect.stringMatching(says) })]);
      await expect(reindexArchive(dir), dir).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: expect.stringMatching(says) });

      for (const cmd of ['inspect', 'verify', 'reindex', 'compact']) {
        const r = await tapedeck(cmd, dir);
        expect(r.code, `${cmd} ${dir}`).toBe(1);
        expect(r.stdout + r.stderr, `${cmd} ${dir}`).toMatch(/TPD_BAD_ARGUMENT/);
        expect(r.stdout + r.stderr, `${cmd} ${dir}`).toMatch(says);
      }
      expect(await listing(dir), dir).toEqual(before);
    }
  });

  it('still take a real archive, one left with only its catalog, and an empty directory', async () => {
    const empty = await tmpDir();
    expect(await notAnArchive(empty)).toBeUndefined();
    expect((await verifyArchive(empty)).ok).toBe(true);

    const dir = await tmpDir();
    const a = await Archive.open(dir);
    a.writer!.append([['/a', 1]], 1_000_000);
    await a.writer!.rotate();
    a.writer!.append([['/a', 2]], 2_000_000);
    await a.close();
    expect(await notAnArchive(dir)).toBeUndefined();
    expect((await verifyArchive(dir)).ok).toBe(true);
    expect((await tapedeck('inspect', dir)).code).toBe(0);

    // Every segment file gone (evicted, or removed by hand): the catalog still names the archive.
    for (const name of await readdir(dir)) if (name !== 'catalog.sqlite') await rm(join(dir, name), { recursive: true, force: true });
    expect(await notAnArchive(dir)).toBeUndefined();
    const r = await tapedeck('verify', dir);
    expect(r.stdout + r.stderr).not.toMatch(/holds no archive/);
  });
});

describe('tapedeck export to a place it cannot write', () => {
  const fs = useTmpfs('tapedeck-export-full-', 'the export full-disk test');

  it('is TPD_IO naming the file (a directory, a missing directory, a full disk), and leaves no part-written file', async (ctx) => {
    const archive = await tmpDir();
    const a = await Archive.open(archive);
    // About 9 MB of NDJSON: more than the 4 MiB disk holds.
    for (let i = 0; i < 5_000; i++) a.writer!.append(Array.from({ length: 60 }, (_v, j) => [`/sw-${j}/counter`, i * 1_000 + j] as [string, number]), (i + 1) * 1_000_000);
    await a.close();

    const dirOut = await tmpDir();
    let r = await tapedeck('export', '--archive', archive, '--out', dirOut);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TPD_IO: cannot write --out .*: EISDIR/);
    r = await tapedeck('export', '--archive', archive, '--out', join(dirOut, 'no', 'such.ndjson'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TPD_IO: cannot write --out .*: ENOENT/);

    if (!fs.mounted) return ctx.skip();
    const out = join(fs.dir, 'history.ndjson');
    r = await tapedeck('export', '--archive', archive, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TPD_IO: cannot write --out .*: ENOSPC; the part written to .* was removed/);
    expect(r.stderr).not.toMatch(/exported/);
    expect(await readdir(fs.dir)).toEqual([]);

    // With room, the same export is whole: one line a batch.
    const whole = join(dirOut, 'history.ndjson');
    r = await tapedeck('export', '--archive', archive, '--out', whole);
    expect(r.code).toBe(0);
    expect((await readFile(whole, 'utf8')).trimEnd().split('\n').length).toBeGreaterThanOrEqual(5_000);
  });
});
