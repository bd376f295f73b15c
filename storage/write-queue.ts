/**
 * The writer's way to disk: one ordered queue of sealed frames (blocks, images, path
 * dictionaries) and of markers for commits and rotations, drained by a single async pump,
 * so fsyncs and renames never block the event loop and always happen in the order the
 * data arrived. ArchiveWriter (writer.ts) decides what goes in and when; this file does it.
 *
 * Commit (two-phase): write the frames, fdatasync, write the committed length into the
 * next header slot, fdatasync again; then record the blocks in the catalog and show them
 * to readers. Rotation: commit, rename `current` under its end time, announce it (fsync of
 * the directory, the file row, the `rotate` event), then create the next `current` whole.
 *
 * Full disk (ENOSPC, EDQUOT, SQLITE_FULL): nothing is dropped. The pump stops at the item
 * that failed, which stays at the head of the queue (each step can be done again: frames
 * are rewritten from writtenPos, a failed commit rewinds to the committed length, a
 * rotation goes on from the phase it reached), and retries on a timer. Any other error
 * fails the writer for good (fail()).
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { BlockType } from './codec/frame.js';
import { HEADER_BYTES } from './codec/header.js';
import type { PathDef } from './codec/payload.js';
import type { FrameItem } from './block-builder.js';
import { STORAGE_LIMITS } from './limits.js';
import { isDiskFullError, type Waiter } from './disk-full.js';
import { NOTHING_DURABLE, type Durability } from './durability.js';
import { CURRENT_NAME } from './segment-file.js';
import { OpenFile, fsyncDir, type Written } from './open-file.js';
import { fileRowOf, type BlockRow, type FileRow } from './catalog-rows.js';
import type { Archive } from './archive.js';
import type { FileEntry } from './file-list.js';

export interface CommitItem {
  kind: 'commit';
  waiters: Waiter[];
}
export interface RotateItem {
  kind: 'rotate';
  /** PATHS and IMAGE frames for the new file, built when the rotation was asked for. */
  start: FrameItem[];
  waiters: Waiter[];
  /** How far the rotation got: a full disk can stop it between any two steps. */
  phase: 'commit' | 'rename' | 'announce' | 'create';
  /** The name `current` is sealed under, chosen once (a retried rename uses the same). */
  sealedName: string | undefined;
}
export type QueueItem = FrameItem | CommitItem | RotateItem;

/** A catalog write not done yet (the catalog's file system was full). */
interface CatalogWrite {
  file: FileRow;
  rows: BlockRow[];
  paths: PathDef[];
}

export interface WriterStats {
  batches: number;
  updates: number;
  bytesWritten: number;
  commits: number;
  rotations: number;
  images: number;
  lastCommitMs: number;
}

/** What the queue asks of its writer. */
export interface WriteQueueHost {
  /** Timestamp of the last batch appended (names a rotated file whose blocks carry none). */
  lastTs(): number;
  /** A new `current` was created by a rotation (its interval timer starts again). */
  rotated(): void;
}

/** Frames coalesced into one write call at most (bytes). */
const WRITE_COALESCE_BYTES = 8 * 1024 * 1024;
/** Frames per write call at most (stays under IOV_MAX = 1024 for writev). */
const WRITE_COALESCE_FRAMES = 512;

export class WriteQueue {
  /** `current`: its handle, written and committed lengths. */
  private file!: OpenFile;
  private queue: QueueItem[] = [];
  private queued = 0;
  private unflushed = 0;
  private planned = 0;
  private sinceImage = 0;
  private pumping: Promise<void> | undefined;
  private drainWaiters: Array<() => void> = [];
  private failedWith: TapedeckError | undefined;
  private catalogBacklog: CatalogWrite[] = [];

  constructor(
    private readonly a: Archive,
    /** Durable waiters, acknowledgement deadlines and the disk-full state (shared with the writer). */
    private readonly d: Durability,
    private readonly stats: WriterStats,
    private readonly host: WriteQueueHost,
  ) {}

  /** Bytes of frames queued and not written (bounded by writeQueueBytesMax). */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Bytes queued since the last commit (drives the commit every flushFrequencyPages). */
  get unflushedBytes(): number {
    return this.unflushed;
  }

  /** Size `current` will have once the queue is written (drives size-based rotation). */
  get plannedBytes(): number {
    return this.planned;
  }

  /** Bytes queued since the last image (drives images every imageFrequencyBytes). */
  get bytesSinceImage(): number {
    return this.sinceImage;
  }

  /** The error that failed the writer for good, if one did. */
  get failed(): TapedeckError | undefined {
    return this.failedWith;
  }

  /** Microseconds since the epoch at which `current` was created (rotation by interval). */
  get createdUs(): number {
    return this.file.createdUs;
  }

  /** Nothing waits to be written or committed. */
  get idle(): boolean {
    return this.file.uncommittedBytes === 0 && this.queue.length === 0;
  }

  /** Frames in memory and not committed: queued ones and written-but-uncommitted ones. */
  get bufferedBytes(): number {
    return this.queued + (this.file?.uncommittedBytes ?? 0);
  }

  /** True while the write queue is above its high-water mark: await drain() before more. */
  get needsDrain(): boolean {
    return this.queued >= STORAGE_LIMITS.writeQueueBytesHigh;
  }

  /** Resolves at once on a full disk: the next append then answers TPD_DISK_FULL rather than wait for space. */
  drain(): Promise<void> {
    if (!this.needsDrain || this.failed || this.d.isDiskFull) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- start and close

  /** A damaged `current` left by the last run is sealed under a rotated name: never append after a bad block. */
  async sealDamagedCurrent(last: FileEntry): Promise<void> {
    const name = this.a.nextRotatedName(last.lastTs ?? 0);
    await rename(join(this.a.dir, CURRENT_NAME), join(this.a.dir, name));
    await fsyncDir(this.a.dir);
    this.a.fileList.sealAs(last.seq, name);
    this.recordFileRow(last);
  }

  /** Appends to the `current` the last run left, after its committed length. */
  async reopenCurrent(entry: FileEntry): Promise<void> {
    this.file = await OpenFile.reopen(this.a.dir, entry);
    this.planned = entry.committedBytes;
    const t = this.a.table(entry);
    let lastImageEnd = HEADER_BYTES;
    for (let i = 0; i < t.length; i++) if (t.type(i) === BlockType.IMAGE) lastImageEnd = t.offset(i) + t.frameBytes(i);
    this.sinceImage = entry.committedBytes - lastImageEnd;
  }

  /** Starts the archive's first `current` (or the next after a sealed one) with `start`'s frames. */
  async createFirst(seq: number, start: FrameItem[]): Promise<void> {
    await this.createFile(seq, start);
    this.planned = this.file.writtenPos;
  }

  /** Waits for the pump to stop (after the writer stopped feeding it). */
  async settle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  async closeFile(): Promise<void> {
    await this.file?.fh.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------- the queue

  enqueue(item: QueueItem): void {
    if (item.kind === 'frame') {
      this.queued += item.bytes.length;
      this.unflushed += item.bytes.length;
      this.planned += item.bytes.length;
      this.sinceImage = item.meta.type === BlockType.IMAGE ? 0 : this.sinceImage + item.bytes.length;
    } else if (item.kind === 'rotate') {
      this.sinceImage = 0;
      this.planned = HEADER_BYTES + item.start.reduce((n, f) => n + f.bytes.length, 0);
    }
    this.queue.push(item);
    this.kick();
  }

  /** Starts the pump unless it runs, the writer failed, or a full disk makes it wait for its retry timer. */
  kick(): void {
    if (this.failed || this.d.retryPending) return;
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0] as QueueItem;
        if (head.kind === 'frame') await this.writeQueuedFrames();
        else if (head.kind === 'commit') await this.commitQueued();
        else await this.rotateQueued(head);
      }
      this.flushCatalogBacklog();
      this.d.leaveDiskFull();
    } catch (err) {
      if (!isDiskFullError(err)) this.fail(err);
      // A producer waiting on drain() hears TPD_DISK_FULL from its next append instead.
      else if (this.d.enterDiskFull(err)) for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /** Writes the frames at the head of the queue; they leave it only once written whole. */
  private async writeQueuedFrames(): Promise<void> {
    const frames: FrameItem[] = [];
    let bytes = 0;
    for (const item of this.queue) {
      if (item.kind !== 'frame' || bytes >= WRITE_COALESCE_BYTES || frames.length >= WRITE_COALESCE_FRAMES) break;
      frames.push(item);
      bytes += item.bytes.length;
    }
    this.stats.bytesWritten += await this.file.write(frames);
    this.queue.splice(0, frames.length);
    this.queued -= bytes;
    if (!this.needsDrain) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Adjacent commit requests are merged: one fsync pair serves them all. */
  private async commitQueued(): Promise<void> {
    let n = 0;
    while (this.queue[n]?.kind === 'commit') n++;
    await this.commit();
    for (const item of this.queue.splice(0, n) as CommitItem[]) for (const w of item.waiters) w.resolve();
  }

  private async rotateQueued(item: RotateItem): Promise<void> {
    if (item.phase === 'commit') {
      await this.commit();
      item.phase = 'rename';
    }
    if (item.phase === 'rename') {
      await this.renameCurrent(item);
      item.phase = 'announce';
    }
    if (item.phase === 'announce') {
      await this.announceRotation();
      item.phase = 'create';
    }
    await this.createFile(this.file.entry.seq + 1, item.start);
    this.host.rotated();
    this.queue.shift();
    for (const w of item.waiters) w.resolve();
  }

  // ---------------------------------------------------------------- commits

  private async commit(): Promise<void> {
    const t0 = performance.now();
    let done: Written[] | undefined;
    try {
      done = await this.file.commit();
    } catch (err) {
      if (isDiskFullError(err)) this.requeueUncommitted();
      throw err;
    }
    if (!done) return;
    const upto = this.file.committedPos;
    this.unflushed = 0;
    this.publish(done, upto);
    this.stats.commits++;
    this.stats.lastCommitMs = performance.now() - t0;
    this.a.emit('flushed', { ms: this.stats.lastCommitMs, committedBytes: upto });
    // lastTs is 0 both with no batch and with one at 0 µs: only a committed batch makes 0 durable.
    const any = this.a.lastTs > 0 || this.a.files.some((f) => f.firstTs !== null && f.firstTs !== undefined);
    this.d.committed(any ? this.a.lastTs : NOTHING_DURABLE);
  }

  /** The frames of a failed commit go back to the head of the queue, to be written again. */
  private requeueUncommitted(): void {
    const items = this.file.takeUncommitted();
    this.queue.unshift(...items);
    for (const f of items) this.queued += f.bytes.length;
  }

  private publish(done: Written[], committedBytes: number): void {
    const e = this.file.entry;
    const rows = done.map((d): BlockRow => ({ offset: d.offset, frameBytes: d.item.bytes.length, ...d.item.meta }));
    const paths = done.flatMap((d) => d.item.defs ?? []);
    let lastTs = e.lastTs;
    let firstTs = e.firstTs;
    for (const r of rows) {
      if (r.type !== BlockType.DELTA) continue;
      firstTs ??= r.firstTs;
      lastTs = r.lastTs;
    }
    this.recordCatalog({ seq: e.seq, name: e.name, location: 'local', firstTs, lastTs, indexedBytes: committedBytes, sealed: e.sealed }, rows, paths);
    // After the catalog: a block table first loaded here reads the catalog up to the old
    // committed length, so these rows are in it once.
    this.a.publishCommit(e, rows, committedBytes);
    // Data reached the disk: the space is back (before the waiters of this commit hear of it).
    if (this.catalogBacklog.length === 0) this.d.leaveDiskFull();
  }

  private recordFileRow(e: FileEntry): void {
    this.recordCatalog(fileRowOf(e), [], []);
  }

  /**
   * Catalog writes happen in order. One the catalog's full file system refused waits, with
   * every later one, for the pump's next pass: the files hold the data and a reopen
   * reindexes what the catalog lacks, but the catalog must never skip a commit's rows.
   */
  private recordCatalog(file: FileRow, rows: BlockRow[], paths: PathDef[]): void {
    this.catalogBacklog.push({ file, rows, paths });
    try {
      this.flushCatalogBacklog();
    } catch (err) {
      if (!isDiskFullError(err)) throw err;
    }
  }

  private flushCatalogBacklog(): void {
    while (this.catalogBacklog.length > 0) {
      const c = this.catalogBacklog[0] as CatalogWrite;
      this.a.catalog.recordFile(c.file, c.rows, c.paths);
      this.catalogBacklog.shift();
    }
  }

  // ---------------------------------------------------------------- rotation

  /** Renames `current` under its end time (the file is committed: the rotation committed first). */
  private async renameCurrent(item: RotateItem): Promise<void> {
    const e = this.file.entry;
    const name = (item.sealedName ??= this.a.nextRotatedName(e.lastTs ?? this.host.lastTs()));
    await rename(join(this.a.dir, CURRENT_NAME), join(this.a.dir, name));
    // Readers open files by entry name: it changes with the rename, not after the steps
    // a full disk may hold up.
    this.a.fileList.sealAs(e.seq, name);
  }

  private async announceRotation(): Promise<void> {
    const e = this.file.entry;
    await fsyncDir(this.a.dir);
    // Its data are fdatasync'd: a failing close loses nothing.
    await this.file.fh.close().catch(() => undefined);
    this.recordFileRow(e);
    this.stats.rotations++;
    this.a.emit('rotate', { seq: e.seq, name: e.name });
  }

  /** A new `current` (written whole, then renamed into place) becomes the file appended to. */
  private async createFile(seq: number, start: FrameItem[]): Promise<void> {
    const { file, done } = await OpenFile.create(this.a, seq, start);
    this.file = file;
    this.sinceImage = 0;
    this.publish(done, file.committedPos);
  }

  // ---------------------------------------------------------------- failure

  /** Fails the writer for good: every waiter hears `err` (as a TapedeckError), appends are refused. */
  private fail(err: unknown): void {
    const e = isTapedeckError(err) ? err : new TapedeckError('TPD_IO', `archive write failed: ${(err as NodeJS.ErrnoException).code ?? 'I/O error'}`, undefined, { cause: err });
    this.failedWith = e;
    // The log gets the underlying error (paths, stack); clients only the code's message.
    this.a.logger.error({ code: e.code, err: e.cause ?? e }, 'archive writer failed; appends are refused from now on');
    for (const item of this.queue.splice(0)) if (item.kind !== 'frame') for (const w of item.waiters) w.reject(e);
    this.d.failed(e);
    for (const w of this.drainWaiters.splice(0)) w();
    this.a.emit('writer-error', e);
  }
}
