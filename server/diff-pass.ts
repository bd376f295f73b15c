/**
 * The forward pass of GET /api/v1/diff: every batch of (start, end] folded into a DiffFold,
 * block by block, in file order, as a cursor seeked to `start` would deliver them.
 *
 * Blocks of local files are read a span of blocks per I/O (storage/frame-span.ts) and
 * decoded column by column (storage/column-block.ts): decimal columns land in a typed array
 * and are folded path by path (DiffFold.applyColumns), without update pairs, boxed numbers
 * or the shared decoded cache (a day would only flush it); columns of paths outside the
 * globs are skipped, not decoded. A block that path cannot take (a file in cold storage, a
 * failed check, a path in two columns) is read through Archive.readBlock instead, which
 * fetches it or throws the archive's own error, so the answer and the errors are the
 * cursor's. One difference: a pass under way when the archive closes finishes from the
 * files it holds open, where a cursor's next read would fail with TPD_ARCHIVE_CLOSED.
 */
import { TapedeckError } from '../protocol/errors.js';
import { formatTs } from '../protocol/time.js';
import type { Archive, FetchWait } from '../storage/archive.js';
import { readsUntil } from '../storage/read-signal.js';
import type { BlockRow } from '../storage/catalog.js';
import { ColumnBlockReader, type ColumnBlock } from '../storage/column-block.js';
import { throwHoleIn } from '../storage/cursor-gap.js';
import { isIndexed, type FileEntry } from '../storage/file-list.js';
import { FrameFile, type FrameSpan } from '../storage/frame-span.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import type { DiffFold } from './diff.js';
import { stopIfGone } from './client-gone.js';
import { SERVER_LIMITS } from './limits.js';

/** Whether a path id is wanted; null: every path. */
export type KeepId = ((id: number) => boolean) | null;

/** Where a cursor seeked to `t` stands: the file, its delta block, and whether to skip batches at or before t in it. */
interface Start {
  file: FileEntry | undefined;
  di: number;
  skipUpToUs: number | null;
}

/** Cursor.toTime: the last file, then the last delta block, that starts at or before t. */
async function startOf(a: Archive, t: number, wait: FetchWait | undefined): Promise<Start> {
  let f: FileEntry | undefined;
  while (true) {
    f = a.fileList.last();
    while (f && !mayStartBy(f, t)) f = a.fileList.before(f.seq);
    if (!f) return { file: a.fileList.first(), di: 0, skipUpToUs: null };
    if (isIndexed(f)) break;
    await a.prepare(f, wait);
  }
  const table = a.table(f);
  let lo = 0;
  let hi = table.deltas.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (table.firstTs(table.deltas[mid] as number) <= t) lo = mid;
    else hi = mid - 1;
  }
  return { file: f, di: lo, skipUpToUs: t };
}

function mayStartBy(f: FileEntry, t: number): boolean {
  if (!isIndexed(f)) return f.firstTs === null || f.firstTs <= t;
  return f.firstTs !== null && f.firstTs <= t;
}

/** Batches [kFrom, kTo) of a block's batch times: after skipUpToUs (when set), at or before endUs. */
function window(ts: Float64Array, skipUpToUs: number | null, endUs: number): { kFrom: number; kTo: number } {
  let kFrom = 0;
  if (skipUpToUs !== null) while (kFrom < ts.length && (ts[kFrom] as number) <= skipUpToUs) kFrom++;
  let kTo = kFrom;
  while (kTo < ts.length && (ts[kTo] as number) <= endUs) kTo++;
  return { kFrom, kTo };
}

/**
 * Folds (startUs, endUs] into `fold` within diffTimeBudgetMs, yielding every diffSliceMs;
 * `signal` (the asking client leaving) stops it at the next slice with its reason.
 */
export function foldRange(a: Archive, keep: KeepId, startUs: number, endUs: number, fold: DiffFold, signal?: AbortSignal): Promise<void> {
  // One read operation (storage/read-gate.ts): no file is replaced (compacted) under the pass,
  // which holds block indices across awaits; it is bounded by diffTimeBudgetMs.
  return a.gate.run(() => foldRangeNow(a, keep, startUs, endUs, fold, signal));
}

async function foldRangeNow(a: Archive, keep: KeepId, startUs: number, endUs: number, fold: DiffFold, signal?: AbortSignal): Promise<void> {
  const pass = new Pass(a, keep, endUs, fold, signal);
  // Waits for files fetched back from cold storage stop when the client leaves (the fetch goes on).
  const wait = readsUntil(undefined, signal);
  const start = await startOf(a, startUs, wait);
  let f = start.file;
  let di = start.di;
  let skip = start.skipUpToUs;
  // A hole no file entry names (seqs with no file, a damaged file's end; with no catalog) fails
  // the pass as it fails a cursor reading forward: passed over, its batches were left out.
  if (f) throwHoleIn(a, a.fileList.before(f.seq), startUs + 1, endUs);
  while (f && !pass.done) {
    // A file whose batches are all at or before start holds nothing to fold (a gone one ending
    // there, as a seek to its end lands past it, cursor-seek.ts): not read.
    const before = f.sealed && f.lastTs !== null && f.lastTs <= startUs;
    if (!before && !isIndexed(f)) await a.prepare(f, wait);
    if (!before) await pass.file(f, di, skip);
    skip = null;
    di = 0;
    throwHoleIn(a, f, startUs + 1, endUs);
    if (!f.sealed) break;
    f = a.fileList.after(f.seq);
  }
}

class Pass {
  done = false;
  private readonly reader = new ColumnBlockReader();
  private readonly began = performance.now();
  private slice = this.began;

  constructor(
    private readonly a: Archive,
    private readonly keep: KeepId,
    private readonly endUs: number,
    private readonly fold: DiffFold,
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * Folds file f's delta blocks from the di-th; the first skips batches at or before
   * skipUpToUs. The next span is read while this one is folded.
   */
  async file(f: FileEntry, di: number, skipUpToUs: number | null): Promise<void> {
    const t = this.a.table(f);
    // Blocks of the table as it is now; blocks committed meanwhile are past the horizon.
    const count = t.deltas.length;
    const file = await FrameFile.open(this.a, f);
    const read = (from: number): Promise<FrameSpan | undefined> | undefined =>
      file && from < count ? file.read(t, from, count, STORAGE_LIMITS.scanChunkBytes).catch(() => undefined) : undefined;
    let next = read(di);
    try {
      while (di < count && !this.done) {
        const span = await next;
        const rows = span ? span.rows : [t.delta(di)];
        next = this.done ? undefined : read(di + rows.length);
        for (const row of rows) {
          if (this.done) break;
          await this.block(f, row, span, skipUpToUs);
          skipUpToUs = null;
          di++;
        }
      }
    } finally {
      await next;
      await file?.close();
    }
  }

  private async block(f: FileEntry, row: BlockRow, span: FrameSpan | undefined, skipUpToUs: number | null): Promise<void> {
    const b = span ? this.columns(span, row) : undefined;
    if (b) {
      const { kFrom, kTo } = window(b.ts, skipUpToUs, this.endUs);
      this.fold.applyColumns(b, kFrom, kTo);
      if (kTo < b.ts.length) this.done = true;
    } else {
      const d = await this.a.readBlock(f, row, readsUntil(undefined, this.signal));
      const { kFrom, kTo } = window(d.ts, skipUpToUs, this.endUs);
      this.fold.applyDecoded(d, kFrom, kTo, this.keep);
      if (kTo < d.ts.length) this.done = true;
    }
    await this.tick(row);
  }

  /** The block decoded by columns, or undefined when it fails a check (the archive's read then says why). */
  private columns(span: FrameSpan, row: BlockRow): ColumnBlock | undefined {
    try {
      const b = this.reader.decode(span.payload(row), row.firstTs, this.keep, this.a.paths.length);
      return b.batches === row.batches ? b : undefined;
    } catch {
      return undefined;
    }
  }

  private async tick(row: BlockRow): Promise<void> {
    stopIfGone(this.signal);
    const now = performance.now();
    if (now - this.slice < SERVER_LIMITS.diffSliceMs) return;
    if (now - this.began > SERVER_LIMITS.diffTimeBudgetMs) {
      throw new TapedeckError('TPD_QUERY_TIMEOUT', `the diff ran past diffTimeBudgetMs (${SERVER_LIMITS.diffTimeBudgetMs} ms) at ${formatTs(row.lastTs)}: ask for a shorter range or fewer paths (glob)`);
    }
    await new Promise((resolve) => setImmediate(resolve));
    this.slice = performance.now();
  }
}
