/**
 * The archive's one writer. `append` is synchronous and cheap: it resolves path ids,
 * stamps the batch and adds it to the open delta block. Sealed blocks (and images, and
 * the markers for commits and rotations) go into one ordered queue that a single async
 * pump drains to disk, so fsyncs and renames never block the event loop and always
 * happen in the order the data arrived.
 *
 * Commit (two-phase): write the frames, fdatasync, write the committed length into the
 * next header slot, fdatasync again; then record the blocks in the catalog and show them
 * to readers.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import type { Update } from '../protocol/value.js';
import { BlockType } from './codec/frame.js';
import { encodeHeader, encodeSlot, slotOffset, HEADER_BYTES, SLOT_BYTES, SLOT_OFFSETS, FORMAT_VERSION } from './codec/header.js';
import type { PathDef } from './codec/payload.js';
import { BlockBuilder, type FrameItem } from './block-builder.js';
import { PAGE_BYTES, STORAGE_LIMITS } from './limits.js';
import { CURRENT_NAME, readFileHeader } from './segment-file.js';
import type { BlockRow } from './catalog.js';
import type { Archive, FileEntry } from './archive.js';

interface CommitItem {
  kind: 'commit';
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}
interface RotateItem {
  kind: 'rotate';
  /** PATHS and IMAGE frames for the new file, built when the rotation was asked for. */
  start: FrameItem[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}
type QueueItem = FrameItem | CommitItem | RotateItem;

interface Written {
  row: BlockRow;
  defs: PathDef[] | undefined;
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

/** Frames coalesced into one write call at most (bytes). */
const WRITE_COALESCE_BYTES = 8 * 1024 * 1024;
/** Frames per write call at most (stays under IOV_MAX = 1024 for writev). */
const WRITE_COALESCE_FRAMES = 512;

export class ArchiveWriter {
  readonly stats: WriterStats = { batches: 0, updates: 0, bytesWritten: 0, commits: 0, rotations: 0, images: 0, lastCommitMs: 0 };
  private readonly a: Archive;
  private fh!: FileHandle;
  private entry!: FileEntry;
  private generation = 0;
  private writtenPos = 0;
  private committedPos = 0;
  private fileCreatedUs = 0;
  private written: Written[] = [];
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

  private constructor(a: Archive) {
    this.a = a;
    this.blocks = new BlockBuilder(a);
    this.lastTs = a.lastTs;
  }

  static async start(a: Archive): Promise<ArchiveWriter> {
    const w = new ArchiveWriter(a);
    await w.loadState();
    const last = a.files[a.files.length - 1];
    if (last && last.name === CURRENT_NAME && last.damaged) {
      // Never append after a bad block: seal the damaged file under a rotated name.
      const name = a.nextRotatedName(last.lastTs ?? 0);
      await rename(join(a.dir, CURRENT_NAME), join(a.dir, name));
      await fsyncDir(a.dir);
      last.name = name;
      last.sealed = true;
      w.recordFileRow(last);
    }
    const cur = a.files[a.files.length - 1];
    if (cur && cur.name === CURRENT_NAME) {
      await w.reopenCurrent(cur);
    } else {
      const seq = cur ? cur.seq + 1 : 0;
      await w.createFile(seq, w.startFrames());
      w.plannedBytes = w.writtenPos;
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
      if (entry) entry.damaged = true;
    });
    for (const [id, v] of state) this.blocks.setState(id, v);
  }

  private async reopenCurrent(entry: FileEntry): Promise<void> {
    this.fh = await open(join(this.a.dir, CURRENT_NAME), 'r+');
    const h = await readFileHeader(this.fh);
    // Cut the torn tail: anything past the committed length was never promised.
    await this.fh.truncate(entry.committedBytes);
    this.entry = entry;
    this.generation = h.commit.generation;
    this.writtenPos = this.committedPos = this.plannedBytes = entry.committedBytes;
    this.fileCreatedUs = h.createdUs;
    const t = this.a.table(entry);
    let lastImageEnd = HEADER_BYTES;
    for (const r of t.rows) if (r.type === BlockType.IMAGE) lastImageEnd = r.offset + r.frameBytes;
    this.bytesSinceImage = entry.committedBytes - lastImageEnd;
  }

  // ---------------------------------------------------------------- append

  /**
   * Appends one batch. Returns its timestamp: `ts` (µs) when given and after the last
   * batch, else the last timestamp + 1 µs; the wall clock when `ts` is omitted. Throws
   * TPD_BAD_PATH / TPD_BAD_ARGUMENT / TPD_BATCH_TOO_LARGE (nothing is recorded then) and
   * TPD_BACKPRESSURE when the write queue is full.
   */
  append(updates: readonly Update[], ts?: number): number {
    if (this.failed) throw this.failed;
    if (this.closing) throw new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive writer is closed');
    if (!Array.isArray(updates)) throw new TapedeckError('TPD_BAD_ARGUMENT', 'updates must be an array of [path, value] pairs');
    const n = updates.length;
    if (n > STORAGE_LIMITS.batchUpdatesMax) {
      throw new TapedeckError('TPD_BATCH_TOO_LARGE', `batch has ${n} updates; the limit is ${STORAGE_LIMITS.batchUpdatesMax}`);
    }
    if (this.queuedBytes >= STORAGE_LIMITS.writeQueueBytesMax) {
      throw new TapedeckError('TPD_BACKPRESSURE', `write queue holds ${this.queuedBytes} bytes (limit ${STORAGE_LIMITS.writeQueueBytesMax})`);
    }
    let t = ts ?? this.a.clockUs();
    if (!Number.isSafeInteger(t) || t < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `timestamp must be a non-negative integer of microseconds, got ${String(ts)}`);
    if (t <= this.lastTs) t = this.lastTs + 1;

    this.blocks.add(updates, t);
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

  drain(): Promise<void> {
    if (!this.needsDrain || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  get lastTimestamp(): number {
    return this.lastTs;
  }

  /** Seals the open block and resolves when everything appended so far is committed. */
  flush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.seal();
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'commit', waiters: [{ resolve, reject }] });
    });
  }

  /** Closes `current` under its end time and starts a new file with a full image. */
  rotate(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.seal();
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [{ resolve, reject }] });
    });
  }

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
    while (this.pumping) await this.pumping;
    await this.fh?.close().catch(() => undefined);
    if (error) throw error;
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
      this.enqueue({ kind: 'rotate', start: this.startFrames(), waiters: [] });
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

  private kick(): void {
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
      if (this.queue.length > 0 && !this.failed) this.kick();
    });
  }

  // ---------------------------------------------------------------- the pump

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0] as QueueItem;
        if (head.kind === 'frame') {
          const frames: FrameItem[] = [];
          let bytes = 0;
          while (this.queue.length > 0 && (this.queue[0] as QueueItem).kind === 'frame' && bytes < WRITE_COALESCE_BYTES && frames.length < WRITE_COALESCE_FRAMES) {
            const f = this.queue.shift() as FrameItem;
            frames.push(f);
            bytes += f.bytes.length;
          }
          await this.writeFrames(frames);
          this.queuedBytes -= bytes;
          if (!this.needsDrain) for (const w of this.drainWaiters.splice(0)) w();
        } else if (head.kind === 'commit') {
          this.queue.shift();
          // Merge adjacent commit requests: one fsync pair serves them all.
          const waiters = [...head.waiters];
          while (this.queue[0]?.kind === 'commit') waiters.push(...(this.queue.shift() as CommitItem).waiters);
          await this.commit();
          for (const w of waiters) w.resolve();
        } else {
          this.queue.shift();
          await this.commit();
          await this.rotateNow(head.start);
          for (const w of head.waiters) w.resolve();
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private async writeFrames(frames: FrameItem[]): Promise<void> {
    const total = frames.reduce((n, f) => n + f.bytes.length, 0);
    const { bytesWritten } = await this.fh.writev(frames.map((f) => f.bytes), this.writtenPos);
    if (bytesWritten !== total) {
      // A short write (disk full, signal): finish it from one buffer.
      const buf = Buffer.concat(frames.map((f) => f.bytes));
      let off = bytesWritten;
      while (off < total) {
        const r = await this.fh.write(buf, off, total - off, this.writtenPos + off);
        if (r.bytesWritten <= 0) throw new Error('write made no progress');
        off += r.bytesWritten;
      }
    }
    let at = this.writtenPos;
    for (const f of frames) {
      this.written.push({ row: { offset: at, frameBytes: f.bytes.length, ...f.meta }, defs: f.defs });
      at += f.bytes.length;
    }
    this.writtenPos = at;
    this.stats.bytesWritten += total;
  }

  private async commit(): Promise<void> {
    if (this.writtenPos === this.committedPos) return;
    const t0 = performance.now();
    const upto = this.writtenPos;
    await this.fh.datasync();
    const gen = this.generation + 1;
    await this.fh.write(encodeSlot({ generation: gen, committedBytes: upto }), 0, SLOT_BYTES, slotOffset(gen));
    await this.fh.datasync();
    this.generation = gen;
    this.committedPos = upto;
    this.unflushedBytes = 0;
    const done = this.written;
    this.written = [];
    this.publish(done, upto);
    this.stats.commits++;
    this.stats.lastCommitMs = performance.now() - t0;
    this.a.emit('flushed', { ms: this.stats.lastCommitMs, committedBytes: upto });
  }

  private publish(done: Written[], committedBytes: number): void {
    const e = this.entry;
    e.committedBytes = committedBytes;
    const rows = done.map((d) => d.row);
    const paths = done.flatMap((d) => d.defs ?? []);
    let lastTs = e.lastTs;
    let firstTs = e.firstTs;
    for (const r of rows) {
      if (r.type !== BlockType.DELTA) continue;
      firstTs ??= r.firstTs;
      lastTs = r.lastTs;
    }
    this.a.catalog.recordFile(
      { seq: e.seq, name: e.name, location: 'local', firstTs, lastTs, indexedBytes: committedBytes, sealed: e.sealed },
      rows,
      paths,
    );
    this.a.publishCommit(e, rows);
  }

  private recordFileRow(e: FileEntry): void {
    this.a.catalog.recordFile(
      { seq: e.seq, name: e.name, location: e.location, firstTs: e.firstTs, lastTs: e.lastTs, indexedBytes: e.committedBytes, sealed: e.sealed },
      [],
      [],
    );
  }

  private async rotateNow(start: FrameItem[]): Promise<void> {
    const e = this.entry;
    await this.fh.close();
    const name = this.a.nextRotatedName(e.lastTs ?? this.lastTs);
    await rename(join(this.a.dir, CURRENT_NAME), join(this.a.dir, name));
    await fsyncDir(this.a.dir);
    e.name = name;
    e.sealed = true;
    this.recordFileRow(e);
    this.stats.rotations++;
    this.a.emit('rotate', { seq: e.seq, name });
    await this.createFile(e.seq + 1, start);
    this.scheduleRotation();
  }

  /** Writes a complete new `current` (header, dictionary, image) atomically via rename. */
  private async createFile(seq: number, start: FrameItem[]): Promise<void> {
    const createdUs = this.a.clockUs();
    const header = encodeHeader({ version: FORMAT_VERSION, archiveId: this.a.archiveId, seq, createdUs });
    const body = Buffer.concat(start.map((f) => f.bytes));
    const committed = HEADER_BYTES + body.length;
    header.set(encodeSlot({ generation: 0, committedBytes: committed }), SLOT_OFFSETS[0]);
    const tmp = join(this.a.dir, `${CURRENT_NAME}.tmp`);
    const fh = await open(tmp, 'w+');
    try {
      await fh.writeFile(Buffer.concat([header, body]));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.a.dir, CURRENT_NAME));
    await fsyncDir(this.a.dir);
    this.fh = await open(join(this.a.dir, CURRENT_NAME), 'r+');
    this.generation = 0;
    this.fileCreatedUs = createdUs;
    const entry: FileEntry = {
      seq, name: CURRENT_NAME, location: 'local', firstTs: null, lastTs: null,
      committedBytes: HEADER_BYTES, sealed: false, damaged: false, table: undefined,
    };
    this.a.files.push(entry);
    this.entry = entry;
    let at = HEADER_BYTES;
    const done: Written[] = start.map((f) => {
      const w = { row: { offset: at, frameBytes: f.bytes.length, ...f.meta }, defs: f.defs };
      at += f.bytes.length;
      return w;
    });
    this.writtenPos = this.committedPos = committed;
    this.bytesSinceImage = 0;
    this.publish(done, committed);
  }

  // ---------------------------------------------------------------- timers and failure

  private timedFlush(): void {
    if (this.failed || this.closing) return;
    if (this.blocks.batches === 0 && this.writtenPos === this.committedPos && this.queue.length === 0) return;
    this.flush().catch(() => undefined); // failures are reported through fail()
  }

  private scheduleRotation(): void {
    clearTimeout(this.rotateTimer);
    const every = this.a.options.rotateIntervalMs;
    if (every <= 0 || this.closing) return;
    const dueMs = Math.max(0, (this.fileCreatedUs / 1000 + every) - this.a.clockUs() / 1000);
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
    for (const w of this.drainWaiters.splice(0)) w();
    this.a.emit('writer-error', e);
  }

  get error(): TapedeckError | undefined {
    return this.failed;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
