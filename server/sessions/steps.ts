/**
 * Batch steps (`pos: "+N"` / `"-N"`) that answer how far they went, so a step that runs
 * into the start or the end of the archive can say so (protocol/time.ts stepOutcome).
 * storage/cursor.ts seek({ batches }) moves but does not count; these count.
 */
import { clampMessage, stepOutcome } from '../../protocol/time.js';
import type { Cursor } from '../../storage/index.js';

/**
 * A session's step of `n` batches (negative: back) from the last batch it delivered
 * (`posUs`); `held`: a batch was read but held back (pacing, end), which moved the cursor
 * one further, so the cursor goes back first. Answers the TPD_CLAMPED notice of a step that
 * ran into the start or the end, or null.
 */
export async function stepFrom(cursor: Cursor, n: number, held: boolean, posUs: number | null): Promise<string | null> {
  if (held) await cursor.seek(posUs !== null ? { ts: posUs } : 'beginning');
  const moved = n > 0 ? await stepForward(cursor, n) : await stepBack(cursor, -n);
  return clampMessage(n, stepOutcome(n, moved, cursor.pos));
}

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
