/**
 * An archive with cold storage whose get hook is held by FIFOs (test/fixtures/hooks/
 * get-held.sh): a fetch of file NAME waits while HOLD/NAME is a FIFO until a line is written
 * to it, so a test decides when each fetch ends. Puts copy to COLD; every shipped file is
 * evicted at once (retention maxBytes 1); checks and lists run only when asked.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Archive } from '../../storage/archive.js';
import { ColdStorage } from '../../storage/cold.js';

const FIX = resolve('test/fixtures/hooks');

export interface HeldGets {
  a: Archive;
  c: ColdStorage;
  /** Where puts copy files to. */
  cold: string;
  /** Where the FIFOs that hold the gets go. */
  hold: string;
}

/** The archive under `base`/archive, cold storage in `base`/cold, FIFOs in `base`/hold. */
export async function heldGets(base: string): Promise<HeldGets> {
  const cold = join(base, 'cold');
  const hold = join(base, 'hold');
  await mkdir(cold);
  await mkdir(hold);
  const a = await Archive.open(join(base, 'archive'), { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const c = await ColdStorage.start(a, {
    hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [cold] }, get: { cmd: join(FIX, 'get-held.sh'), args: [cold, hold] } },
    retention: { maxAgeMs: 0, maxBytes: 1 },
    checkIntervalMs: 0,
    listIntervalMs: 0,
    fetchedKeepMs: 0,
  });
  return { a, c, cold, hold };
}
