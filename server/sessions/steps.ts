/**
 * Batch steps (`pos: "+N"` / `"-N"`) that answer how far they went, so a step that runs
 * into the start or the end of the archive can say so (protocol/time.ts stepOutcome).
 * storage/cursor.ts seek({ batches }) moves but does not count; these count.
 */
import type { Cursor } from '../../storage/index.js';

/** Moves `n` batches forward (what seek({ batches: n }) does); answers how many there were. */
export async function stepForward(cursor: Cursor, n: number): Promise<number> {
  let moved = 0;
  while (moved < n && (await cursor.nextRaw()) !== null) moved++;
  return moved;
}

/**
 * Moves `n` batches back; answers how many positions it moved. The beginning (before the
 * first batch) is a position: from the k-th batch, `-k` lands there unclamped. A step that
 * ran into it counts the batches it passed by reading them again from the beginning (at
 * most `n`, as many as the step itself read), then goes back there.
 */
export async function stepBack(cursor: Cursor, n: number): Promise<number> {
  const from = cursor.pos;
  await cursor.seek({ batches: -n });
  if (from === null) return 0;
  if (cursor.pos !== null) return n;
  let seen = 0;
  for (let b = await cursor.nextRaw(); b !== null && b.ts <= from && seen < n; b = await cursor.nextRaw()) seen++;
  await cursor.seek('beginning');
  return seen;
}
