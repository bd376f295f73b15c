/**
 * Creating an archive directory always ends. Node's `mkdir(dir, { recursive: true })` never
 * settles under procfs (mkdir answers ENOENT below a parent that exists, and Node retries
 * forever on a thread-pool thread spinning a core): `tapedeck serve --archive /proc/x` hung
 * with no output. storage/archive-dir.ts makeDirectory walks up once and down once.
 */
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { makeDirectory } from '../storage/archive-dir.js';
import { tapedeckArgs } from './helpers/built.js';
import { tmpDir } from './helpers/tmp.js';

/** Rejects when `p` has not settled within `ms`: a hang fails the test instead of timing it out. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_resolve, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);
}

describe('makeDirectory', () => {
  it('creates every missing level, takes an existing directory, and two callers at once', async () => {
    const root = await tmpDir();
    const deep = join(root, 'a', 'b', 'c', 'd');
    await within(Promise.all([makeDirectory(deep), makeDirectory(deep), makeDirectory(join(deep, '..'))]), 5_000);
    expect((await stat(deep)).isDirectory()).toBe(true);
    await within(makeDirectory(deep), 5_000);
    await within(makeDirectory(root), 5_000);
  });

  it('refuses procfs, a file in the way and a file as a parent, at once, naming the directory', async () => {
    const root = await tmpDir();
    const file = join(root, 'file');
    await writeFile(file, 'x');
    const cases: Array<[string, RegExp, string]> = [
      ['/proc/tapedeck-no-such/archive', /cannot create directory \/proc\/tapedeck-no-such: its parent takes no new entries \(ENOENT\)/, 'TPD_BAD_ARGUMENT'],
      ['/proc/tapedeck-no-such', /cannot create directory \/proc\/tapedeck-no-such/, 'TPD_BAD_ARGUMENT'],
      [file, /exists and is not a directory/, 'TPD_BAD_ARGUMENT'],
      [join(file, 'sub', 'deeper'), /a parent is not a directory \(ENOTDIR\)/, 'TPD_BAD_ARGUMENT'],
    ];
    for (const [dir, message, code] of cases) {
      await expect(within(makeDirectory(dir), 5_000), dir).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
      await expect(within(Archive.open(dir), 5_000), dir).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    }
  });

  it('tapedeck serve --archive under /proc or at a file exits 1 with TPD_BAD_ARGUMENT instead of hanging', async () => {
    const root = await tmpDir();
    const file = join(root, 'file');
    await writeFile(file, 'x');
    for (const dir of ['/proc/tapedeck-no-such/archive', file, join(file, 'sub')]) {
      const r = await promisify(execFile)(process.execPath, tapedeckArgs('serve', '--archive', dir, '--port', '0'), { timeout: 20_000 })
        .then(() => ({ code: 0, stderr: '' }), (err: { code: number | null; killed?: boolean; stderr: string }) => ({ code: err.killed ? 'killed' : err.code, stderr: err.stderr }));
      expect(r.code, dir).toBe(1);
      expect(r.stderr, dir).toMatch(/^tapedeck: TPD_BAD_ARGUMENT: .*(not a directory|takes no new entries)/m);
    }
  });
});
