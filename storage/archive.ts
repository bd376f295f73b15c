/**
 * An archive directory: `current`, rotated files named by their RFC 3339 end time, and
 * the catalog. `Archive.open` reconciles the catalog with the files (indexing only what
 * the catalog has not seen: the tail of `current` after a crash, or every file when the
 * catalog is missing) and loads the path dictionary (both in reconcile.ts), then, unless
 * read-only, starts the one writer. Readers (cursors) only ever see committed blocks.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { makeDirectory } from './archive-dir.js';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { parseTs } from '../protocol/time.js';
import { CATALOG_ERROR_CODE, CATALOG_FILE, openCheckedCatalog, type Catalog, type BlockRow } from './catalog.js';
import { BlockType } from './codec/frame.js';
import type { DecodedBatches } from './codec/payload.js';
import { ArchiveReads } from './archive-read.js';
import { ROTATED_NAME, rotatedName } from './segment-file.js';
import { STORAGE_DEFAULTS, STORAGE_LIMITS, type DiskFullLimits, type StorageOptions } from './limits.js';
import { acquireLock, releaseLock } from './lock.js';
import { diskFullCode } from './disk-full.js';
import { ArchiveWriter } from './writer.js';
import { Cursor, type CursorOptions } from './cursor.js';
import { reconcileArchive } from './reconcile.js';
import { loadNativeCodec } from './native-codec-file.js';
import { BlockTable, FileList, type FileEntry } from './file-list.js';
import { ReadGate } from './read-gate.js';

/**
 * Told when a read has to wait for a remote file to be fetched, and how that ended. Its
 * `signal`, when set (a read for an asker that may leave: a cursor's onFetchWait made by
 * storage/read-signal.ts readsUntil), stops the read between two blocks of a state's walk
 * back or of a cursor's reads, and its wait for a fetch (the fetch goes on for other
 * readers): the read then throws the signal's reason.
 */
export type FetchWait = ((event: { name: string; phase: 'start' | 'done' | 'failed'; error?: unknown }) => void) & { readonly signal?: AbortSignal };

/** Cold storage (storage/cold.ts), installed when a get hook is configured. */
export interface RemoteStore {
  /** Fetches a remote file back and makes it local and indexed; one fetch per file however many ask. */
  fetch(entry: FileEntry): Promise<void>;
}

export interface ArchiveProblem {
  file: string;
  offset?: number;
  code: string;
  message: string;
}

/**
 * What opening found damaged and what it did, for metrics: commit slots that failed their
 * CRC32C, intact blocks recovered past the surviving slot, bytes cut after the last intact
 * block, and catalogs rebuilt because SQLite or their row checksums found them damaged.
 */
export interface RecoveryCounts {
  damagedSlots: number;
  recoveredBlocks: number;
  cutBytes: number;
  catalogRebuilds: number;
}

export interface Logger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silentLogger: Logger = { warn() {}, info() {}, error() {} };

export interface OpenOptions extends Partial<StorageOptions> {
  /** Open without a writer and without touching the directory (inspect, verify, replay-only). */
  readonly?: boolean;
  /** Microseconds since the epoch; injectable for tests. */
  clockUs?: () => number;
  logger?: Logger;
  /** Full-disk limits of the writer (tests and tuning); STORAGE_LIMITS' by default. */
  diskFull?: Partial<DiskFullLimits>;
  /**
   * Runs once the writer's lock is held, before the catalog is opened (`tapedeck reindex`
   * moves the catalog aside there: never under a server that writes it).
   */
  locked?: (dir: string) => Promise<void>;
}

/**
 * Rethrows `err`, as TPD_DISK_FULL when it is a file system's full disk (ENOSPC, EDQUOT)
 * that no step of an open turned into a TapedeckError: an open that runs out of space (its
 * lock, the repair of a slot, a new current) says so with the code a full disk has.
 */
function throwDiskFull(err: unknown): never {
  const code = isTapedeckError(err) ? undefined : diskFullCode(err);
  if (code === undefined) throw err;
  throw new TapedeckError('TPD_DISK_FULL', `the archive's disk is full (${code}): ${(err as Error).message}`, { errno: code }, { cause: err });
}

export function wallClockUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export interface CommitEvent {
  seq: number;
  lastTs: number;
}

/** Work a sealed file waits for before it may leave the disk or be shipped (storage/live-compact.ts). */
export interface FileSettling {
  /** Resolves once file `seq` is settled (compacted, or left as recorded). */
  settled(seq: number): Promise<void>;
  /** File `seq` is queued or being compacted. */
  pending(seq: number): boolean;
}

export class Archive extends EventEmitter {
  readonly dir: string;
  readonly readonly: boolean;
  readonly options: StorageOptions;
  readonly logger: Logger;
  readonly clockUs: () => number;
  archiveId = '';
  /** The files, sorted by seq: reconciliation, the writer and cold storage change them through it only. */
  readonly fileList = new FileList();
  /** Read operations that hold places across awaits run through it; a file's replacement waits for none in flight (storage/read-gate.ts). */
  readonly gate = new ReadGate();
  readonly problems: ArchiveProblem[] = [];
  readonly recovery: RecoveryCounts = { damagedSlots: 0, recoveredBlocks: 0, cutBytes: 0, catalogRebuilds: 0 };
  /** Path dictionary: ids are dense, assigned in order of first appearance. */
  readonly paths: string[] = [];
  readonly pathIds = new Map<string, number>();
  /** First timestamp of each path id; nondecreasing with the id. */
  readonly pathFirstTs: number[] = [];
  /** Timestamp of the last committed batch (0 for an empty archive). */
  lastTs = 0;
  /** Rotated-file names on disk that are not this archive's files (another archive's, unreadable headers): never a rotation's target. */
  readonly strayNames = new Set<string>();
  writer: ArchiveWriter | undefined;
  /** The running server's compaction of sealed files, when it runs one (puts and sidecar builds wait for it). */
  settling: FileSettling | undefined;
  catalog!: Catalog;
  /** Whether catalog rows are persisted (false for read-only opens). */
  catalogWritable = false;
  /** Block reads, the shared handles and the remote store (archive-read.ts). */
  private readonly reads: ArchiveReads;
  private readonly tails = new Map<number, BlockRow[]>();
  /** Files indexed again from their header at a read-only open: their catalog rows are stale. */
  private readonly staleRows = new Set<number>();
  /** Files whose catalog rows failed their check on first load (reported once each). */
  private readonly damagedRows = new Set<number>();
  private closed = false;

  private constructor(dir: string, opts: OpenOptions) {
    super();
    this.setMaxListeners(0);
    this.dir = dir;
    this.reads = new ArchiveReads(this);
    this.readonly = opts.readonly === true;
    this.logger = opts.logger ?? silentLogger;
    this.clockUs = opts.clockUs ?? wallClockUs;
    this.options = {
      imageFrequencyBytes: opts.imageFrequencyBytes ?? STORAGE_DEFAULTS.imageFrequencyBytes,
      flushFrequencyPages: opts.flushFrequencyPages ?? STORAGE_DEFAULTS.flushFrequencyPages,
      flushIntervalMs: opts.flushIntervalMs ?? STORAGE_DEFAULTS.flushIntervalMs,
      rotateIntervalMs: opts.rotateIntervalMs ?? STORAGE_DEFAULTS.rotateIntervalMs,
      rotateSizeBytes: opts.rotateSizeBytes ?? STORAGE_DEFAULTS.rotateSizeBytes,
    };
    for (const [k, v] of Object.entries(this.options)) {
      if (!Number.isFinite(v) || v < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `storage option ${k} must be a non-negative number, got ${String(v)}`);
    }
  }

  static async open(dir: string, opts: OpenOptions = {}): Promise<Archive> {
    const a = new Archive(dir, opts);
    // The payload encoder of all-number blocks and its CRC32C (once a process). A process that
    // only reads does not probe (a child process, about 50 ms; codec/crc.ts then answers with
    // @node-rs/crc32) unless it calls loadNativeCodec itself.
    if (!a.readonly) loadNativeCodec();
    if (a.readonly) {
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new TapedeckError('TPD_BAD_ARGUMENT', `archive directory ${dir} does not exist`);
    } else {
      await makeDirectory(dir).catch((err: unknown) => throwDiskFull(err));
      await acquireLock(dir).catch((err: unknown) => throwDiskFull(err));
    }
    try {
      await opts.locked?.(dir);
      await a.openCatalog();
      await reconcileArchive(a, { tails: a.tails, staleRows: a.staleRows });
      if (!a.readonly) {
        a.writer = await ArchiveWriter.start(a);
        if (opts.diskFull) a.writer.setDiskFullLimits(opts.diskFull);
      }
    } catch (err) {
      await a.close().catch(() => undefined);
      throwDiskFull(err);
    }
    return a;
  }

  private async openCatalog(): Promise<void> {
    const opened = await openCheckedCatalog(this.dir, this.readonly);
    this.catalog = opened.catalog;
    this.catalogWritable = opened.writable;
    if (opened.damage === undefined) return;
    this.recovery.catalogRebuilds++;
    const done = opened.aside === undefined ? 'the files were indexed into memory and the directory left as it was' : `moved aside to ${opened.aside} and rebuilt from the files`;
    this.problem({ file: CATALOG_FILE, code: CATALOG_ERROR_CODE, message: `catalog is damaged (${opened.damage}); ${done}` });
  }

  /** The files now, sorted by seq: a snapshot (later inserts make a new one); navigate by seq with fileList. */
  get files(): readonly FileEntry[] {
    return this.fileList.all();
  }

  /** Makes reads of remote files fetch them through `store` (cold storage with a get hook); without one they fail. */
  setRemote(store: RemoteStore): void {
    this.reads.remote = store;
  }

  /** Stops fetching through `store` (cold storage stopping); another store set since stays. */
  detachRemote(store: RemoteStore): void {
    if (this.reads.remote === store) this.reads.remote = undefined;
  }

  /** Adds a path to the dictionary; returns its id. Writer-only for new paths. */
  definePath(path: string, firstTs: number): number {
    const id = this.paths.length;
    this.paths.push(path);
    this.pathIds.set(path, id);
    this.pathFirstTs.push(firstTs);
    return id;
  }

  /** @internal Records a problem found after open (the writer's state rebuild). */
  problem(p: ArchiveProblem): void {
    this.problems.push(p);
    this.logger.warn({ ...p }, 'archive problem');
  }

  /**
   * Readies the archive for the first seeks after start: loads the block tables of the
   * newest local files (at most STORAGE_LIMITS.warmFilesMax; others load on first use) and
   * computes the state at the end once, which compiles the decoding and state code. Costs
   * a few tens of milliseconds on a 1 GB archive; the first seek after start otherwise pays
   * it (about 70 ms instead of 6).
   */
  async warm(): Promise<void> {
    const local = this.files.filter((f) => f.location === 'local');
    for (const f of local.slice(-STORAGE_LIMITS.warmFilesMax)) {
      try {
        this.table(f);
      } catch (err) {
        // Damaged rows are reported (problem) and fail each read of that file; warm the others.
        if (!isTapedeckError(err) || err.code !== CATALOG_ERROR_CODE) throw err;
      }
    }
    // Only from local data: warming must never fetch a file back from cold storage.
    if (this.lastTs === 0 || this.files.at(-1)?.location !== 'local') return;
    const c = this.cursor();
    await c.seek('end');
    await c.stateById();
    // And once inside a sealed file, where a seek scans back through delta blocks to resolve every path.
    const sealed = local.at(-2);
    if (sealed?.firstTs != null && sealed.lastTs != null) {
      await c.seek({ ts: Math.floor((sealed.firstTs + sealed.lastTs) / 2) });
      await c.stateById();
    }
  }

  /**
   * The block table of a file, loaded from the catalog on first use. Its rows are checked
   * then (Catalog.blocks): damaged rows are reported as a problem (CATALOG_ERROR_CODE), and
   * every read that needs this file fails with that code until the catalog is rebuilt
   * (`tapedeck reindex`): a damaged row is never used.
   */
  table(entry: FileEntry): BlockTable {
    if (entry.table) return entry.table;
    const rows = this.staleRows.has(entry.seq) ? [] : this.catalogBlocks(entry);
    const tails = this.tails.get(entry.seq) ?? [];
    const t = new BlockTable(rows.length + tails.length + 16);
    for (const r of rows) if (r.offset < entry.committedBytes) t.push(r);
    for (const r of tails) t.push(r);
    this.fileList.setTable(entry.seq, t);
    return t;
  }

  private catalogBlocks(entry: FileEntry): BlockRow[] {
    try {
      return this.catalog.blocks(entry.seq);
    } catch (err) {
      if (!isTapedeckError(err) || err.code !== CATALOG_ERROR_CODE) throw err;
      if (!this.damagedRows.has(entry.seq)) {
        this.damagedRows.add(entry.seq);
        this.problem({ file: CATALOG_FILE, code: CATALOG_ERROR_CODE, message: `catalog rows of ${entry.name} are damaged (${err.message}); its batches are not served until the catalog is rebuilt` });
      }
      throw new TapedeckError(CATALOG_ERROR_CODE, `${entry.name}: ${err.message}`, { file: entry.name }, { cause: err });
    }
  }

  // Block reads (storage/archive-read.ts): every frame is checked against its catalog row
  // and fails with what it finds; a remote file is fetched first and `wait` hears about it.

  /** Reads and decodes one block (shared cache, one read per block however many ask). */
  readBlock(entry: FileEntry, row: BlockRow, wait?: FetchWait): Promise<DecodedBatches> {
    return this.reads.readBlock(entry, row, wait);
  }

  /** Makes a remote file that was never indexed readable (fetches and indexes it); no-op otherwise. */
  prepare(entry: FileEntry, wait?: FetchWait): Promise<void> {
    return this.reads.prepare(entry, wait);
  }

  /** One block with only the updates of the kept paths (every batch listed, count 0 when none of its updates is kept). */
  readBlockSelected(entry: FileEntry, row: BlockRow, keep: (id: number) => boolean, wait?: FetchWait): Promise<DecodedBatches> {
    return this.reads.readBlockSelected(entry, row, keep, wait);
  }

  /** One block's payload, undecoded and checked as readBlock checks it (Cursor.nextColumns); nothing is cached. */
  readPayload(entry: FileEntry, row: BlockRow, wait?: FetchWait): Promise<Uint8Array> {
    return this.reads.readPayload(entry, row, wait);
  }

  /** Bytes [offset, offset + length) of a local file, fewer where it ends, through the shared handles. */
  readBytes(entry: FileEntry, offset: number, length: number): Promise<Uint8Array> {
    return this.reads.readBytes(entry, offset, length);
  }

  /** readBytes into the caller's buffer (at least `length` bytes): how many bytes there were. */
  readBytesInto(entry: FileEntry, offset: number, length: number, buf: Uint8Array): Promise<number> {
    return this.reads.readBytesInto(entry, offset, length, buf);
  }

  /** Runs `fn` with the open descriptor of a local file, kept open until fn's promise settles (a reader of many small spans: series-index/span-reader.ts). */
  withReadFd<T>(entry: FileEntry, fn: (fd: number) => Promise<T>): Promise<T> {
    return this.reads.handles.with(entry, (fh) => fn(fh.fd));
  }

  /**
   * The payload of a block from its frame's bytes (as read by readBytes), checked as
   * readPayload. It may be a view of a buffer reused by the next payloadOf: decode it before
   * anything else can run and keep no view of it (archive-read.ts).
   */
  payloadOf(entry: FileEntry, row: BlockRow, frame: Uint8Array): Uint8Array {
    return this.reads.payloadOf(entry, row, frame);
  }

  /** Closes a file's handle so that the file can be removed (eviction); false while a read uses it. */
  releaseFile(seq: number): boolean {
    return this.reads.handles.release(seq);
  }

  /**
   * File `seq` was replaced on disk by a file of the same batches (a compaction, called while
   * no read operation is in flight: storage/read-gate.ts): its new length and block table,
   * how old places map to new ones; its handle (the old inode) and decoded blocks let go.
   */
  replaceFile(seq: number, committedBytes: number, rows: readonly BlockRow[], map: { di: Uint32Array; k: Uint32Array }): void {
    const t = new BlockTable(rows.length);
    for (const r of rows) t.push(r);
    this.fileList.replace(seq, committedBytes, t, map);
    this.reads.handles.retire(seq);
    this.reads.dropFile(seq);
  }

  cursor(opts: CursorOptions = {}): Cursor {
    return new Cursor(this, opts);
  }

  /** Called by the writer after a two-phase commit: makes new blocks visible to readers. */
  publishCommit(entry: FileEntry, blocks: readonly BlockRow[], committedBytes: number): void {
    const t = this.table(entry);
    let delta: { firstTs: number; lastTs: number } | undefined;
    for (const b of blocks) {
      t.push(b);
      if (b.type !== BlockType.DELTA) continue;
      delta = { firstTs: delta?.firstTs ?? b.firstTs, lastTs: b.lastTs };
      this.lastTs = b.lastTs;
    }
    this.fileList.extend(entry.seq, committedBytes, delta);
    this.emit('commit', { seq: entry.seq, lastTs: this.lastTs } satisfies CommitEvent);
  }

  /** Sum of batches and updates over all committed delta blocks (reads block tables). */
  totals(): { batches: number; updates: number; blocks: number; bytes: number } {
    let batches = 0;
    let updates = 0;
    let blocks = 0;
    let bytes = 0;
    for (const f of this.files) {
      if (f.location !== 'local') continue;
      const t = this.table(f);
      blocks += t.length;
      bytes += f.committedBytes;
      for (const i of t.deltas) {
        batches += t.batches(i);
        updates += t.updates(i);
      }
    }
    return { batches, updates, blocks, bytes };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    let error: unknown;
    try {
      await this.writer?.close();
    } catch (err) {
      error = err;
    }
    this.closed = true;
    this.emit('close');
    await this.reads.handles.closeAll();
    try {
      this.catalog?.close();
    } catch {
      // already closed
    }
    if (!this.readonly) await releaseLock(this.dir);
    if (error) throw error;
  }

  /**
   * Name for a file being rotated: the time of its last batch (so backfilled data is
   * named by its own time, not by when it was written), strictly after every existing name.
   */
  nextRotatedName(endUs: number): string {
    let us = Math.max(endUs, 0);
    for (const f of this.files) if (ROTATED_NAME.test(f.name)) us = Math.max(us, parseTs(f.name) + 1);
    while (this.strayNames.has(rotatedName(us))) us++;
    return rotatedName(us);
  }
}
