/**
 * Batch steps (`pos: "+N"` / `"-N"`) that answer how far they went, so a step that runs
 * into the start or the end of the archive can say so (protocol/time.ts stepOutcome).
 * storage/cursor.ts seek({ batches }) moves but does not count; these count. A step moves
 * at most `slice` batches (PLAYBACK_DEFAULTS.stepBatchesPerYield) between two yields to the
 * event loop: stepping is a read of every batch passed, and a step of seekStepsMax batches
 * over cached blocks would otherwise hold the server for its whole length.
 */
import { clampMessage, stepOutcome } from '../../protocol/time.js';
import type { Cursor } from '../../storage/index.js';
import { yieldToEventLoop } from './turns.js';

/**
 * A session's step of `n` batches (negative: back) from the last batch it delivered
 * (`posUs`); `back`: a batch was read but held back (pacing, end), which moved the cursor
 * one further, so the cursor goes back first. Answers the TPD_CLAMPED notice of a step that
 * ran into the start or the end, or null.
 */
export async function stepFrom(cursor: Cursor, n: number, back: (() => Promise<void>) | undefined, posUs: number | null, slice: number): Promise<string | null> {
  if (back) await back();
  const moved = n > 0 ? await stepForward(cursor, n, slice) : await stepBack(cursor, -n, slice);
  return clampMessage(n, stepOutcome(n, moved, cursor.pos));
}

/**
 * Moves `n` batches forward (what seek({ batches: n }) does); answers how many there were.
 * A file that cannot be read is stepped over (storage/cursor-gap.ts): the state frame that
 * follows a step is whole, and the lost batches are not counted.
 */
export async function stepForward(cursor: Cursor, n: number, slice: number): Promise<number> {
  let moved = 0;
  while (moved < n && (await nextAcross(cursor)) !== null) {
    if (++moved % slice === 0 && moved < n) await yieldToEventLoop();
  }
  return moved;
}

async function nextAcross(cursor: Cursor): Promise<unknown> {
  for (;;) {
    try {
      return await cursor.nextRaw();
    } catch (err) {
      const gap = typeof (cursor as Partial<Cursor>).crossGone === 'function' ? await cursor.crossGone(err) : undefined;
      if (gap === undefined) throw err;
      // Nothing readable after the hole yet: the step ran into the end of what can be read.
      if (gap.place === null) return null;
    }
  }
}

/**
 * Moves `n` batches back; answers how many positions it moved. The beginning (before the
 * first batch) is a position: from the k-th batch, `-k` lands there unclamped. A step that
 * ran into it counts the batches it passed by reading them again from the beginning (at
 * most `n`, as many as the step itself read), then goes back there. Steps back of `slice`
 * batches each add up to the step (each counts from the batch the one before landed on).
 */
export async function stepBack(cursor: Cursor, n: number, slice: number): Promise<number> {
  const from = cursor.pos;
  for (let left = n; left > 0 && cursor.pos !== null; ) {
    const k = Math.min(left, slice);
    await cursor.seek({ batches: -k });
    left -= k;
    if (left > 0) await yieldToEventLoop();
  }
  if (from === null) return 0;
  if (cursor.pos !== null) return n;
  let seen = 0;
  for (let b = await cursor.nextRaw(); b !== null && b.ts <= from && seen < n; b = await cursor.nextRaw()) {
    if (++seen % slice === 0) await yieldToEventLoop();
  }
  await cursor.seek('beginning');
  return seen;
}
