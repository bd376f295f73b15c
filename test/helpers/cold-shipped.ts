/** Recording into an archive whose rotated files are shipped to cold storage, for the cold and full-disk tests. */
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { Archive, type OpenOptions } from '../../storage/archive.js';
import { ColdStorage } from '../../storage/cold.js';
import type { Batch } from '../../protocol/value.js';

/** The hook scripts of test/fixtures/hooks. */
export const HOOKS = resolve('test/fixtures/hooks');

export interface ShippedFiles {
  /** Batches a file. */
  perFile: number;
  /** The first `rotations` files are rotated, each once its put succeeded; the rest stay in current. */
  rotations: number;
  /** A flush every this many batches (one block or more each); once a file by default. */
  flushEvery?: number;
}

/** Appends `batches` in files of `perFile`, rotating the first `rotations` files and waiting for each one's put. */
export async function recordShipped(a: Archive, c: ColdStorage, batches: readonly Batch[], o: ShippedFiles): Promise<void> {
  const w = a.writer!;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i] as Batch;
    w.append(b.updates, b.ts);
    if ((i + 1) % (o.flushEvery ?? o.perFile) === 0) await w.flush();
    if ((i + 1) % o.perFile !== 0 || (i + 1) / o.perFile > o.rotations) continue;
    const shipped = new Promise<void>((done) => c.on('event', (e: { type: string; ok?: boolean }) => e.type === 'put' && e.ok === true && done()));
    await w.rotate();
    await shipped;
    c.removeAllListeners('event');
  }
  await w.flush();
}

/**
 * Records `batches` into a new archive at `dir` (put hook copying to `cold`, retention
 * removing every shipped file), then runs retention once: the rotated files are remote,
 * known to the catalog only, and the last file is `current`.
 */
export async function recordEvicted(dir: string, cold: string, batches: readonly Batch[], o: ShippedFiles & { storage: OpenOptions }): Promise<void> {
  const a = await Archive.open(dir, o.storage);
  const c = await ColdStorage.start(a, { hooks: { put: { cmd: join(HOOKS, 'put-copy.sh'), args: [cold] } }, retention: { maxAgeMs: 0, maxBytes: 1 }, checkIntervalMs: 0, listIntervalMs: 0 });
  try {
    await recordShipped(a, c, batches, o);
    await c.check();
    expect(a.files.map((f) => f.location)).toEqual([...Array(o.rotations).fill('remote'), 'local']);
  } finally {
    await c.stop();
    await a.close();
  }
}
