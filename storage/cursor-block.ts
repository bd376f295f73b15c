/**
 * What a cursor holds decoded (storage/cursor.ts): the block it reads batches from, and the
 * batch at its position when a state (Cursor.stateById) or the first read after a seek read
 * it by columns (cursor-state.ts batchByColumns) instead of decoding its block. The cursor
 * keeps the position; this keeps the decoded data and knows which block of which file it is.
 *
 * A file's blocks never move, so a block is recognised by its file and offset. The batch
 * read ahead is a block of its own (offset -1: never taken for a block of the file); it is
 * used once, by the next read from the position it was read at.
 */
import type { Archive, FetchWait } from './archive.js';
import { stopIfAborted } from './read-signal.js';
import type { DecodedBatches } from './codec/payload.js';
import type { CursorFilter } from './cursor-filter.js';
import { batchByColumns, type AheadBatch } from './cursor-state.js';
import type { FileEntry } from './file-list.js';
import { readBlockSelected } from './series-read.js';

export interface Loaded {
  /** The block's file and offset (a file's blocks never move: offsets identify them). */
  seq: number;
  offset: number;
  d: DecodedBatches;
  starts: Uint32Array;
}

/** Each batch's first update in a decoded block; [nb] = its updates. */
function startsOf(d: DecodedBatches): Uint32Array {
  const starts = new Uint32Array(d.counts.length + 1);
  for (let i = 0; i < d.counts.length; i++) starts[i + 1] = (starts[i] as number) + (d.counts[i] as number);
  return starts;
}

/** One batch read by columns as a block of its own (offset -1: never taken for a block of the file). */
function miniBlock(seq: number, b: AheadBatch): Loaded {
  return { seq, offset: -1, d: { ts: Float64Array.of(b.ts), counts: Uint32Array.of(b.ids.length), ids: b.ids, values: b.values }, starts: Uint32Array.of(0, b.ids.length) };
}

export class CursorBlock {
  /** The decoded block batches are read from. */
  loaded: Loaded | undefined;
  /** The batch at the position read by stateById (aheadAt), where the position was then. */
  private ahead: { seq: number; di: number; k: number; offset: number; batch: Loaded | null } | undefined;

  constructor(
    private readonly a: Archive,
    private readonly filter: CursorFilter,
    private readonly wait: FetchWait | undefined,
  ) {}

  /** The held block when it is the block at `offset` of file `seq`. */
  heldAt(seq: number, offset: number): Loaded | undefined {
    const l = this.loaded;
    return l !== undefined && l.seq === seq && l.offset === offset ? l : undefined;
  }

  /** Delta block di of f, decoded (the held one when it is that block). */
  async load(f: FileEntry, di: number): Promise<Loaded> {
    const t = this.a.table(f);
    // Called for every batch read: the block at hand is recognised without building a key.
    const offset = t.offset(t.deltas[di] as number);
    if (this.loaded !== undefined && this.loaded.offset === offset && this.loaded.seq === f.seq) return this.loaded;
    // Reads forward or back over blocks the filter shows nothing of may go far: a reader that left stops at the next one.
    stopIfAborted(this.wait);
    const row = t.delta(di);
    const d = this.filter.selective ? await readBlockSelected(this.a, f, row, this.filter.coversFn, this.wait) : await this.a.readBlock(f, row, this.wait);
    this.loaded = { seq: f.seq, offset, d, starts: startsOf(d) };
    return this.loaded;
  }

  /** Holds block `offset` of file `seq` as a state read it in full, as load would. */
  keepDecoded(seq: number, offset: number, d: DecodedBatches): void {
    this.loaded = { seq, offset, d, starts: startsOf(d) };
  }

  /** Holds the batch at position (seq, di, k) as a state read it by columns (null: not visible). */
  keepAhead(seq: number, di: number, k: number, offset: number, batch: AheadBatch | null): void {
    this.ahead = { seq, di, k, offset, batch: batch === null ? null : miniBlock(seq, batch) };
  }

  /** Lets the decoded block and the batch read ahead go (the file they came from was replaced). */
  dropAll(): void {
    this.loaded = undefined;
    this.ahead = undefined;
  }

  /** Lets the batch read ahead go (the read from its position took it). */
  dropAhead(): void {
    this.ahead = undefined;
  }

  /**
   * The batch at position (f, di, k) as stateById read it by columns, when the position has
   * not moved since and the cursor holds no decoded block there. A cursor that reads on from
   * it then decodes the block in full (load).
   */
  aheadAt(f: FileEntry, di: number, k: number): { batch: Loaded | null } | undefined {
    const a = this.ahead;
    if (a === undefined || a.seq !== f.seq || a.di !== di || a.k !== k) return undefined;
    const t = this.a.table(f);
    if (a.offset !== t.offset(t.deltas[di] as number)) return undefined;
    return a;
  }

  /**
   * After a seek that landed at a block's start, the first read takes that batch by columns
   * (cursor-state.ts batchByColumns), as stateById does for a batch inside a block: the time to
   * a seek's first batch then does not grow with block size either. Reading on decodes the
   * block in full.
   */
  async firstAfterSeek(f: FileEntry, di: number, k: number): Promise<{ batch: Loaded | null } | undefined> {
    const t = this.a.table(f);
    const offset = t.offset(t.deltas[di] as number);
    if (k !== 0 || (this.loaded !== undefined && this.loaded.seq === f.seq && this.loaded.offset === offset)) return undefined;
    const b = await batchByColumns(this.a, f, t.delta(di), k, this.filter.covers, this.filter.selective, this.wait);
    if (b === undefined) return undefined;
    return { batch: b === null ? null : miniBlock(f.seq, b) };
  }
}
