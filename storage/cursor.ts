/**
 * A reader's position in an archive. It iterates committed batches forward across
 * rotated files into `current`, seeks by time, to the beginning or end, or by ±N batches,
 * and computes the full state at its position.
 *
 * A seek by time reads only its block's head and batch times (cursor-seek.ts); a step back
 * walks the batches before the position (cursor-back.ts). The decoded block and the batch
 * read ahead are kept by cursor-block.ts. State is
 * computed backward from the position (cursor-state.ts): newer blocks first, by columns,
 * taking each path's latest value, until every path that existed at that time is resolved
 * or a full image is reached. A state therefore reads at most the data since the last
 * image, and usually much less (a poll that refreshes every path resolves everything in one
 * block); the batch at the position comes out of the same read.
 *
 * Memory is bounded: a cursor holds one decoded block (at most blockUpdatesTarget
 * updates, or one batch), and one batch read ahead; decoded blocks live in the archive's
 * shared, bounded cache; states share one column reader's scratch (one block's worth).
 * nextColumns adds its scratch arrays (one block's worth) and at most one read-ahead span
 * (cursorReadAheadBytes, or one block's frame when larger), let go at the end of data.
 */
import { setImmediate as turnOfEventLoop } from 'node:timers/promises';
import { TapedeckError } from '../protocol/errors.js';
import type { Batch, Value } from '../protocol/value.js';
import type { Archive, FetchWait } from './archive.js';
import { isIndexed, mapPlace, type FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';
import type { ColumnBatches } from './column-batches.js';
import { visibleBefore } from './cursor-back.js';
import { CursorBlock } from './cursor-block.js';
import { CursorColumns } from './cursor-columns.js';
import { CursorFilter } from './cursor-filter.js';
import { holeAfter, holeError, isGoneRead, isHoleRead, pastGone, type CrossedGap, type Hole } from './cursor-gap.js';
import { goneFile, placeAt, type Place } from './cursor-seek.js';
import { coveredAt, stateAt, type HeldBlock } from './cursor-state.js';

export type { ColumnBatches } from './column-batches.js';

/** One batch as a view into a decoded block: updates are ids[from..to) / values[from..to). */
export interface RawBatch {
  ts: number;
  ids: Uint32Array;
  values: Value[];
  from: number;
  to: number;
  /** The cursor has a filter: skip ids for which cursor.matches(id) is false. */
  filtered: boolean;
}

export type SeekTarget = { ts: number } | { batches: number } | 'beginning' | 'end';

export interface CursorOptions {
  /** Globs; only matching paths are returned. Default: everything. */
  filter?: readonly string[];
  /** Told when a read waits for a remote file to be fetched (sessions tell their client). */
  onFetchWait?: FetchWait;
  /**
   * With a filter: blocks are read with only the updates of matching paths
   * (storage/series-read.ts readBlockSelected), so a batch costs its wanted updates, not all
   * of them. For filters that name a few paths (history of explicit paths). Batches holding
   * none of them are passed over, including batches recorded with no update at all.
   */
  selective?: boolean;
}

export class Cursor {
  private readonly a: Archive;
  private readonly filter: CursorFilter;
  private readonly wait: FetchWait | undefined;
  // Position: the next batch is batch k of delta block `di` of file `seq`. Files are found
  // by seq, never by index: cold storage may insert older files while a read awaits.
  private seq = -1;
  private di = 0;
  private k = 0;
  /** The generation of file `seq` the place (di, k) is in (FileEntry.gen; a compaction makes the next). */
  private gen = 0;
  /** The decoded block and the batch read ahead. */
  private readonly block: CursorBlock;
  /** nextColumns' decoder and read-ahead, made on first use. */
  private columns: CursorColumns | undefined;
  /** A seek by time placed the cursor and nothing was read since (firstAfterSeek). */
  private sought = false;
  /** Time of the state at the position: last batch delivered or time sought; null = beginning. */
  pos: number | null = null;

  constructor(archive: Archive, opts: CursorOptions = {}) {
    this.a = archive;
    this.filter = new CursorFilter(archive.paths, opts.filter, opts.selective === true);
    this.wait = opts.onFetchWait;
    this.block = new CursorBlock(archive, this.filter, this.wait);
    this.toBeginning();
    this.placeGen();
  }

  // ---------------------------------------------------------------- operations

  /**
   * Runs one operation of the cursor through the archive's read gate (storage/read-gate.ts):
   * no file is replaced while it runs, and a place kept from before a replacement is first
   * mapped to the new file.
   */
  private async op<T>(fn: () => Promise<T>): Promise<T> {
    const wait = this.a.gate.enter(this);
    if (wait !== undefined) await wait;
    try {
      await this.sync();
      return await fn();
    } finally {
      this.placeGen();
      this.a.gate.leave(this);
    }
  }

  /** Notes the generation of the file the place is in (between operations no file changes under it). */
  private placeGen(): void {
    // Every file is at generation 0 until one is replaced: no lookup on each batch read.
    if (this.a.fileList.replacements === 0) return;
    this.gen = this.a.fileList.bySeq(this.seq)?.gen ?? 0;
  }

  /**
   * The file the cursor stands in was replaced since its last operation (a compaction): the
   * place is mapped to the new file (its batches are the same, in other blocks), and the
   * decoded block and spans read ahead, which name the old file's offsets, are let go.
   */
  private async sync(): Promise<void> {
    if (this.a.fileList.replacements === 0) return;
    const f = this.a.fileList.bySeq(this.seq);
    if (f === undefined || f.gen === this.gen) return;
    this.block.dropAll();
    this.columns?.dropSpan();
    const m = f.replaced;
    if (m !== undefined && m.fromGen === this.gen) {
      const p = mapPlace(m, this.a.table(f).deltas.length, this.di, this.k);
      this.di = p.di;
      this.k = p.k;
      this.gen = f.gen;
      return;
    }
    // Replaced more than once since: found again by time (batches of one time are told apart no more).
    this.gen = f.gen;
    const sought = this.sought;
    await this.seekNow(this.pos === null ? 'beginning' : { ts: this.pos });
    this.sought = sought;
  }


  // ---------------------------------------------------------------- seeking

  seek(target: SeekTarget): Promise<void> {
    return this.op(() => this.seekNow(target));
  }

  private async seekNow(target: SeekTarget): Promise<void> {
    this.sought = false;
    if (target === 'beginning') {
      this.toBeginning();
    } else if (target === 'end') {
      const last = this.a.fileList.last();
      if (last) await this.a.prepare(last, this.wait);
      this.toEnd();
    } else if ('ts' in target) {
      if (!Number.isFinite(target.ts)) throw new TapedeckError('TPD_BAD_ARGUMENT', `seek time must be a number of microseconds, got ${String(target.ts)}`);
      await this.toTime(target.ts);
    } else {
      const n = target.batches;
      const max = STORAGE_LIMITS.seekBatchesMax;
      if (!Number.isInteger(n) || Math.abs(n) > max) {
        throw new TapedeckError('TPD_BAD_ARGUMENT', `seek by batches takes an integer within ±${max} (STORAGE_LIMITS.seekBatchesMax), got ${String(n)}`);
      }
      if (n > 0) {
        for (let i = 0; i < n; i++) if ((await this.next()) === null) break;
      } else if (n < 0) {
        await this.stepBack(-n);
      }
    }
  }

  private toBeginning(): void {
    const f = this.a.fileList.first();
    this.seq = f ? f.seq : -1;
    this.di = 0;
    this.k = 0;
    this.pos = null;
  }

  private toEnd(): void {
    const f = this.a.fileList.last();
    if (!f) return this.toBeginning();
    this.seq = f.seq;
    this.di = this.a.table(f).deltas.length;
    this.k = 0;
    this.pos = this.a.lastTs > 0 || f.lastTs !== null ? this.a.lastTs : null;
  }

  private async toTime(t: number): Promise<void> {
    const l = this.block.loaded;
    const place = await placeAt(this.a, t, this.wait, l && { seq: l.seq, offset: l.offset, ts: l.d.ts });
    if (place === undefined) {
      this.toBeginning();
    } else {
      this.seq = place.seq;
      this.di = place.di;
      this.k = place.k;
      this.normalize();
    }
    this.pos = t;
    this.sought = true;
  }

  /** Moves a position at the end of a block to the start of the next one. */
  private normalize(): void {
    const f = this.a.fileList.bySeq(this.seq);
    if (!f || f.location !== 'local') return;
    const t = this.a.table(f);
    const i = t.deltas[this.di];
    if (i !== undefined && this.k >= t.batches(i)) {
      this.di++;
      this.k = 0;
    }
  }

  /**
   * Moves back n visible batches (storage/cursor-back.ts). The newest visible batch at or
   * before the position is the current one; -1 lands on the visible batch before it.
   */
  private async stepBack(n: number): Promise<void> {
    if (this.pos === null) return;
    const at = await visibleBefore(this.a, this.block, this.filter, this.wait, { seq: this.seq, di: this.di, k: this.k }, n);
    if (at === undefined) return this.toBeginning();
    this.seq = at.seq;
    this.di = at.di;
    this.k = at.k + 1;
    this.normalize();
    this.pos = at.ts;
  }

  // ---------------------------------------------------------------- reading forward

  /**
   * After a read forward that failed with `err` because the file the cursor stands in is
   * gone: stands at the start of the next readable file and says what was lost
   * (storage/cursor-gap.ts; none readable yet: says so, `place` null, and stands after the
   * last batch read); undefined
   * (nothing moved) for any other failure.
   */
  crossGone(err: unknown): Promise<CrossedGap | undefined> {
    return this.op(() => this.crossGoneNow(err));
  }

  private async crossGoneNow(err: unknown): Promise<CrossedGap | undefined> {
    const f = this.currentFile();
    const hole = this.holeAhead();
    const gone = hole !== undefined && isHoleRead(err, hole) ? hole.entry : f !== undefined && isGoneRead(err, f) ? f : undefined;
    const gap = gone !== undefined ? await pastGone(this.a, gone, err as TapedeckError, this.pos, this.wait) : undefined;
    if (gap?.place) this.crossTo(gap.place, gap.toUs);
    // None readable yet: back after the last batch read, whose state can be read; a read tries again.
    else if (gap) await this.seekNow(gap.fromUs === null ? 'beginning' : { ts: gap.fromUs });
    return gap;
  }

  /** Stands at `place` (a gap another cursor over the archive crossed), the state there being the one at `pos`. */
  crossTo(place: Place, pos: number): void {
    [this.seq, this.di, this.k, this.pos, this.sought] = [place.seq, place.di, place.k, pos, false];
    this.block.dropAhead();
    this.columns?.dropSpan();
    this.placeGen();
  }

  /** The next committed batch (filtered), or null at the end of committed data. */
  next(): Promise<Batch | null> {
    return this.op(async () => {
      const at = await this.advance();
      return at ? (this.filter.batchAt(at.block.d, at.block.starts, at.k) as Batch) : null;
    });
  }

  /**
   * Like next(), without building update pairs: a view into the decoded block (decoded
   * blocks are never mutated, so views stay valid). With a filter, callers skip ids for
   * which matches(id) is false.
   */
  nextRaw(): Promise<RawBatch | null> {
    return this.op(async () => {
      const at = await this.advance();
      if (!at) return null;
      const { d, starts } = at.block;
      return { ts: d.ts[at.k] as number, ids: d.ids, values: d.values, from: starts[at.k] as number, to: starts[at.k + 1] as number, filtered: this.filter.matcher !== undefined && !this.filter.selective };
    });
  }

  /**
   * The rest of the next block's visible batches, as columns in update order (see
   * ColumnBatches): every batch and update next() would give, in the same order, with the
   * same values bit for bit, filtered the same way, but one await per block and no object
   * per update. null at the end of committed data (as next()). The arrays are the cursor's
   * scratch, valid until its next nextColumns call. Errors are next()'s: a damaged block
   * fails with the same code and details, and the position stays before it.
   */
  nextColumns(): Promise<ColumnBatches | null> {
    return this.op(async () => {
      this.sought = false;
      const view = await this.nextColumnsOrEnd();
      // At the end, the read-ahead holds nothing more to read (blocks committed later are read anew).
      if (view === null) this.columns?.dropSpan();
      return view;
    });
  }

  private async nextColumnsOrEnd(): Promise<ColumnBatches | null> {
    while (true) {
      const f = this.currentFile();
      if (!f) return null;
      if (this.atBeginning()) this.throwHole(holeAfter(this.a, undefined));
      if (f.location === 'missing') throw goneFile(f);
      if (!isIndexed(f)) await this.a.prepare(f, this.wait);
      if (this.di < this.a.table(f).deltas.length) {
        this.columns ??= new CursorColumns(this.a, { keep: this.filter.covers, dropEmpty: this.filter.selective }, this.wait);
        const view = await this.columns.at(f, this.di, this.k);
        this.di++;
        this.k = 0;
        if (view.batches === 0) {
          // A block the filter shows nothing of: let the event loop run before the next one.
          await turnOfEventLoop();
          continue;
        }
        this.pos = view.ts[view.batches - 1] as number;
        return view;
      }
      const nextFile = this.fileAfter(f);
      if (!nextFile) return null;
      this.seq = nextFile.seq;
      this.di = 0;
      this.k = 0;
    }
  }

  /**
   * The file reading goes on in after f, read to its end; undefined at the end of committed
   * data (f is `current`, or the last file). Throws when a hole no entry names lies between
   * (storage/cursor-gap.ts holeAfter: seqs with no file, f's damaged tail), as a seek into it
   * fails; crossGone crosses it. A damaged `current`'s tail is a hole at the end.
   */
  private fileAfter(f: FileEntry): FileEntry | undefined {
    if (f.sealed || f.damaged) this.throwHole(holeAfter(this.a, f));
    return f.sealed ? this.a.fileList.after(f.seq) : undefined;
  }

  private throwHole(hole: Hole | undefined): void {
    if (hole !== undefined) throw holeError(hole);
  }

  /** The cursor stands at the beginning, before the first file (seqs before it may have no entry). */
  private atBeginning(): boolean {
    return this.pos === null && this.di === 0 && this.k === 0 && this.a.fileList.before(this.seq) === undefined;
  }

  /** The hole a read forward from the position runs into next, if it stands right before one. */
  private holeAhead(): Hole | undefined {
    if (this.atBeginning()) return holeAfter(this.a, undefined);
    const f = this.currentFile();
    if (f === undefined || f.location === 'missing' || !isIndexed(f) || this.di < this.a.table(f).deltas.length) return undefined;
    return f.sealed || f.damaged ? holeAfter(this.a, f) : undefined;
  }

  /** The file the cursor reads (the first one before it has started); undefined past the last. */
  private currentFile(): FileEntry | undefined {
    const f = this.a.fileList.bySeq(this.seq);
    if (f || this.seq >= 0) return f;
    const first = this.a.fileList.first();
    if (first) this.seq = first.seq;
    return first;
  }

  /** Moves past the next visible batch and returns where it is. */
  private async advance(): Promise<{ block: HeldBlock; k: number } | null> {
    let passed = 0;
    while (true) {
      const f = this.currentFile();
      if (!f) return null;
      if (this.atBeginning()) this.throwHole(holeAfter(this.a, undefined));
      if (f.location === 'missing') throw goneFile(f);
      if (!isIndexed(f)) await this.a.prepare(f, this.wait);
      const t = this.a.table(f);
      const deltas = t.deltas;
      if (this.di < deltas.length && this.k >= t.batches(deltas[this.di] as number)) {
        // Past the block's last batch (after a batch read ahead): no need to decode it.
        this.di++;
        this.k = 0;
        continue;
      }
      if (this.di < deltas.length) {
        const sought = this.sought;
        this.sought = false;
        const ahead = this.block.aheadAt(f, this.di, this.k) ?? (sought ? await this.block.firstAfterSeek(f, this.di, this.k) : undefined);
        if (ahead !== undefined) {
          this.block.dropAhead();
          this.k++;
          if (ahead.batch === null) continue;
          this.pos = ahead.batch.d.ts[0] as number;
          return { block: ahead.batch, k: 0 };
        }
        const block = await this.block.load(f, this.di);
        if (this.k < block.d.ts.length) {
          const k = this.k++;
          if (this.filter.visible(block.d, block.starts, k)) {
            this.pos = block.d.ts[k] as number;
            return { block, k };
          }
          if (++passed % STORAGE_LIMITS.passedBatchesPerYield === 0) await turnOfEventLoop();
          continue;
        }
        this.di++;
        this.k = 0;
        continue;
      }
      const nextFile = this.fileAfter(f);
      if (!nextFile) return null;
      this.seq = nextFile.seq;
      this.di = 0;
      this.k = 0;
    }
  }

  /** Resolves at the next commit (new data may be readable) or when the archive closes. */
  waitForCommit(): Promise<void> {
    if (this.a.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.a.off('commit', done);
        this.a.off('close', done);
        resolve();
      };
      this.a.on('commit', done);
      this.a.on('close', done);
    });
  }

  /** The cursor's filter selects path id `id` (always true without a filter). */
  matches(id: number): boolean {
    return this.filter.matches(id);
  }

  // ---------------------------------------------------------------- state

  /**
   * Latest value of every covered path at the position, keyed by path id (storage/
   * cursor-state.ts). With `onCorrupt`, a block that fails its checks is reported there
   * and passed over (its updates are unreadable; older values stand in); without it, the
   * error is thrown.
   */
  stateById(onCorrupt?: (err: TapedeckError) => void): Promise<ReadonlyMap<number, Value>> {
    return this.op(() => this.stateNow(onCorrupt));
  }

  private stateNow(onCorrupt?: (err: TapedeckError) => void): Promise<ReadonlyMap<number, Value>> {
    const f = this.a.fileList.bySeq(this.seq);
    let held: HeldBlock | undefined;
    let offset = -1;
    if (f && this.di < this.a.table(f).deltas.length) {
      const t = this.a.table(f);
      offset = t.offset(t.deltas[this.di] as number);
      held = this.block.heldAt(f.seq, offset);
    }
    const { seq, di, k } = this;
    const covers = this.filter.covers;
    return stateAt(
      {
        archive: this.a,
        wait: this.wait,
        covers,
        target: coveredAt(this.a, this.pos, covers),
        seq,
        di,
        k,
        held,
        dropEmpty: this.filter.selective,
        onPositionBlock: (read) => {
          if ('decoded' in read) {
            // Read in full (the column reader could not): the cursor holds it as load would.
            if (!this.filter.selective) this.block.keepDecoded(seq, offset, read.decoded);
            return;
          }
          this.block.keepAhead(seq, di, k, offset, read.batch);
        },
      },
      onCorrupt,
    );
  }

  /** Latest value of every covered path at the position. */
  async state(): Promise<Map<string, Value>> {
    const byId = await this.stateById();
    const out = new Map<string, Value>();
    const ids = [...byId.keys()].sort((x, y) => x - y);
    for (const id of ids) out.set(this.a.paths[id] as string, byId.get(id) as Value);
    return out;
  }

  /** Every path this cursor covers that ever appeared in the archive. */
  coveredPaths(): string[] {
    return this.filter.coveredPaths();
  }
}
