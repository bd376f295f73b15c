/**
 * What goes into one frame of batches: the first batch, then as many following ones as are
 * due now, up to the frame's bounds. Batches keep their recorded grouping and order; a batch
 * read but not taken (past the end, not due yet, or too large for what is left of the
 * frame's bytes) is handed back to be sent later. A batch is never split: one larger than
 * the frame's bytes goes alone in its own frame.
 */
import type { RawBatch } from '../../storage/cursor.js';
import { FRAME_ENVELOPE_BYTES } from './frame-bytes.js';

export interface FramePlan {
  /** Batches in the frame at most (1 for clients that take one `batch` frame per batch). */
  batchesMax: number;
  /** Updates in the frame at about most (a frame stops after the batch that passes it). */
  updatesMax: number;
  /** Bytes in the frame at most (estimated by `bytesOf`), unless its first batch alone is more. */
  bytesMax: number;
  /** A batch's bytes in the frame, at least its encoded size (./frame-bytes.ts). */
  bytesOf: (b: RawBatch) => number;
  /** The session's bounded end, or null: a batch after it is not taken. */
  endUs: number | null;
  /** Paced sessions: ms until a batch is due (over `earlyMs`: not taken); undefined: unpaced. */
  waitMs: ((tsUs: number) => number) | undefined;
  earlyMs: number;
  /** True when the frame should stop growing (a control change is waiting). */
  interrupted: () => boolean;
  /** Told how late each batch taken after the first went out (paced sessions). */
  onTime: (lateMs: number) => void;
}

export interface Next {
  nextRaw(): Promise<RawBatch | null>;
}

export interface GatheredFrame {
  out: RawBatch[];
  /** A batch read but not taken (past the end, not due yet). */
  held: RawBatch | null;
  /** A read after `out` failed (a gone file, a damaged block): `out` goes first, then this. */
  failed?: unknown;
}

/**
 * The batches of one frame, starting with `first`, and the batch read but held back, if any.
 * A read that fails stops the frame where it is: the batches read before it are handed back
 * with the failure, never dropped (the cursor stands after the last of them).
 */
export async function gatherFrame(cursor: Next, first: RawBatch, plan: FramePlan): Promise<GatheredFrame> {
  const out: RawBatch[] = [first];
  let updates = first.to - first.from;
  let bytes = plan.batchesMax > 1 ? FRAME_ENVELOPE_BYTES + plan.bytesOf(first) : 0;
  while (out.length < plan.batchesMax && updates < plan.updatesMax && !plan.interrupted()) {
    let nb: RawBatch | null;
    try {
      nb = await cursor.nextRaw();
    } catch (failed) {
      return { out, held: null, failed };
    }
    if (!nb) break;
    const waitMs = plan.waitMs ? plan.waitMs(nb.ts) : 0;
    if ((plan.endUs !== null && nb.ts > plan.endUs) || waitMs > plan.earlyMs) return { out, held: nb };
    const nbBytes = plan.bytesOf(nb);
    if (bytes + nbBytes > plan.bytesMax) return { out, held: nb };
    if (plan.waitMs) plan.onTime(Math.abs(waitMs));
    out.push(nb);
    updates += nb.to - nb.from;
    bytes += nbBytes;
  }
  return { out, held: null };
}
