import { describe, expect, it } from 'vitest';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { tmpDir } from './helpers/tmp.js';

/**
 * The writer renames `current` on disk, then the file's entry (writer.renameCurrent): a read
 * whose open falls between the two must find the file under its new name, not fail TPD_IO.
 * The window is reproduced exactly: the file is renamed on disk while its entry still says
 * `current`, and the entry is renamed by a callback queued before the read's open fails.
 */
describe('a read racing a rotation', () => {
  it('opens the file under its new name', async () => {
    const dir = await tmpDir('rotation-race');
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    try {
      const w = a.writer!;
      for (let i = 0; i < 50; i++) w.append([['/race/a', i], ['/race/b', `v${i}`]], 1_000_000 + i);
      await w.flush();
      const entry = a.fileList.last()!;
      expect(entry.name).toBe('current');
      const row = a.table(entry).delta(0);
      expect(a.releaseFile(entry.seq)).toBe(true); // no handle cached: the read must open the file
      const sealed = a.nextRotatedName(1_000_049);
      await rename(join(dir, 'current'), join(dir, sealed));
      setImmediate(() => a.fileList.sealAs(entry.seq, sealed));
      const got = await a.readBlockSelected(entry, row, () => true);
      expect(got.ts.length).toBe(row.batches);
      // A file really gone is still an error, not a retry loop.
      const gone = a.fileList.last()!;
      expect(a.releaseFile(gone.seq)).toBe(true);
      await rename(join(dir, sealed), join(dir, 'elsewhere'));
      await expect(a.readBlockSelected(gone, row, () => true)).rejects.toMatchObject({ code: 'TPD_IO' });
      await rename(join(dir, 'elsewhere'), join(dir, sealed));
    } finally {
      await a.close().catch(() => undefined);
    }
  });
});
