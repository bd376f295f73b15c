/**
 * STORAGE_LIMITS made writable for one test file (tests shrink slices, targets and held
 * bytes to reach their edges with little data): every limit is put back after each test,
 * once the cleanups the test registered have run, last registered first.
 */
import { afterEach } from 'vitest';
import { STORAGE_LIMITS } from '../../storage/limits.js';

export type WritableLimits = { -readonly [K in keyof typeof STORAGE_LIMITS]: number };

/** `saved`: the limits as they were when the file started. */
export function storageLimitsForTests(): { limits: WritableLimits; saved: Readonly<WritableLimits>; cleanup: Array<() => Promise<void>> } {
  const limits = STORAGE_LIMITS as WritableLimits;
  const saved = { ...STORAGE_LIMITS };
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    Object.assign(limits, saved);
  });
  return { limits, saved, cleanup };
}
