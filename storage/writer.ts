/**
 * The archive's one writer. `append` is synchronous and cheap: it resolves path ids,
 * stamps the batch and adds it to the open delta block. The writer decides what goes to
 * disk and when: a block sealed when full, an image every imageFrequencyBytes, a commit
 * every flushFrequencyPages or flushIntervalMs, a rotation by size or interval, and the
 * commits `flush`, `whenDurable` and `rotate` ask for. `whenDurable(ts)` waits for the
 * commit holding a batch; waiters arriving together share one (group commit).
 *
 * How it gets there (one ordered queue, one async pump, two-phase commits, rotation's
 * steps, the catalog's rows, full-disk retries) is write-queue.ts. On a full disk `append`
 * keeps taking batches up to diskFullBufferBytesMax, then throws TPD_DISK_FULL.
 */
import { TapedeckError } from '../protocol/errors.js';
import { TS_MAX_US, type Update, type Value } from '../protocol/value.js';
import { BlockBuilder, type FrameItem } from './block-builder.js';
import { PAGE_BYTES, STORAGE_LIMITS, type DiskFullLimits } from './limits.js';
import { Durability, NOTHING_DURABLE, type WriterHealth } from './durability.js';
import { CURRENT_NAME } from './segment-file.js';
import { WriteQueue, type WriterStats } from './write-queue.js';
import type { Archive } from './archive.js';

export type { WriterHealth, WriterStats };

export class ArchiveWriter {
  readonly stats: WriterStats = { batches: 0, updates: 0, bytesWritten: 0, commits: 0, rotations: 0, images: 0, lastCommitMs: 0 };
  private readonly a: Archive;
  /** The open delta block and the latest value of every path (for images). */
  private readonly blocks: BlockBuilder;
  private lastTs: number;
  /**
   * The archive holds a batch. lastTs is 0 both for an empty archive and for one whose last
   * batch is at 0 µs; only in the second is a batch at 0 "not after the last" (the first
   * batch at 0 was stamped 1, and every later time looked one batch early).
   */
  private anyBatch: boolean;
  /** The queue towards disk, its pump and `current`. */
  private readonly q: WriteQueue;
  private closing = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  /** Durable waiters, acknowledgement deadlines and the disk-full state. */
  private readonly d: Durability;
  /** A group commit is asked for or queued and not done yet: later waiters wait for the next. */
  private groupCommitAsked = false;

  private constructor(a: Archive) {
    this.a = a;
    this.blocks = new BlockBuilder(a);
    this.lastTs = a.lastTs;
    this.anyBatch = a.lastTs > 0 || a.files.some((f) => f.firstTs !== null && f.firstTs !== undefined);
    this.d = new Durability({
      logger: a.logger,
      emit: (event, payload) => a.emit(event, payload),
      bufferedBytes: () => this.q.bufferedBytes,
      retry: () => this.q.kick(),
    }, this.anyBatch ? a.lastTs : NOTHING_DURABLE);
    this.q = new WriteQueue(a, this.d, this.stats, { lastTs: () => this.lastTs, rotated: () => this.scheduleRotation() });
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
    // Never append after a bad block: seal the damaged file under a rotated name.
    if (last && last.name === CURRENT_NAME && last.damaged) await w.q.sealDamagedCurrent(last);
    const cur = a.fileList.last();
    if (cur && cur.name === CURRENT_NAME) {
      await w.q.reopenCurrent(cur);
    } else {
      const seq = cur ? cur.seq + 1 : 0;
      await w.q.createFirst(seq, w.startFrames());
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
    if (this.d.isDiskFull && this.q.bufferedBytes >= this.d.limits.bufferBytesMax) throw this.d.diskFullError();
    if (this.closing) throw new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed');
  }

  /** Checks that a batch of n updates may be appended now and returns its timestamp. */
  private stampFor(n: number, ts: number | undefined): number {
    this.checkWritable();
    if (n > STORAGE_LIMITS.batchUpdatesMax) {
      throw new TapedeckError('TPD_BATCH_TOO_LARGE', `batch has ${n} updates; the limit is ${STORAGE_LIMITS.batchUpdatesMax}`);
    }
    if (this.q.queuedBytes >= STORAGE_LIMITS.writeQueueBytesMax) {
      throw new TapedeckError('TPD_BACKPRESSURE', `write queue holds ${this.q.queuedBytes} bytes (limit ${STORAGE_LIMITS.writeQueueBytesMax})`);
    }
    const t = ts ?? this.a.clockUs();
    if (!Number.isSafeInteger(t) || t < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `timestamp must be a non-negative integer of microseconds, got ${String(ts)}`);
    if (t > this.lastTs || !this.anyBatch) return t;
    // Moved after the last batch; past TS_MAX_US no time is exact (2^53 + 1 is 2^53).
    if (this.lastTs >= TS_MAX_US) throw new TapedeckError('TPD_BAD_ARGUMENT', `timestamp ${String(ts ?? t)} is not after the archive's last batch, which is at the largest timestamp (${TS_MAX_US} µs): no batch fits after it`);
    return this.lastTs + 1;
  }

  private appended(t: number, n: number): number {
    this.lastTs = t;
    this.anyBatch = true;
    this.stats.batches++;
    this.stats.updates += n;
    if (this.blocks.full) this.seal();
    return t;
  }

  /** True while the write queue is above its high-water mark: await drain() before more. */
  get needsDrain(): boolean {
    return this.q.needsDrain;
  }

  /** Resolves at once on a full disk: the next append then answers TPD_DISK_FULL rather than wait for space. */
  drain(): Promise<void> {
    return this.q.drain();
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
      this.q.enqueue({ kind: 'commit', waiters: [this.d.acks.wrap(resolve, reject)] });
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
    if (ts <= this.d.durableTs || (!this.anyBatch && ts === 0)) return Promise.resolve(); // nothing appended: nothing to wait for
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
      this.q.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [this.d.acks.wrap(resolve, reject)], phase: 'commit', sealedName: undefined });
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
    await this.q.settle();
    if (this.d.isDiskFull) {
      this.a.logger.error({ bufferedBytes: this.q.bufferedBytes }, 'archive writer closed on a full disk: batches not yet written are lost');
    }
    this.d.rejectAll(new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed'));
    await this.q.closeFile();
    if (error) throw error;
  }

  get health(): WriterHealth {
    return this.d.health(this.failed !== undefined);
  }

  // ---------------------------------------------------------------- blocks

  /** Seals the open block and queues what is due after it: an image, a commit, a rotation. */
  private seal(): void {
    const frames = this.blocks.seal();
    if (frames.length === 0) return;
    const q = this.q;
    for (const f of frames) q.enqueue(f);
    const o = this.a.options;
    if (o.imageFrequencyBytes > 0 && q.bytesSinceImage >= o.imageFrequencyBytes) for (const f of this.imageFrames()) q.enqueue(f);
    if (q.unflushedBytes >= o.flushFrequencyPages * PAGE_BYTES) q.enqueue({ kind: 'commit', waiters: [] });
    if (o.rotateSizeBytes > 0 && q.plannedBytes >= o.rotateSizeBytes) {
      q.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [], phase: 'commit', sealedName: undefined });
    }
  }

  private imageFrames(): FrameItem[] {
    this.stats.images++;
    return this.blocks.imageFrames(this.lastTs);
  }

  /** The frames every file starts with: the whole path dictionary and a full image. */
  private startFrames(): FrameItem[] {
    this.stats.images++;
    return this.blocks.startFrames(this.lastTs);
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
      this.q.enqueue({ kind: 'commit', waiters: [{ resolve: done, reject: () => void (this.groupCommitAsked = false) }] });
    });
  }

  // ---------------------------------------------------------------- timers

  private timedFlush(): void {
    if (this.failed || this.closing || this.d.isDiskFull) return;
    if (this.blocks.batches === 0 && this.q.idle) return;
    this.flush().catch(() => undefined); // failures are reported through fail()
  }

  private scheduleRotation(): void {
    clearTimeout(this.rotateTimer);
    const every = this.a.options.rotateIntervalMs;
    if (every <= 0 || this.closing) return;
    const dueMs = Math.max(0, (this.q.createdUs / 1000 + every) - this.a.clockUs() / 1000);
    this.rotateTimer = setTimeout(() => {
      if (this.failed || this.closing) return;
      this.rotate().catch(() => undefined);
    }, Math.min(dueMs, 2 ** 31 - 1));
    this.rotateTimer.unref();
  }

  /** The error that failed the writer for good (the queue's: see WriteQueue.fail). */
  get error(): TapedeckError | undefined {
    return this.q.failed;
  }

  private get failed(): TapedeckError | undefined {
    return this.q.failed;
  }
}
