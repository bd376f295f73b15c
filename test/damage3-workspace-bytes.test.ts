/**
 * Every byte of the workspace file (workspace.json) is checked, and `tapedeck verify` checks it.
 * Found: the `"crc"` member's own name and the last newline were outside every check. A byte
 * changed in the name (`"crc"` to `"crb"`) made the file read as one written before the CRC32C
 * existed, unchecked, and the newline could become any white space: read as if undamaged,
 * nothing said. And verify did not look at the file at all (a damaged workspace was found only
 * by the next server start, which moved it aside). Now (storage/workspace-file.ts) a file with
 * a CRC32C must end exactly as written, one without it must hold exactly what those files
 * held, and verify reports a file the server would move aside (TPD_CORRUPT_BLOCK).
 *
 * Every byte flipped (seeded masks) and zeroed, and every cut: the server's read moves it
 * aside with a warning carrying the code, and never reads it; seeded random damage of the
 * same kinds through verify: reported, naming workspace.json, and nothing else. A file
 * written before the CRC32C still reads, and verifies clean.
 *
 * DAMAGE3_WORKSPACE_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { parseWorkspace, WORKSPACE_FILE } from '../storage/workspace-file.js';
import { WorkspaceStore } from '../server/workspace/store.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const VERIFIED = 150;

async function written(dir: string, r: () => number): Promise<Buffer> {
  const s = await WorkspaceStore.open(dir);
  for (let i = 0; i < 3; i++) {
    const ts = 1_700_000_000_000_000 + Math.floor(r() * 1e12);
    await s.addBookmark({ ts, ...(i === 1 ? { end: ts + 5 } : {}), note: `link ${i} ä 🛰 "down"`, url: `pos=${ts}` }, ts + 1);
  }
  await s.putLayout('main', { panels: [{ path: '/fabric/sw-1/cpu', w: 6 }] }, 5);
  return readFile(join(dir, WORKSPACE_FILE));
}

/** Opens the store over `bytes`: whether it read them (and then what), the warnings' codes, and whether the file was moved aside. */
async function serverRead(dir: string, bytes: Buffer): Promise<{ bookmarks: number; codes: unknown[]; aside: boolean }> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, WORKSPACE_FILE), bytes);
  const codes: unknown[] = [];
  const s = await WorkspaceStore.open(dir, { warn: (o) => codes.push((o as { code?: unknown }).code) });
  let aside = false;
  for (const n of await readdir(dir)) {
    if (n.startsWith(`${WORKSPACE_FILE}.damaged-`)) {
      aside = true;
      await rm(join(dir, n));
    }
  }
  return { bookmarks: s.listBookmarks().length, codes, aside };
}

function damaged(bytes: Buffer, kind: 'xor' | 'zero' | 'cut', at: number, mask: number): Buffer | undefined {
  if (kind === 'cut') return bytes.subarray(0, at);
  const b = Buffer.from(bytes);
  b[at] = kind === 'xor' ? (b[at] as number) ^ mask : 0;
  return b[at] === bytes[at] ? undefined : b;
}

describe('damaged bytes of the workspace file', () => {
  it('every byte flipped or zeroed, every cut: never read, moved aside with its code; verify reports each', async () => {
    const seed = scheduleSeed('DAMAGE3_WORKSPACE_SEED', 'damage3 workspace bytes');
    const r = rng(seed);
    const dir = await tmpDir();
    const pristine = await written(dir, r);
    expect(parseWorkspace(pristine.toString('utf8'))).not.toBeNull();
    const scratch = join(dir, 'scratch');
    let n = 0;
    for (let at = 0; at <= pristine.length; at++) {
      for (const kind of ['xor', 'zero', 'cut'] as const) {
        if (kind !== 'cut' && at === pristine.length) continue;
        const b = damaged(pristine, kind, at, 1 + Math.floor(r() * 255));
        if (!b || (kind === 'cut' && at === pristine.length)) continue;
        const where = `${kind} at ${at} of ${pristine.length} (seed ${seed})`;
        expect(parseWorkspace(b.toString('utf8')), `${where}: read as a workspace`).toBeNull();
        const got = await serverRead(scratch, b);
        expect(got, where).toEqual({ bookmarks: 0, codes: ['TPD_CORRUPT_BLOCK'], aside: true });
        n++;
      }
    }
    expect(n).toBeGreaterThan(2 * pristine.length);

    // Through verify: a small archive beside it.
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.append([['/x', 1]], 1_700_000_000_000_000);
    await a.writer!.flush();
    await a.close();
    await rm(scratch, { recursive: true, force: true });
    expect((await verifyArchive(dir)).problems).toEqual([]);
    for (let i = 0; i < VERIFIED; i++) {
      const kind = (['xor', 'zero', 'cut'] as const)[Math.floor(r() * 3)]!;
      const at = Math.floor(r() * pristine.length);
      const b = damaged(pristine, kind, at, 1 + Math.floor(r() * 255));
      if (!b) continue;
      await writeFile(join(dir, WORKSPACE_FILE), b);
      const report = await verifyArchive(dir);
      const where = `${kind} at ${at} (seed ${seed})`;
      expect(report.ok, `${where}: verify called it clean`).toBe(false);
      expect(report.problems.map((p) => [p.file, p.code]), where).toEqual([[WORKSPACE_FILE, 'TPD_CORRUPT_BLOCK']]);
    }
    await writeFile(join(dir, WORKSPACE_FILE), pristine);
    expect((await verifyArchive(dir)).problems).toEqual([]);
  });

  it('a file written before the CRC32C still reads, and verifies clean; one with another member does not', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.append([['/x', 1]], 1_700_000_000_000_000);
    await a.writer!.flush();
    await a.close();
    const old = { version: 1, bookmarks: [{ id: 'b1', ts: 5, note: 'n', createdTs: 6, url: 'u' }], layouts: [] };
    await writeFile(join(dir, WORKSPACE_FILE), `${JSON.stringify(old)}\n`);
    expect((await verifyArchive(dir)).problems).toEqual([]);
    expect((await WorkspaceStore.open(dir)).listBookmarks()).toEqual(old.bookmarks);
    await writeFile(join(dir, WORKSPACE_FILE), `${JSON.stringify({ ...old, crd: '00000000' })}\n`);
    expect((await verifyArchive(dir)).problems.map((p) => p.file)).toEqual([WORKSPACE_FILE]);
  });
});
