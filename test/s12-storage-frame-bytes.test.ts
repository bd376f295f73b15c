/**
 * Frames bounded in bytes at the writer (storage/frame-parts.ts). A PATHS frame held every
 * path a block defined and an IMAGE every path's latest value, in one frame: past the
 * format's 64 MiB payload the seal threw after its DELTA frame was queued without its paths
 * (every read of those batches then failed as corrupt: accepted data lost), and an image or
 * a rotation failed for good. A batch's strings were counted by UTF-16 length against
 * batchBytesMax, so a batch of three-byte characters was accepted and its block then could
 * not be sealed.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { BlockType } from '../storage/codec/frame.js';
import { isTapedeckError } from '../protocol/errors.js';
import { tmpDir } from './helpers/tmp.js';
import { readAll } from './helpers/replay.js';

/** Rows of one type in every file's block table. */
function rowsOf(a: Archive, type: number): number {
  let n = 0;
  for (const f of a.files) n += a.table(f).rows.filter((r) => r.type === type).length;
  return n;
}

describe('frames bounded in bytes', () => {
  it('cuts a block\'s PATHS frame and a file\'s dictionary into parts: no accepted batch is lost', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, {});
    const w = a.writer!;
    // 4 096 paths of about 12 KiB of UTF-8 a batch: four batches' new paths (one block of
    // 16 384 updates) are about 190 MiB of definitions.
    const seg = '€'.repeat(4000);
    const batches = 5;
    for (let b = 0; b < batches; b++) {
      const ups: Array<[string, number]> = [];
      for (let i = 0; i < 4096; i++) ups.push([`/${seg}/${b}/${i}`, b * 10_000 + i]);
      w.append(ups, 1000 + b);
    }
    await w.flush();
    await w.rotate(); // the new file's dictionary: every path again
    w.append([[`/${seg}/after`, -1]], 2000);
    await a.close();
    expect((await verifyArchive(dir)).ok).toBe(true);

    const r = await Archive.open(dir, { readonly: true });
    try {
      expect(r.files.length).toBe(2);
      expect(rowsOf(r, BlockType.PATHS)).toBeGreaterThan(10);
      const got = await readAll(r.cursor());
      expect(got.map((b) => b.updates.length)).toEqual([4096, 4096, 4096, 4096, 4096, 1]);
      for (let b = 0; b < batches; b++) {
        const u = got[b]!.updates;
        expect(u[0]).toEqual([`/${seg}/${b}/0`, b * 10_000]);
        expect(u[4095]).toEqual([`/${seg}/${b}/4095`, b * 10_000 + 4095]);
      }
      // A seek into the second file: its state comes from the dictionary and image there.
      const c = r.cursor();
      await c.seek({ ts: 2000 });
      const state = await c.state();
      expect(state.size).toBe(batches * 4096 + 1);
      expect(state.get(`/${seg}/3/17`)).toBe(30_017);
    } finally {
      await r.close();
    }
  });

  it('cuts an image into IMAGE frames of one time, and a seek or a writable open takes every part', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, {});
    const w = a.writer!;
    // 24 paths of a 1.2 M-character string of three-byte characters: 86 MiB of state, and
    // an image of them more than the 64 MiB a frame's payload may be.
    const n = 24;
    const value = (i: number): string => String.fromCharCode(0x4e00 + i).repeat(1_200_000);
    for (let i = 0; i < n; i++) w.append([[`/big/${i}`, value(i)], ['/n', i]], 1000 + i);
    await w.flush();
    await w.rotate(); // the new file opens with the image
    w.append([['/n', 99]], 5000);
    await a.close();
    expect((await verifyArchive(dir)).ok).toBe(true);

    const check = async (state: Map<string, unknown>): Promise<void> => {
      expect(state.size).toBe(n + 1);
      for (let i = 0; i < n; i++) {
        const v = state.get(`/big/${i}`) as string;
        expect(v.length).toBe(1_200_000);
        expect(v === value(i)).toBe(true);
      }
    };
    const r = await Archive.open(dir, { readonly: true });
    try {
      const second = r.files[1]!;
      const images = r.table(second).rows.filter((row) => row.type === BlockType.IMAGE);
      expect(images.length).toBeGreaterThan(1);
      expect(new Set(images.map((row) => row.lastTs)).size).toBe(1);
      const c = r.cursor();
      await c.seek({ ts: 5000 });
      await check(await c.state());
      expect((await c.state()).get('/n')).toBe(99);
    } finally {
      await r.close();
    }
    // A writable open reads the latest values back (for its next image) through the parts.
    const again = await Archive.open(dir, {});
    again.writer!.append([['/n', 100]], 6000);
    await again.writer!.rotate();
    await again.close();
    const r2 = await Archive.open(dir, { readonly: true });
    try {
      const c = r2.cursor();
      await c.seek('end');
      const state = await c.state();
      await check(state);
      expect(state.get('/n')).toBe(100);
      expect(r2.files.length).toBe(3);
    } finally {
      await r2.close();
    }
  }, 120_000);

  it('counts a batch\'s strings in the bytes they take: a batch past batchBytesMax in UTF-8 is refused, the archive stays whole', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, {});
    const w = a.writer!;
    w.append([['/before', 1]], 1000);
    // Under batchBytesMax in UTF-16 units, over it (and over the 64 MiB payload) in UTF-8.
    const units = Math.floor(STORAGE_LIMITS.batchBytesMax / 2);
    let err: unknown;
    try {
      w.append([['/wide', '€'.repeat(units)]], 2000);
    } catch (e) {
      err = e;
    }
    expect(isTapedeckError(err) && err.code === 'TPD_BATCH_TOO_LARGE').toBe(true);
    // A lone surrogate makes the string msgpack ext 1 (two bytes a unit): counted as such.
    const lone = 'a'.repeat(units - 1) + '\ud800';
    err = undefined;
    try {
      w.append([['/lone', lone]], 2001);
    } catch (e) {
      err = e;
    }
    expect(isTapedeckError(err) && err.code === 'TPD_BATCH_TOO_LARGE').toBe(true);
    // Under the bound in bytes: taken, sealed and read back.
    const fits = '€'.repeat(Math.floor(STORAGE_LIMITS.batchBytesMax / 3) - 100);
    w.append([['/fits', fits]], 3000);
    w.append([['/after', 2]], 4000);
    await a.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
    const r = await Archive.open(dir, { readonly: true });
    try {
      const got = await readAll(r.cursor());
      expect(got.map((b) => b.updates[0]![0])).toEqual(['/before', '/fits', '/after']);
      expect(got[1]!.updates[0]![1] === fits).toBe(true);
    } finally {
      await r.close();
    }
  }, 120_000);
});
