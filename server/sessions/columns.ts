/**
 * A block read as columns (storage Cursor.nextColumns: one await a block, numbers unboxed,
 * no object per update) on the unpaced replay path, and how much of it the session has
 * sent. Frames are cut from it as gatherFrame (./gather.ts) cuts them from batches read
 * one by one: the same batches per frame, in the same frame bounds.
 *
 * The cursor has read the whole block: batches held but not sent are ahead of the
 * position the session shows. Before anything else uses the cursor (a control, a state
 * frame, a paced or burst step) the session puts it back after the last batch it sent
 * (Playhead.releaseColumns, ./playhead.ts): batch timestamps only grow, so a seek to that time is exact.
 */
import type { ColumnBatches } from '../../storage/cursor.js';
import { FRAME_ENVELOPE_BYTES } from './frame-bytes.js';

export interface ColumnFramePlan {
  /** Batches in the frame at most. */
  batchesMax: number;
  /** Updates in the frame at about most (a frame stops after the batch that passes it). */
  updatesMax: number;
  /** Bytes in the frame at most (estimated by `bytesOf`), unless its first batch alone is more. */
  bytesMax: number;
  /** Batch k's bytes in the frame, at least its encoded size (./frame-bytes.ts). */
  bytesOf: (k: number) => number;
  /** The session's bounded end, or null: a batch after it is not taken. */
  endUs: number | null;
}

export class HeldColumns {
  view: ColumnBatches | undefined;
  /** The next batch of `view` to send. */
  next = 0;

  /** Batches read and not sent. */
  get unsent(): boolean {
    return this.view !== undefined && this.next < this.view.batches;
  }

  hold(view: ColumnBatches): void {
    this.view = view;
    this.next = 0;
  }

  clear(): void {
    this.view = undefined;
    this.next = 0;
  }

  /**
   * The end (exclusive) of the next frame's batches, from `next`: as many as the plan
   * takes (the first always, whatever its bytes). `next` itself when that batch is past the
   * end bound.
   */
  frameEnd(plan: ColumnFramePlan): number {
    const v = this.view as ColumnBatches;
    let k = this.next;
    let updates = 0;
    let bytes = FRAME_ENVELOPE_BYTES;
    while (k < v.batches && k - this.next < plan.batchesMax && (k === this.next || updates < plan.updatesMax)) {
      if (plan.endUs !== null && (v.ts[k] as number) > plan.endUs) break;
      if (plan.batchesMax > 1) {
        bytes += plan.bytesOf(k);
        if (k > this.next && bytes > plan.bytesMax) break;
      }
      updates += (v.starts[k + 1] as number) - (v.starts[k] as number);
      k++;
    }
    return k;
  }
}
