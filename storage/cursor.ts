/**
 * A reader's position in an archive. It iterates committed batches forward across
 * rotated files into `current`, seeks by time, to the beginning or end, or by ±N batches,
 * and computes the full state at its position.
 *
 * State is computed backward from the position: newer blocks first, taking each path's
 * latest value, until every path that existed at that time is resolved or a full image
 * is reached. A seek therefore reads at most the data since the last image, and usually
 * much less (a poll that refreshes every path resolves everything in one block).
 *
 * Memory is bounded: a cursor holds one decoded block (at most blockUpdatesTarget
 * updates, or one batch); decoded blocks live in the archive's shared, bounded cache.
 * nextColumns adds its scratch arrays (one block's worth) and at most one read-ahead span
 * (cursorReadAheadBytes, or one block's frame when larger), let go at the end of data.
 */
import { compileSpec, type PathMatcher } from '../protocol/glob.js';
import { isTapedeckError, TapedeckError } from '../protocol/errors.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { BlockType } from './codec/frame.js';
import type { DecodedBatches } from './codec/payload.js';
import type { Archive, FetchWait } from './archive.js';
import { isIndexed, type BlockTable, type FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';
import { readBlockSelected } from './series-read.js';
import { ColumnBatchesBuilder, type ColumnBatches, type Selection } from './column-batches.js';

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

interface Loaded {
  /** The block's file and offset (a file's blocks never move: offsets identify them). */
  seq: number;
  offset: number;
  d: DecodedBatches;
  starts: Uint32Array;
}

export class Cursor {
  private readonly a: Archive;
  private readonly matcher: PathMatcher | undefined;
  private readonly wait: FetchWait | undefined;
  private readonly selective: boolean;
  /** Per path id: 0 = not yet checked, 1 = matches the filter, 2 = does not. */
  private match = new Uint8Array(0);
  // Position: the next batch is batch k of delta block `di` of file `seq`. Files are found
  // by seq, never by index: cold storage may insert older files while a read awaits.
  private seq = -1;
  private di = 0;
  private k = 0;
  private loaded: Loaded | undefined;
  /** nextColumns' decoder and selection, made on first use. */
  private columns: ColumnBatchesBuilder | undefined;
  private selection: Selection | undefined;
  /** Frames of consecutive blocks read together by nextColumns (STORAGE_LIMITS.cursorReadAheadBytes). */
  private span: { seq: number; base: number; buf: Uint8Array } | undefined;
  /** Time of the state at the position: last batch delivered or time sought; null = beginning. */
  pos: number | null = null;

  constructor(archive: Archive, opts: CursorOptions = {}) {
    this.a = archive;
    this.matcher = opts.filter && opts.filter.length > 0 ? compileSpec(opts.filter) : undefined;
    this.wait = opts.onFetchWait;
    this.selective = opts.selective === true && this.matcher !== undefined;
    this.toBeginning();
  }

  // ---------------------------------------------------------------- seeking

  async seek(target: SeekTarget): Promise<void> {
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
    let f: FileEntry | undefined;
    while (true) {
      // A file not yet indexed may start at or before t (its firstTs is an estimate or null):
      // fetch and index it, then choose again with its real range.
      f = this.a.fileList.last();
      while (f && !this.mayStartBy(f, t)) f = this.a.fileList.before(f.seq);
      if (!f) {
        this.toBeginning();
        this.pos = t;
        return;
      }
      if (isIndexed(f)) break;
      await this.a.prepare(f, this.wait);
    }
    const table = this.a.table(f);
    // Last delta block starting at or before t.
    let lo = 0;
    let hi = table.deltas.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (table.firstTs(table.deltas[mid] as number) <= t) lo = mid;
      else hi = mid - 1;
    }
    this.seq = f.seq;
    this.di = lo;
    const block = await this.load(f, lo);
    let k = 0;
    while (k < block.d.ts.length && (block.d.ts[k] as number) <= t) k++;
    this.k = k;
    this.normalize();
    this.pos = t;
  }

  private mayStartBy(f: FileEntry, t: number): boolean {
    if (!isIndexed(f)) return f.firstTs === null || f.firstTs <= t;
    return f.firstTs !== null && f.firstTs <= t;
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
   * Moves back n visible batches. The newest visible batch at or before the position is
   * the current one; -1 lands on the visible batch before it.
   */
  private async stepBack(n: number): Promise<void> {
    if (this.pos === null) return;
    let found = -1;
    for await (const at of this.backward()) {
      const ts = at.block.d.ts[at.k] as number;
      if (!this.visible(at.block, at.k)) continue;
      if (++found === n) {
        this.seq = at.seq;
        this.di = at.di;
        this.k = at.k + 1;
        this.normalize();
        this.pos = ts;
        return;
      }
    }
    this.toBeginning();
  }

  /** Batches before the position, newest first. */
  private async *backward(): AsyncGenerator<{ seq: number; di: number; k: number; block: Loaded }> {
    let f = this.a.fileList.bySeq(this.seq);
    if (!f) return;
    let di = this.di;
    let k = this.k;
    while (true) {
      if (k > 0) {
        const block = await this.load(f, di);
        for (let j = Math.min(k, block.d.ts.length) - 1; j >= 0; j--) yield { seq: f.seq, di, k: j, block };
      }
      di--;
      while (di < 0) {
        f = this.a.fileList.before(f.seq);
        if (!f) return;
        await this.a.prepare(f, this.wait);
        di = this.a.table(f).deltas.length - 1;
      }
      const t = this.a.table(f);
      k = t.batches(t.deltas[di] as number);
    }
  }

  // ---------------------------------------------------------------- reading forward

  /** The next committed batch (filtered), or null at the end of committed data. */
  async next(): Promise<Batch | null> {
    const at = await this.advance();
    return at ? (this.batchAt(at.block, at.k) as Batch) : null;
  }

  /**
   * Like next(), without building update pairs: a view into the decoded block (decoded
   * blocks are never mutated, so views stay valid). With a filter, callers skip ids for
   * which matches(id) is false.
   */
  async nextRaw(): Promise<RawBatch | null> {
    const at = await this.advance();
    if (!at) return null;
    const { d, starts } = at.block;
    return { ts: d.ts[at.k] as number, ids: d.ids, values: d.values, from: starts[at.k] as number, to: starts[at.k + 1] as number, filtered: this.matcher !== undefined && !this.selective };
  }

  /**
   * The rest of the next block's visible batches, as columns in update order (see
   * ColumnBatches): every batch and update next() would give, in the same order, with the
   * same values bit for bit, filtered the same way, but one await per block and no object
   * per update. null at the end of committed data (as next()). The arrays are the cursor's
   * scratch, valid until its next nextColumns call. Errors are next()'s: a damaged block
   * fails with the same code and details, and the position stays before it.
   */
  async nextColumns(): Promise<ColumnBatches | null> {
    const view = await this.nextColumnsOrEnd();
    // At the end, the read-ahead holds nothing more to read (blocks committed later are read anew).
    if (view === null) this.span = undefined;
    return view;
  }

  private async nextColumnsOrEnd(): Promise<ColumnBatches | null> {
    while (true) {
      const f = this.currentFile();
      if (!f) return null;
      if (!isIndexed(f)) await this.a.prepare(f, this.wait);
      if (this.di < this.a.table(f).deltas.length) {
        const view = await this.columnsAt(f, this.di, this.k);
        this.di++;
        this.k = 0;
        if (view.batches === 0) continue;
        this.pos = view.ts[view.batches - 1] as number;
        return view;
      }
      if (!f.sealed) return null;
      const nextFile = this.a.fileList.after(f.seq);
      if (!nextFile) return null;
      this.seq = nextFile.seq;
      this.di = 0;
      this.k = 0;
    }
  }

  /** Batches [k, end) of delta block di of f as columns. */
  private async columnsAt(f: FileEntry, di: number, k: number): Promise<ColumnBatches> {
    const t = this.a.table(f);
    const row = t.delta(di);
    const b = (this.columns ??= new ColumnBatchesBuilder());
    const sel = (this.selection ??= { keep: this.matcher ? (id: number) => this.matches(id) : null, dropEmpty: this.selective });
    const frame = await this.frameAhead(f, t, di);
    const raw = frame === undefined ? await this.a.readPayload(f, row, this.wait) : this.a.payloadOf(f, row, frame);
    try {
      const view = b.fill(raw, row.firstTs, row.batches, this.a.paths.length, k, sel);
      if (view) return view;
    } catch (err) {
      if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
    }
    // What the column reader refuses (a path in two columns of a block, a signalling NaN
    // among other values) the codec reads; a block neither reads fails with the archive's error.
    const d = this.selective && sel.keep ? await readBlockSelected(this.a, f, row, sel.keep, this.wait) : await this.a.readBlock(f, row, this.wait);
    return b.fromDecoded(d, k, sel);
  }

  /**
   * The frame of delta block di of a local file from the read-ahead span, which is read
   * (this block and the ones after it, within cursorReadAheadBytes) when it does not hold
   * it. undefined for a file that is not local or a frame past the file's end: readPayload
   * fetches the one and fails on the other as every reader does.
   */
  private async frameAhead(f: FileEntry, t: BlockTable, di: number): Promise<Uint8Array | undefined> {
    if (f.location !== 'local') return undefined;
    const i = t.deltas[di] as number;
    const offset = t.offset(i);
    const bytes = t.frameBytes(i);
    let s = this.span;
    if (s === undefined || s.seq !== f.seq || offset < s.base || offset + bytes > s.base + s.buf.length) {
      let end = offset + bytes;
      for (let dj = di + 1; dj < t.deltas.length; dj++) {
        const j = t.deltas[dj] as number;
        const next = t.offset(j) + t.frameBytes(j);
        if (t.offset(j) < offset || next - offset > STORAGE_LIMITS.cursorReadAheadBytes) break;
        end = next;
      }
      this.span = undefined;
      s = { seq: f.seq, base: offset, buf: await this.a.readBytes(f, offset, end - offset) };
      this.span = s;
    }
    const at = offset - s.base;
    return at + bytes <= s.buf.length ? s.buf.subarray(at, at + bytes) : undefined;
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
  private async advance(): Promise<{ block: Loaded; k: number } | null> {
    while (true) {
      const f = this.currentFile();
      if (!f) return null;
      if (!isIndexed(f)) await this.a.prepare(f, this.wait);
      const deltas = this.a.table(f).deltas;
      if (this.di < deltas.length) {
        const block = await this.load(f, this.di);
        if (this.k < block.d.ts.length) {
          const k = this.k++;
          if (this.visible(block, k)) {
            this.pos = block.d.ts[k] as number;
            return { block, k };
          }
          continue;
        }
        this.di++;
        this.k = 0;
        continue;
      }
      if (!f.sealed) return null;
      const nextFile = this.a.fileList.after(f.seq);
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

  private batchAt(block: Loaded, k: number): Batch | undefined {
    const { d, starts } = block;
    const from = starts[k] as number;
    const to = starts[k + 1] as number;
    const paths = this.a.paths;
    const updates: Update[] = [];
    for (let i = from; i < to; i++) {
      const id = d.ids[i] as number;
      if (this.matcher && !this.matches(id)) continue;
      updates.push([paths[id] as string, d.values[i] as Value]);
    }
    if (this.matcher && updates.length === 0 && to > from) return undefined;
    return { ts: d.ts[k] as number, updates };
  }

  private visible(block: Loaded, k: number): boolean {
    if (!this.matcher) return true;
    const { d, starts } = block;
    if (this.selective) return (starts[k + 1] as number) > (starts[k] as number);
    for (let i = starts[k] as number; i < (starts[k + 1] as number); i++) if (this.matches(d.ids[i] as number)) return true;
    return (starts[k + 1] as number) === (starts[k] as number);
  }

  matches(id: number): boolean {
    if (!this.matcher) return true;
    if (id >= this.match.length) {
      const next = new Uint8Array(Math.max(id + 1, this.a.paths.length, this.match.length * 2));
      next.set(this.match);
      this.match = next;
    }
    let m = this.match[id] as number;
    if (m === 0) {
      m = this.matcher(this.a.paths[id] as string) ? 1 : 2;
      this.match[id] = m;
    }
    return m === 1;
  }

  private async load(f: FileEntry, di: number): Promise<Loaded> {
    const t = this.a.table(f);
    // Called for every batch read: the block at hand is recognised without building a key.
    const offset = t.offset(t.deltas[di] as number);
    if (this.loaded !== undefined && this.loaded.offset === offset && this.loaded.seq === f.seq) return this.loaded;
    const row = t.delta(di);
    const d = this.selective ? await readBlockSelected(this.a, f, row, (id) => this.matches(id), this.wait) : await this.a.readBlock(f, row, this.wait);
    const starts = new Uint32Array(d.counts.length + 1);
    for (let i = 0; i < d.counts.length; i++) starts[i + 1] = (starts[i] as number) + (d.counts[i] as number);
    this.loaded = { seq: f.seq, offset, d, starts };
    return this.loaded;
  }

  // ---------------------------------------------------------------- state

  /** Paths covered by this cursor that exist in the archive at its position. */
  private targetCount(): number {
    if (this.pos === null) return 0;
    const firsts = this.a.pathFirstTs;
    let lo = 0;
    let hi = firsts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((firsts[mid] as number) <= this.pos) lo = mid + 1;
      else hi = mid;
    }
    if (!this.matcher) return lo;
    let n = 0;
    for (let id = 0; id < lo; id++) if (this.matches(id)) n++;
    return n;
  }

  /**
   * Latest value of every covered path at the position, keyed by path id. With
   * `onCorrupt`, a block that fails its checks is reported there and passed over (its
   * updates are unreadable; older values stand in); without it, the error is thrown.
   */
  async stateById(onCorrupt?: (err: TapedeckError) => void): Promise<Map<number, Value>> {
    const out = new Map<number, Value>();
    const target = this.targetCount();
    if (target === 0) return out;
    const seen = new Uint8Array(this.a.paths.length);
    const at = this.a.fileList.bySeq(this.seq);
    if (!at) return out;
    let f = at;
    let t = this.a.table(f);
    let r = this.di < t.deltas.length ? (t.deltas[this.di] as number) : t.length;
    const read = async <T>(get: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await get();
      } catch (err) {
        if (!onCorrupt || !isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
        onCorrupt(err);
        return undefined;
      }
    };
    if (this.k > 0 && this.di < t.deltas.length) {
      const block = await read(() => this.load(at, this.di));
      if (block && this.take(out, seen, block.d, block.starts[this.k] as number, target)) return out;
    }
    while (true) {
      r--;
      while (r < 0) {
        const older = this.a.fileList.before(f.seq);
        if (!older) return out;
        f = older;
        await this.a.prepare(f, this.wait);
        t = this.a.table(f);
        r = t.length - 1;
      }
      if (t.type(r) === BlockType.PATHS) continue;
      const row = t.row(r);
      const file = f;
      const d = await read(() => this.a.readBlock(file, row, this.wait));
      if (d === undefined) continue;
      if (this.take(out, seen, d, d.ids.length, target) || row.type === BlockType.IMAGE) return out;
    }
  }

  /** Takes latest values from updates [0, end) of a block, newest first. True when complete. */
  private take(out: Map<number, Value>, seen: Uint8Array, d: DecodedBatches, end: number, target: number): boolean {
    const ids = d.ids;
    for (let i = end - 1; i >= 0; i--) {
      const id = ids[i] as number;
      if (seen[id] === 1) continue;
      seen[id] = 1;
      if (this.matcher && !this.matches(id)) continue;
      out.set(id, d.values[i] as Value);
      if (out.size >= target) return true;
    }
    return false;
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
    const out: string[] = [];
    for (let id = 0; id < this.a.paths.length; id++) if (this.matches(id)) out.push(this.a.paths[id] as string);
    return out;
  }
}
