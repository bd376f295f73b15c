/**
 * A rotation cut short between renaming `current` to its rotated name and recording that
 * name in the catalog (a SIGKILL in that window: test/damage-kill-cold.test.ts met it at
 * seed 237440 under load). The catalog still names the file `current`, which is not on disk;
 * the file is, under its rotated name, with the same seq. The next open reported
 * 'file is in the catalog but not on disk: its batches are lost' and forgot the row, though
 * nothing was lost. Now it takes the new name (storage/reconcile.ts).
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { tmpDir } from './helpers/tmp.js';
import { readAll } from './helpers/replay.js';

describe('a rotation killed after its rename', () => {
  it('opens without a problem, every batch there, and starts a new current', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, {});
    for (let i = 0; i < 50; i++) a.writer!.append([['/x', i], ['/y', `v${i}`]], 1_000 + i);
    await a.writer!.flush();
    const name = a.nextRotatedName(1_049);
    await a.close();
    // What the rotation had done when the kill came: current committed and renamed.
    await rename(join(dir, 'current'), join(dir, name));

    const b = await Archive.open(dir, {});
    try {
      expect(b.problems).toEqual([]);
      expect(b.files.map((f) => f.name)).toEqual([name, 'current']);
      b.writer!.append([['/x', 99]], 2_000);
      await b.writer!.flush();
      const got = await readAll(b.cursor());
      expect(got.length).toBe(51);
      expect(got[49]!.updates).toEqual([['/x', 49], ['/y', 'v49']]);
    } finally {
      await b.close();
    }
    expect((await verifyArchive(dir)).problems).toEqual([]);
  });
});
