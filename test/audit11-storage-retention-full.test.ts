/**
 * Retention on a full disk: what gives the space back. An eviction recorded the file as
 * remote in the catalog before removing it, and on a full disk that write failed
 * (SQLITE_FULL): the check stopped at its first file, nothing was removed, and the file
 * stayed on disk while the archive held it as remote (no later check looked at it again),
 * so the recorder stayed refused (TPD_DISK_FULL) though every rotated file was shipped.
 * Found with a 4 MiB tmpfs filled under an archive whose rotated files were all shipped
 * (check: files [remote, local, local, local, local], writer still disk_full). Now the local
 * copy goes first, and an open takes a shipped file gone from disk as remote (an eviction
 * cut short before its catalog row, by a crash or a full disk), not as missing.
 * AUDIT11_RETENTION_SEED=<n> replays the workload's sizes.
 */
import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { ROTATED_NAME } from '../storage/segment-file.js';
import { verifyArchive } from '../storage/verify.js';
import type { Batch } from '../protocol/value.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { tmpDir } from './helpers/tmp.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { until } from './helpers/until.js';
import { plain, readAll } from './helpers/replay.js';
import { HOOKS as FIX, recordShipped } from './helpers/cold-shipped.js';

const T0 = 1_760_000_000_000_000;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 64 * 1024 };
const FAST = { retryMs: 20, retryMaxMs: 50, ackWaitMs: 200 };
const FILES = 4;

function workload(seed: number): (i: number) => Batch {
  const r = rng(seed);
  const pad = 'v'.repeat(30 + Math.floor(r() * 60));
  return (i) => ({ ts: T0 + i * 1000, updates: [[`/p${i % 97}`, `${pad}${i}`], ['/n', i * 0.5]] });
}

async function withCold<T>(dir: string, cold: string, f: (a: Archive, c: ColdStorage) => Promise<T>, retention = false): Promise<T> {
  const a = await Archive.open(dir, { ...STORAGE, diskFull: FAST });
  const c = await ColdStorage.start(a, {
    hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [cold] }, get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] } },
    ...(retention ? { retention: { maxAgeMs: 0, maxBytes: 1 } } : {}), checkIntervalMs: 0, listIntervalMs: 0, fetchedKeepMs: 0,
  });
  try {
    return await f(a, c);
  } finally {
    await c.stop();
    await a.close().catch(() => undefined);
  }
}

describe('retention on a full disk', () => {
  const fs = useTmpfs('tapedeck-a11-retention-', 'the retention full-disk test');

  it('evicts shipped files though the catalog cannot be written, and recording resumes without anyone freeing space', async (ctx) => {
    if (!fs.mounted) return ctx.skip();
    const seed = scheduleSeed('AUDIT11_RETENTION_SEED', 'audit11-storage-retention-full');
    const batch = workload(seed);
    const dir = join(fs.dir, 'archive');
    const cold = join(await tmpDir('tapedeck-a11-retention-cold-'), 'cold');
    await mkdir(cold);
    let n = 0;
    let filler = '';
    await withCold(dir, cold, async (a, c) => {
      n = FILES * 3000;
      await recordShipped(a, c, Array.from({ length: n }, (_, i) => batch(i)), { perFile: 3000, rotations: FILES });
      filler = await fillDisk(fs.dir);
      // Append until the disk refuses; what was accepted waits in memory.
      for (let i = 0; i < 20_000 && a.writer!.health.state !== 'disk_full'; i++, n++) {
        a.writer!.append(batch(n).updates, batch(n).ts);
        if (i % 50 === 49) await a.writer!.flush().catch(() => undefined);
      }
      expect(a.writer!.health.state).toBe('disk_full');
      await c.check();
      expect(a.files.filter((f) => ROTATED_NAME.test(f.name)).map((f) => f.location), `seed ${seed}`).toEqual(Array(FILES).fill('remote'));
      expect((await readdir(dir)).filter((x) => ROTATED_NAME.test(x)), `seed ${seed}`).toEqual([]);
      await until(() => a.writer!.health.state === 'ok', 10_000, 'the writer to resume once retention gave space back');
      await a.writer!.flush();
    }, true);
    // Every batch, exactly: the evicted ones through the get hook.
    await withCold(dir, cold, async (a) => {
      expect(a.problems).toEqual([]);
      const got = await readAll(a.cursor());
      expect(got.length, `seed ${seed}`).toBe(n);
      expect(plain(got)).toEqual(plain(Array.from({ length: n }, (_, i) => batch(i))));
    });
    await unlink(filler);
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('an open and verify take a shipped file gone from disk (an eviction cut short before its catalog row) as remote, not missing', async () => {
    const batch = workload(1);
    const base = await tmpDir('tapedeck-a11-retention-gone-');
    const dir = join(base, 'archive');
    const cold = join(base, 'cold');
    await mkdir(cold);
    let n = 0;
    await withCold(dir, cold, async (a, c) => {
      n = FILES * 300;
      await recordShipped(a, c, Array.from({ length: n }, (_, i) => batch(i)), { perFile: 300, rotations: FILES });
    });
    const gone = (await readdir(dir)).filter((x) => ROTATED_NAME.test(x)).sort()[1] as string;
    await unlink(join(dir, gone));
    expect((await verifyArchive(dir)).problems).toEqual([]);
    await withCold(dir, cold, async (a) => {
      expect(a.problems).toEqual([]);
      expect(a.files.find((f) => f.name === gone)?.location).toBe('remote');
      expect(plain(await readAll(a.cursor()))).toEqual(plain(Array.from({ length: n }, (_, i) => batch(i))));
    });
  });
});
