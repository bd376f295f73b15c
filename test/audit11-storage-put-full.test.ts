/**
 * A put that ends while the archive's disk is full. Its status row ('done', or 'failed')
 * could not be written to the catalog (SQLITE_FULL) and the error was thrown out of the
 * shipping loop, whose promise nothing awaited: an unhandled rejection, which ends a Node 20
 * process (the server). Found shipping a rotated file with a gated put hook while a filler
 * took the 4 MiB tmpfs. Now the row is kept and written again at the next check, and
 * retention removes the local copy only once the catalog holds it as shipped (an open must
 * know the file is in cold storage); once space is back the file is evicted and read back.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { ColdStorage, type ColdEvent } from '../storage/cold.js';
import type { Batch } from '../protocol/value.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { tmpDir } from './helpers/tmp.js';
import { plain, readAll } from './helpers/replay.js';
import { HOOKS as FIX } from './helpers/cold-shipped.js';

const T0 = 1_760_000_000_000_000;
const STORAGE = { flushIntervalMs: 0, diskFull: { retryMs: 20, retryMaxMs: 50, ackWaitMs: 200 } };
const batch = (i: number): Batch => ({ ts: T0 + i * 1000, updates: [[`/p${i % 97}`, `${'x'.repeat(50)}${i}`]] });

describe('a put that ends on a full disk', () => {
  const fs = useTmpfs('tapedeck-a11-put-full-', 'the put full-disk test');

  it('keeps the process up, keeps its status, and the file is evicted once the status is recorded', async (ctx) => {
    if (!fs.mounted) return ctx.skip();
    const base = await tmpDir('tapedeck-a11-put-full-cold-');
    const cold = join(base, 'cold');
    const gate = join(base, 'gate');
    await mkdir(cold);
    execFileSync('mkfifo', [gate]);
    const dir = join(fs.dir, 'archive');
    const all = Array.from({ length: 3000 }, (_, i) => batch(i));
    const a = await Archive.open(dir, STORAGE);
    const hooks = { put: { cmd: join(FIX, 'put-gated.sh'), args: [cold, gate] }, get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] } };
    const c = await ColdStorage.start(a, { hooks, retention: { maxAgeMs: 0, maxBytes: 1 }, checkIntervalMs: 0, listIntervalMs: 0, fetchedKeepMs: 0 });
    let filler: string | undefined;
    try {
      for (const b of all) a.writer!.append(b.updates, b.ts);
      await a.writer!.rotate();
      const name = a.files[0]!.name;
      filler = await fillDisk(fs.dir);
      const ended = new Promise<ColdEvent>((done) => c.on('event', (e: ColdEvent) => e.type === 'put' && done(e)));
      await writeFile(gate, 'go\n');
      expect(await ended).toMatchObject({ type: 'put', name, ok: true });
      expect(c.putStatus(name)?.status).toBe('done');
      // Still full: the status is not in the catalog, so the local copy stays.
      await c.check();
      expect(a.files[0]!.location).toBe('local');
      await unlink(filler);
      filler = undefined;
      await c.check();
      expect(a.files[0]!.location).toBe('remote');
    } finally {
      await c.stop();
      await a.close().catch(() => undefined);
      if (filler !== undefined) await unlink(filler);
    }
    const b = await Archive.open(dir, STORAGE);
    const c2 = await ColdStorage.start(b, { hooks: { get: hooks.get }, checkIntervalMs: 0, listIntervalMs: 0 });
    try {
      expect(b.problems).toEqual([]);
      expect(b.files[0]!.location).toBe('remote');
      // Read back through the get hook.
      expect(b.catalog.puts().map((p) => p.status)).toEqual(['done']);
      expect(plain(await readAll(b.cursor()))).toEqual(plain(all));
    } finally {
      await c2.stop();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
