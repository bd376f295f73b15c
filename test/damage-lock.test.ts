/**
 * The LOCK file, every way a crash or a restart leaves it: empty (killed between create and
 * write), garbage, naming a dead process, naming our own pid (a restarted container gives the
 * new server the killed one's pid), naming a live process that is not the one that wrote it
 * (pid reused: it started after the lock was last written). Each is taken over and the archive opens for writing;
 * a live writer, in this process or another, still keeps a second one out.
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { tmpDir } from './helpers/tmp.js';

const OPTIONS = { flushIntervalMs: 0 };

async function withChild<T>(f: (child: ChildProcess) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await once(child, 'spawn');
  try {
    return await f(child);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

async function opensAndRecords(dir: string): Promise<void> {
  const a = await Archive.open(dir, OPTIONS);
  try {
    a.writer!.append([['/x', 1]]);
    await a.writer!.flush();
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(String(process.pid));
    await expect(Archive.open(dir, OPTIONS), 'a second writer in this process').rejects.toMatchObject({ code: 'TPD_ARCHIVE_LOCKED' });
  } finally {
    await a.close();
  }
  const b = await Archive.open(dir, { readonly: true });
  expect(b.totals().batches).toBeGreaterThanOrEqual(1);
  await b.close();
}

describe('a LOCK left behind', () => {
  it('is taken over when empty, garbage, of a dead process, of our own pid, or of a live process that did not write it', async () => {
    if (process.platform !== 'linux') return;
    const deadPid = await withChild(async (c) => c.pid!);
    const leftovers: Array<[string, string]> = [
      ['empty (killed between create and write)', ''],
      ['garbage', 'not a pid\n'],
      ['a dead process', String(deadPid)],
      ['our own pid, from a process before us (restarted container)', String(process.pid)],
    ];
    for (const [what, text] of leftovers) {
      const dir = await tmpDir();
      await writeFile(join(dir, 'LOCK'), text);
      await opensAndRecords(dir).catch((err: unknown) => {
        throw new Error(`LOCK ${what}: ${String(err)}`, { cause: err });
      });
    }
    // A live process that started after the lock was last written (its pid reused).
    await withChild(async (c) => {
      const dir = await tmpDir();
      await writeFile(join(dir, 'LOCK'), String(c.pid));
      const hourAgo = new Date(Date.now() - 3_600_000);
      await utimes(join(dir, 'LOCK'), hourAgo, hourAgo);
      await opensAndRecords(dir);
    });
  });

  it('of a live writer in another process keeps a second writer out', async () => {
    if (process.platform !== 'linux') return;
    await withChild(async (c) => {
      const dir = await tmpDir();
      await writeFile(join(dir, 'LOCK'), String(c.pid));
      const opened = await Archive.open(dir, OPTIONS).catch((err: unknown) => err);
      if (opened instanceof Archive) await opened.close();
      expect(opened).toMatchObject({ code: 'TPD_ARCHIVE_LOCKED' });
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(String(c.pid));
    });
  });
});
