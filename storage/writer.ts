/**
 * The archive's one writer. `append` is synchronous and cheap: it resolves path ids,
 * stamps the batch and adds it to the open delta block. Sealed blocks (and images, and
 * the markers for commits and rotations) go into one ordered queue that a single async
 * pump drains to disk, so fsyncs and renames never block the event loop and always
 * happen in the order the data arrived.
 *
 * Commit (two-phase): write the frames, fdatasync, write the committed length into the
 * next header slot, fdatasync again; then record the blocks in the catalog and show them
 * to readers. `whenDurable(ts)` waits for the commit holding a batch; waiters arriving
 * together share one (group commit).
 *
 * Full disk (ENOSPC, EDQUOT, SQLITE_FULL): nothing is dropped. The pump stops at the item
 * that failed, which stays at the head of the queue (each step can be done again: frames
 * are rewritten from writtenPos, a failed commit rewinds to the committed length, a
 * rotation goes on from the phase it reached), and retries on a timer. `append` keeps
 * taking batches up to diskFullBufferBytesMax, then throws TPD_DISK_FULL. Any other error
 * fails the writer for good (fail()).
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import type { Update, Value } from '../protocol/value.js';
import { BlockType } from './codec/frame.js';
import { HEADER_BYTES } from './codec/header.js';
import type { PathDef } from './codec/payload.js';
import { BlockBuilder, type FrameItem } from './block-builder.js';
import { PAGE_BYTES, STORAGE_LIMITS, type DiskFullLimits } from './limits.js';
import { isDiskFullError, type Waiter } from './disk-full.js';
import { Durability, type WriterHealth } from './durability.js';
import { CURRENT_NAME } from './segment-file.js';
import { OpenFile, fsyncDir, type Written } from './open-file.js';
import type { BlockRow, FileRow } from './catalog.js';
import type { Archive } from './archive.js';
import type { FileEntry } from './file-list.js';

interface CommitItem {
  kind: 'commit';
  waiters: Waiter[];
}
interface RotateItem {
  kind: 'rotate';
  /** PATHS and IMAGE frames for the new file, built when the rotation was asked for. */
  start: FrameItem[];
  waiters: Waiter[];
  /** How far the rotation got: a full disk can stop it between any two steps. */
  phase: 'commit' | 'rename' | 'announce' | 'create';
  /** The name `current` is sealed under, chosen once (a retried rename uses the same). */
  sealedName: string | undefined;
}
type QueueItem = FrameItem | CommitItem | RotateItem;

/** A catalog write not done yet (the catalog's file system was full). */
interface CatalogWrite {
  file: FileRow;
  rows: BlockRow[];
  paths: PathDef[];
}

export type { WriterHealth };

export interface WriterStats {
  batches: number;
  updates: number;
  bytesWritten: number;
  commits: number;
  rotations: number;
  images: number;
  lastCommitMs: number;
}

/** Frames coalesced into one write call at most (bytes). */
const WRITE_COALESCE_BYTES = 8 * 1024 * 1024;
/** Frames per write call at most (stays under IOV_MAX = 1024 for writev). */
const WRITE_COALESCE_FRAMES = 512;

export class ArchiveWriter {
  readonly stats: WriterStats = { batches: 0, updates: 0, bytesWritten: 0, commits: 0, rotations: 0, images: 0, lastCommitMs: 0 };
  private readonly a: Archive;
  /** `current`: its handle, written and committed lengths. */
  private file!: OpenFile;
  /** The open delta block and the latest value of every path (for images). */
  private readonly blocks: BlockBuilder;
  private lastTs: number;
  // The queue towards disk.
  private queue: QueueItem[] = [];
  private queuedBytes = 0;
  private unflushedBytes = 0;
  /** Size `current` will have once the queue is written (drives size-based rotation). */
  private plannedBytes = 0;
  private bytesSinceImage = 0;
  private pumping: Promise<void> | undefined;
  private drainWaiters: Array<() => void> = [];
  private failed: TapedeckError | undefined;
  private closing = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  /** Durable waiters, acknowledgement deadlines and the disk-full state. */
  private readonly d: Durability;
  /** A group commit is asked for or queued and not done yet: later waiters wait for the next. */
  private groupCommitAsked = false;
  private catalogBacklog: CatalogWrite[] = [];

  private constructor(a: Archive) {
    this.a = a;
    this.blocks = new BlockBuilder(a);
    this.lastTs = a.lastTs;
    this.d = new Durability({
      logger: a.logger,
      emit: (event, payload) => a.emit(event, payload),
      bufferedBytes: () => this.bufferedBytes,
      retry: () => this.kick(),
    }, a.lastTs);
  }

  /** Changes the full-disk limits of this writer (tests and tuning; defaults from STORAGE_LIMITS). */
  setDiskFullLimits(limits: Partial<DiskFullLimits>): void {
    this.d.setLimits(limits);
  }

  get diskFullLimits(): Readonly<DiskFullLimits> {
    return this.d.limits;
  }

  static async start(a: Archive): Promise<ArchiveWriter> {
    const w = new ArchiveWriter(a);
    await w.loadState();
    const last = a.fileList.last();
    if (last && last.name === CURRENT_NAME && last.damaged) {
      // Never append after a bad block: seal the damaged file under a rotated name.
      const name = a.nextRotatedName(last.lastTs ?? 0);
      await rename(join(a.dir, CURRENT_NAME), join(a.dir, name));
      await fsyncDir(a.dir);
      a.fileList.sealAs(last.seq, name);
      w.recordFileRow(last);
    }
    const cur = a.fileList.last();
    if (cur && cur.name === CURRENT_NAME) {
      await w.reopenCurrent(cur);
    } else {
      const seq = cur ? cur.seq + 1 : 0;
      await w.createFile(seq, w.startFrames());
      w.plannedBytes = w.file.writtenPos;
    }
    if (a.options.flushIntervalMs > 0) {
      w.flushTimer = setInterval(() => w.timedFlush(), a.options.flushIntervalMs);
      w.flushTimer.unref();
    }
    w.scheduleRotation();
    return w;
  }

  /** Latest value of every path, read back from the archive (bounded by the last image). */
  private async loadState(): Promise<void> {
    if (this.a.paths.length === 0) return;
    const c = this.a.cursor();
    await c.seek('end');
    // A bad block among the newest ones must not keep the recorder from starting: its
    // updates are unreadable whatever we do, so the older values stand in, the file is
    // marked damaged (a damaged `current` is sealed below) and `verify` reports it.
    const state = await c.stateById((err) => {
      const file = typeof err.details?.file === 'string' ? err.details.file : undefined;
      this.a.problem({ file: file ?? '?', code: err.code, message: `${err.message}; its updates are left out of the state carried forward` });
      const entry = this.a.files.find((f) => f.name === file);
      if (entry) this.a.fileList.markDamaged(entry.seq);
    });
    for (const [id, v] of state) this.blocks.setState(id, v);
  }

  private async reopenCurrent(entry: FileEntry): Promise<void> {
    this.file = await OpenFile.reopen(this.a.dir, entry);
    this.plannedBytes = entry.committedBytes;
    const t = this.a.table(entry);
    let lastImageEnd = HEADER_BYTES;
    for (let i = 0; i < t.length; i++) if (t.type(i) === BlockType.IMAGE) lastImageEnd = t.offset(i) + t.frameBytes(i);
    this.bytesSinceImage = entry.committedBytes - lastImageEnd;
  }

  // ---------------------------------------------------------------- append

  /**
   * Appends one batch. Returns its timestamp: `ts` (µs) when given and after the last
   * batch, else the last timestamp + 1 µs; the wall clock when `ts` is omitted. Throws
   * TPD_BAD_PATH / TPD_BAD_ARGUMENT / TPD_BATCH_TOO_LARGE (nothing is recorded then) and
   * TPD_BACKPRESSURE when the write queue is full, TPD_DISK_FULL when the disk is full and
   * diskFullBufferBytesMax bytes already wait in memory.
   */
  append(updates: readonly Update[], ts?: number): number {
    if (!Array.isArray(updates)) {
      this.checkWritable();
      throw new TapedeckError('TPD_BAD_ARGUMENT', 'updates must be an array of [path, value] pairs');
    }
    const t = this.stampFor(updates.length, ts);
    this.blocks.add(updates, t);
    return this.appended(t, updates.length);
  }

  /**
   * The writer's id for `path`, for appendColumns: resolved once per source rather than
   * looked up per update. Ids are this writer's own (not archive path ids) and stay valid
   * for its life; a path is defined in the archive with its first update, not here.
   * Throws TPD_BAD_PATH.
   */
  pathId(path: string): number {
    return this.blocks.pathId(path);
  }

  /**
   * Appends one batch given as columns: `ids[i]` (from pathId) has the value `values[i]`.
   * Numbers in a Float64Array are recorded without an object per update (signalling NaNs
   * keep their bits); any other values in an array. Returns and throws as append(); the
   * arrays are not kept (a source may reuse them for its next batch).
   */
  appendColumns(ids: Uint32Array, values: Float64Array | readonly Value[], ts?: number): number {
    if (!(ids instanceof Uint32Array) || !(values instanceof Float64Array || Array.isArray(values))) {
      this.checkWritable();
      throw new TapedeckError('TPD_BAD_ARGUMENT', 'appendColumns takes a Uint32Array of path ids and a Float64Array or an array of values');
    }
    const t = this.stampFor(ids.length, ts);
    this.blocks.addColumns(ids, values, t);
    return this.appended(t, ids.length);
  }

  private checkWritable(): void {
    if (this.failed) throw this.failed;
    if (this.d.isDiskFull && this.bufferedBytes >= this.d.limits.bufferBytesMax) throw this.d.diskFullError();
    if (this.closing) throw new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed');
  }

  /** Checks that a batch of n updates may be appended now and returns its timestamp. */
  private stampFor(n: number, ts: number | undefined): number {
    this.checkWritable();
    if (n > STORAGE_LIMITS.batchUpdatesMax) {
      throw new TapedeckError('TPD_BATCH_TOO_LARGE', `batch has ${n} updates; the limit is ${STORAGE_LIMITS.batchUpdatesMax}`);
    }
    if (this.queuedBytes >= STORAGE_LIMITS.writeQueueBytesMax) {
      throw new TapedeckError('TPD_BACKPRESSURE', `write queue holds ${this.queuedBytes} bytes (limit ${STORAGE_LIMITS.writeQueueBytesMax})`);
    }
    const t = ts ?? this.a.clockUs();
    if (!Number.isSafeInteger(t) || t < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `timestamp must be a non-negative integer of microseconds, got ${String(ts)}`);
    return t <= this.lastTs ? this.lastTs + 1 : t;
  }

  private appended(t: number, n: number): number {
    this.lastTs = t;
    this.stats.batches++;
    this.stats.updates += n;
    if (this.blocks.full) this.seal();
    return t;
  }

  /** True while the write queue is above its high-water mark: await drain() before more. */
  get needsDrain(): boolean {
    return this.queuedBytes >= STORAGE_LIMITS.writeQueueBytesHigh;
  }

  /** Resolves at once on a full disk: the next append then answers TPD_DISK_FULL rather than wait for space. */
  drain(): Promise<void> {
    if (!this.needsDrain || this.failed || this.d.isDiskFull) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  get lastTimestamp(): number {
    return this.lastTs;
  }

  /**
   * Seals the open block and resolves when everything appended so far is committed.
   * Rejects with TPD_DISK_FULL after diskFullAckWaitMs of a full disk (the data stays
   * queued and is written when space returns).
   */
  flush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed'));
    this.seal();
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'commit', waiters: [this.d.acks.wrap(resolve, reject)] });
    });
  }

  /**
   * Resolves once the batch appended at `ts` is committed (fdatasync'd, then named by a
   * header slot that is fdatasync'd too). Waiters that arrive while a commit is in flight
   * share the next one, and the open block is sealed once per commit, not once per waiter.
   * Rejects with the writer's error if it fails, and with TPD_DISK_FULL after
   * diskFullAckWaitMs of a full disk (the batch itself stays queued and is written later).
   */
  whenDurable(ts: number): Promise<void> {
    if (ts <= this.d.durableTs) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed'));
    if (!Number.isSafeInteger(ts) || ts > this.lastTs) {
      return Promise.reject(new TapedeckError('TPD_BAD_ARGUMENT', `no batch was appended at ${String(ts)} (the last is at ${this.lastTs})`));
    }
    const p = this.d.waitFor(ts);
    this.askGroupCommit();
    return p;
  }

  /** Closes `current` under its end time and starts a new file with a full image. */
  rotate(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed'));
    this.seal();
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [this.d.acks.wrap(resolve, reject)], phase: 'commit', sealedName: undefined });
    });
  }

  /**
   * Flushes and closes. On a full disk the flush gives up after diskFullAckWaitMs: what
   * was not written by then is lost with the process (logged, and the flush's
   * TPD_DISK_FULL is thrown).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    clearInterval(this.flushTimer);
    clearTimeout(this.rotateTimer);
    let error: unknown;
    if (!this.failed) {
      try {
        await this.flush();
      } catch (err) {
        error = err;
      }
    }
    this.closing = true;
    this.d.stop();
    while (this.pumping) await this.pumping;
    if (this.d.isDiskFull) {
      this.a.logger.error({ bufferedBytes: this.bufferedBytes }, 'archive writer closed on a full disk: batches not yet written are lost');
    }
    this.d.rejectAll(new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed'));
    await this.file?.fh.close().catch(() => undefined);
    if (error) throw error;
  }

  get health(): WriterHealth {
    return this.d.health(this.failed !== undefined);
  }

  /** Frames in memory and not committed: queued ones and written-but-uncommitted ones. */
  private get bufferedBytes(): number {
    return this.queuedBytes + (this.file?.uncommittedBytes ?? 0);
  }

  // ---------------------------------------------------------------- blocks

  private seal(): void {
    const frames = this.blocks.seal();
    if (frames.length === 0) return;
    for (const f of frames) this.enqueue(f);
    const o = this.a.options;
    if (o.imageFrequencyBytes > 0 && this.bytesSinceImage >= o.imageFrequencyBytes) this.enqueue(this.imageFrame());
    if (this.unflushedBytes >= o.flushFrequencyPages * PAGE_BYTES) this.enqueue({ kind: 'commit', waiters: [] });
    if (o.rotateSizeBytes > 0 && this.plannedBytes >= o.rotateSizeBytes) {
      this.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [], phase: 'commit', sealedName: undefined });
    }
  }

  private imageFrame(): FrameItem {
    this.stats.images++;
    return this.blocks.imageFrame(this.lastTs);
  }

  /** The frames every file starts with: the whole path dictionary and a full image. */
  private startFrames(): FrameItem[] {
    this.stats.images++;
    return this.blocks.startFrames(this.lastTs);
  }

  private enqueue(item: QueueItem): void {
    if (item.kind === 'frame') {
      this.queuedBytes += item.bytes.length;
      this.unflushedBytes += item.bytes.length;
      this.plannedBytes += item.bytes.length;
      this.bytesSinceImage = item.meta.type === BlockType.IMAGE ? 0 : this.bytesSinceImage + item.bytes.length;
    } else if (item.kind === 'rotate') {
      this.bytesSinceImage = 0;
      this.plannedBytes = HEADER_BYTES + item.start.reduce((n, f) => n + f.bytes.length, 0);
    }
    this.queue.push(item);
    this.kick();
  }

  /** Starts the pump unless it runs, the writer failed, or a full disk makes it wait for its retry timer. */
  private kick(): void {
    if (this.failed || this.d.retryPending) return;
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  /**
   * Group commit: one seal and one commit for every waiter that asks before it starts;
   * waiters arriving later (their batch may be in no sealed block yet) get the next one.
   */
  private askGroupCommit(): void {
    if (this.groupCommitAsked) return;
    this.groupCommitAsked = true;
    setImmediate(() => {
      if (this.failed || this.closing) {
        this.groupCommitAsked = false;
        return;
      }
      this.seal();
      const done = (): void => {
        this.groupCommitAsked = false;
        if (this.d.hasWaiters) this.askGroupCommit();
      };
      this.enqueue({ kind: 'commit', waiters: [{ resolve: done, reject: () => void (this.groupCommitAsked = false) }] });
    });
  }

  // ---------------------------------------------------------------- the pump

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
    this.queuedBytes -= bytes;
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
    this.scheduleRotation();
    this.queue.shift();
    for (const w of item.waiters) w.resolve();
  }

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
    this.unflushedBytes = 0;
    this.publish(done, upto);
    this.stats.commits++;
    this.stats.lastCommitMs = performance.now() - t0;
    this.a.emit('flushed', { ms: this.stats.lastCommitMs, committedBytes: upto });
    this.d.committed(this.a.lastTs);
  }

  /** The frames of a failed commit go back to the head of the queue, to be written again. */
  private requeueUncommitted(): void {
    const items = this.file.takeUncommitted();
    this.queue.unshift(...items);
    for (const f of items) this.queuedBytes += f.bytes.length;
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
    this.recordCatalog({ seq: e.seq, name: e.name, location: e.location, firstTs: e.firstTs, lastTs: e.lastTs, indexedBytes: e.committedBytes, sealed: e.sealed }, [], []);
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
    const name = (item.sealedName ??= this.a.nextRotatedName(e.lastTs ?? this.lastTs));
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
    this.bytesSinceImage = 0;
    this.publish(done, file.committedPos);
  }

  // ---------------------------------------------------------------- timers and failure

  private timedFlush(): void {
    if (this.failed || this.closing || this.d.isDiskFull) return;
    if (this.blocks.batches === 0 && this.file.uncommittedBytes === 0 && this.queue.length === 0) return;
    this.flush().catch(() => undefined); // failures are reported through fail()
  }

  private scheduleRotation(): void {
    clearTimeout(this.rotateTimer);
    const every = this.a.options.rotateIntervalMs;
    if (every <= 0 || this.closing) return;
    const dueMs = Math.max(0, (this.file.createdUs / 1000 + every) - this.a.clockUs() / 1000);
    this.rotateTimer = setTimeout(() => {
      if (this.failed || this.closing) return;
      this.rotate().catch(() => undefined);
    }, Math.min(dueMs, 2 ** 31 - 1));
    this.rotateTimer.unref();
  }

  private fail(err: unknown): void {
    const e = isTapedeckError(err) ? err : new TapedeckError('TPD_IO', `archive write failed: ${(err as NodeJS.ErrnoException).code ?? 'I/O error'}`, undefined, { cause: err });
    this.failed = e;
    // The log gets the underlying error (paths, stack); clients only the code's message.
    this.a.logger.error({ code: e.code, err: e.cause ?? e }, 'archive writer failed; appends are refused from now on');
    for (const item of this.queue.splice(0)) if (item.kind !== 'frame') for (const w of item.waiters) w.reject(e);
    this.d.failed(e);
    for (const w of this.drainWaiters.splice(0)) w();
    this.a.emit('writer-error', e);
  }

  get error(): TapedeckError | undefined {
    return this.failed;
  }
}
