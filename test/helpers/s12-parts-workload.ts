/**
 * The workload of test/s12-parts-crash.test.ts: batches whose images and path dictionaries
 * are cut into many parts once framePartBytesTarget is lowered to PARTS_TEST_BYTES (each
 * process that writes or reads them lowers it: the limit is one constant of the storage
 * layer). Paths keep coming (long names: a block's new paths take several PATHS frames) and
 * hold short strings (an image of them takes several IMAGE frames).
 */
import type { Batch, Update } from '../../protocol/value.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { rng } from './workload.js';

export const PARTS_TEST_BYTES = 4096;

/** Lowers the part size in this process. */
export function lowerPartBytes(): void {
  (STORAGE_LIMITS as { framePartBytesTarget: number }).framePartBytesTarget = PARTS_TEST_BYTES;
}

/** Batch number i: a pure function of i. */
export function partsBatch(i: number): Batch {
  const r = rng(i + 7);
  const known = Math.min(3000, 40 + 4 * i);
  const updates: Update[] = [];
  const n = 4 + Math.floor(r() * 16);
  for (let j = 0; j < n; j++) {
    // New paths arrive at the top of the range; older ones are set again now and then.
    const p = j < 4 ? Math.max(0, known - 1 - j) : Math.floor(r() * known);
    updates.push([`/parts/dev-${p % 13}/${'channel-'.repeat(5)}${p}`, r() < 0.5 ? Math.round(r() * 1e5) / 10 : `s${i}-${j}-${'z'.repeat(Math.floor(r() * 30))}`]);
  }
  return { ts: 1_760_000_000_000_000 + i * 1000, updates };
}
