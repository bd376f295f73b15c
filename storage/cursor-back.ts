/**
 * A cursor's steps back (Cursor.seek({ batches: -n })): the batches before its position,
 * newest first, across files (a file not yet indexed is fetched and indexed; a gone one,
 * and a hole no file entry names, fail with the error every read gives), read through the cursor's decoded block
 * (cursor-block.ts), and the n-th of them its filter shows. Batches the filter does not show
 * are passed over, yielding to the event loop every STORAGE_LIMITS.passedBatchesPerYield of
 * them (over cached blocks nothing else would let sockets and timers run).
 */
import { setImmediate as turnOfEventLoop } from 'node:timers/promises';
import type { Archive, FetchWait } from './archive.js';
import type { CursorBlock } from './cursor-block.js';
import type { CursorFilter } from './cursor-filter.js';
import { holeAfter, holeError } from './cursor-gap.js';
import { goneFile } from './cursor-seek.js';
import type { HeldBlock } from './cursor-state.js';
import { STORAGE_LIMITS } from './limits.js';

/** Batch k of delta block di of file seq. */
export interface BatchPlace {
  seq: number;
  di: number;
  k: number;
}

/**
 * The visible batch n back from the position `from` (0: the newest visible batch before
 * it), and its time; undefined when there are not that many (the position is then the
 * beginning).
 */
export async function visibleBefore(a: Archive, block: CursorBlock, filter: CursorFilter, wait: FetchWait | undefined, from: BatchPlace, n: number): Promise<(BatchPlace & { ts: number }) | undefined> {
  let found = -1;
  let passed = 0;
  for await (const at of batchesBefore(a, block, wait, from)) {
    const ts = at.block.d.ts[at.k] as number;
    if (!filter.visible(at.block.d, at.block.starts, at.k)) {
      if (++passed % STORAGE_LIMITS.passedBatchesPerYield === 0) await turnOfEventLoop(); // lets sockets and timers run (an await on a cached block's settled promise is none)
      continue;
    }
    if (++found === n) return { seq: at.seq, di: at.di, k: at.k, ts };
  }
  return undefined;
}

/** Batches before `from`, newest first. */
async function* batchesBefore(a: Archive, block: CursorBlock, wait: FetchWait | undefined, from: BatchPlace): AsyncGenerator<BatchPlace & { block: HeldBlock }> {
  let f = a.fileList.bySeq(from.seq);
  if (!f) return;
  let di = from.di;
  let k = from.k;
  while (true) {
    if (k > 0) {
      const held = await block.load(f, di);
      for (let j = Math.min(k, held.d.ts.length) - 1; j >= 0; j--) yield { seq: f.seq, di, k: j, block: held };
    }
    di--;
    while (di < 0) {
      f = a.fileList.before(f.seq);
      // A hole no entry names (seqs with no file, the older file's damaged tail; at the
      // beginning, seqs before the first file): its batches would be counted as none.
      const hole = holeAfter(a, f);
      if (hole !== undefined) throw holeError(hole);
      if (!f) return;
      if (f.location === 'missing') throw goneFile(f);
      await a.prepare(f, wait);
      di = a.table(f).deltas.length - 1;
    }
    const t = a.table(f);
    k = t.batches(t.deltas[di] as number);
  }
}
