/**
 * An archive directory: `current`, rotated files named by their RFC 3339 end time, and
 * the catalog. `Archive.open` reconciles the catalog with the files (indexing only what
 * the catalog has not seen: the tail of `current` after a crash, or every file when the
 * catalog is missing), loads the path dictionary, and, unless read-only, starts the one
 * writer. Readers (cursors) only ever see committed blocks.
 */
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, rename, stat, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { parseTs } from '../protocol/time.js';
import { Catalog, CATALOG_FILE, type BlockRow, type FileLocation, type PathRow } from './catalog.js';
import { BlockType } from './codec/frame.js';
import { decodeBatches, type DecodedBatches } from './codec/payload.js';
import { openFrame } from './codec/frame.js';
import { FORMAT_VERSION, HEADER_BYTES } from './codec/header.js';
import { BlockCache } from './block-cache.js';
import { CURRENT_NAME, ROTATED_NAME, readExactly, readFileHeader, rotatedName, scanBlocks } from './segment-file.js';
import { STORAGE_DEFAULTS, STORAGE_LIMITS, type StorageOptions } from './limits.js';
import { acquireLock, releaseLock } from './lock.js';
import { ArchiveWriter } from './writer.js';
import { Cursor, type CursorOptions } from './cursor.js';

export interface FileEntry {
  seq: number;
  name: string;
  location: FileLocation;
  /** First and last batch timestamps (delta blocks only); null while the file holds none. */
  firstTs: number | null;
  lastTs: number | null;
  committedBytes: number;
  sealed: boolean;
  /** The file failed checks at open; blocks past the first bad one are not indexed. */
  damaged: boolean;
  /** Lazily loaded block table (catalog rows plus blocks committed since open). */
  table: BlockTable | undefined;
}

/**
 * A remote file known only by name (from the list hook) has committedBytes 0 and no block
 * table: it must be fetched and indexed (Archive.prepare) before a cursor can enter it.
 */
export function isIndexed(entry: FileEntry): boolean {
  return entry.committedBytes > 0;
}

/** Told when a read has to wait for a remote file to be fetched, and how that ended. */
export type FetchWait = (event: { name: string; phase: 'start' | 'done' | 'failed'; error?: unknown }) => void;

/** Cold storage (storage/cold.ts), installed when a get hook is configured. */
export interface RemoteStore {
  /** Fetches a remote file back and makes it local and indexed; one fetch per file however many ask. */
  fetch(entry: FileEntry): Promise<void>;
}

export class BlockTable {
  readonly rows: BlockRow[] = [];
  /** Indices into rows of DELTA blocks, in file order. */
  readonly deltas: number[] = [];

  push(row: BlockRow): void {
    if (row.type === BlockType.DELTA) this.deltas.push(this.rows.length);
    this.rows.push(row);
  }
}

export interface ArchiveProblem {
  file: string;
  offset?: number;
  code: string;
  message: string;
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
}

export function wallClockUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export interface CommitEvent {
  seq: number;
  lastTs: number;
}

export class Archive extends EventEmitter {
  readonly dir: string;
  readonly readonly: boolean;
  readonly options: StorageOptions;
  readonly logger: Logger;
  readonly clockUs: () => number;
  archiveId = '';
  /** Files sorted by seq. */
  files: FileEntry[] = [];
  readonly problems: ArchiveProblem[] = [];
  /** Path dictionary: ids are dense, assigned in order of first appearance. */
  readonly paths: string[] = [];
  readonly pathIds = new Map<string, number>();
  /** First timestamp of each path id; nondecreasing with the id. */
  readonly pathFirstTs: number[] = [];
  /** Timestamp of the last committed batch (0 for an empty archive). */
  lastTs = 0;
  writer: ArchiveWriter | undefined;
  catalog!: Catalog;
  /** Whether catalog rows are persisted (false for read-only opens). */
  catalogWritable = false;
  /** Where remote files are fetched from; undefined: reading a remote file fails. */
  remote: RemoteStore | undefined;
  private readonly cache = new BlockCache(STORAGE_LIMITS.decodedCacheUpdatesMax);
  private readonly handles = new Map<number, { fh: Promise<FileHandle>; busy: number }>();
  private readonly tails = new Map<number, BlockRow[]>();
  /** Files indexed again from their header at a read-only open: their catalog rows are stale. */
  private readonly staleRows = new Set<number>();
  private closed = false;

  private constructor(dir: string, opts: OpenOptions) {
    super();
    this.setMaxListeners(0);
    this.dir = dir;
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
    if (a.readonly) {
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new TapedeckError('TPD_BAD_ARGUMENT', `archive directory ${dir} does not exist`);
    } else {
      await mkdir(dir, { recursive: true });
      await acquireLock(dir);
    }
    try {
      await a.openCatalog();
      await a.reconcile();
      if (!a.readonly) a.writer = await ArchiveWriter.start(a);
    } catch (err) {
      await a.close().catch(() => undefined);
      throw err;
    }
    return a;
  }

  private async openCatalog(): Promise<void> {
    const file = join(this.dir, CATALOG_FILE);
    const exists = await stat(file).then(() => true, () => false);
    try {
      if (this.readonly) {
        this.catalog = exists ? new Catalog(file, true) : new Catalog(':memory:');
        this.catalogWritable = !exists;
      } else {
        this.catalog = new Catalog(file);
        this.catalogWritable = true;
      }
    } catch (err) {
      // A catalog that SQLite cannot read is rebuilt from the files: it holds nothing else.
      this.problems.push({ file: CATALOG_FILE, code: 'TPD_CORRUPT_HEADER', message: `catalog unreadable, rebuilt from files: ${(err as Error).message}` });
      if (this.readonly) {
        this.catalog = new Catalog(':memory:');
      } else {
        await rename(file, `${file}.bad-${Date.now()}`).catch(() => undefined);
        this.catalog = new Catalog(file);
      }
      this.catalogWritable = true;
    }
  }

  /** Brings the catalog up to date with the files on disk. */
  private async reconcile(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n === CURRENT_NAME || ROTATED_NAME.test(n)).sort();
    const rows = new Map(this.catalog.files().map((r) => [r.seq, r]));
    let archiveId = this.catalog.getMeta('archive_id');
    const onDisk = new Map<number, { name: string; committed: number; size: number }>();
    /** Files whose header could not be read, by name (error code). */
    const unreadable = new Map<string, string>();
    const newer: Array<{ name: string; version: unknown }> = [];
    for (const name of names) {
      const path = join(this.dir, name);
      let fh: FileHandle | undefined;
      try {
        fh = await open(path, 'r');
        const h = await readFileHeader(fh);
        const size = (await fh.stat()).size;
        archiveId ??= h.archiveId;
        if (h.archiveId !== archiveId) {
          this.problem({ file: name, code: 'TPD_FOREIGN_FILE', message: `file belongs to archive ${h.archiveId}, not ${archiveId}; ignored` });
          continue;
        }
        const prev = onDisk.get(h.seq);
        if (prev) {
          this.problem({ file: name, code: 'TPD_CORRUPT_HEADER', message: `file repeats seq ${h.seq} of ${prev.name}; ignored` });
          continue;
        }
        let committed = h.commit.committedBytes;
        if (committed > size) {
          this.problem({ file: name, code: 'TPD_CORRUPT_BLOCK', message: `committed length ${committed} is past the end of the file (${size} bytes): file was truncated` });
          committed = size;
        }
        onDisk.set(h.seq, { name, committed, size });
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        this.problem({ file: name, code: err.code, message: err.message });
        unreadable.set(name, err.code);
        if (err.code === 'TPD_FORMAT_VERSION') newer.push({ name, version: err.details?.version });
      } finally {
        await fh?.close();
      }
    }
    if (newer.length > 0 && !this.readonly) {
      // A writer must never modify, truncate, seal or move aside a file it cannot read:
      // that file belongs to a newer Tapedeck. Fail before touching anything.
      const first = newer[0] as { name: string; version: unknown };
      const list = newer.map((n) => `${n.name} (version ${String(n.version)})`).join(', ');
      throw new TapedeckError(
        'TPD_FORMAT_VERSION',
        `${list} ${newer.length === 1 ? 'was' : 'were'} written by a newer format version than this Tapedeck supports (${FORMAT_VERSION}); ` +
          'the archive can only be opened read-only (or with a newer Tapedeck)',
        { file: first.name, version: first.version, files: newer.map((n) => n.name) },
      );
    }
    const currentCode = unreadable.get(CURRENT_NAME);
    let forgotCurrent = false;
    if (currentCode !== undefined && !this.readonly) {
      // Unreadable header on `current` (corrupt, not newer): keep the bytes for inspection, start afresh.
      const aside = `current.bad-${Date.now()}`;
      await rename(join(this.dir, CURRENT_NAME), join(this.dir, aside));
      this.problem({ file: CURRENT_NAME, code: currentCode, message: `moved aside to ${aside}` });
      // Its batches are no longer part of the archive: forget the catalog's rows for it, or
      // the file would stay in the archive as missing and a new `current` could not start.
      for (const [seq, row] of rows) {
        if (row.name !== CURRENT_NAME) continue;
        rows.delete(seq);
        if (this.catalogWritable) this.catalog.forgetFile(seq);
        forgotCurrent = true;
      }
    }
    this.archiveId = archiveId ?? randomBytes(8).toString('hex');
    if (this.catalogWritable) this.catalog.setMeta('archive_id', this.archiveId);

    const newPaths: PathRow[] = [];
    let catalogAhead = forgotCurrent;
    const seqs = [...new Set([...rows.keys(), ...onDisk.keys()])].sort((x, y) => x - y);
    for (const seq of seqs) {
      const row = rows.get(seq);
      const disk = onDisk.get(seq);
      if (!disk) {
        if (!row) continue;
        const entry: FileEntry = { ...row, location: row.location === 'local' ? 'missing' : row.location, committedBytes: row.indexedBytes, damaged: false, table: undefined };
        if (row.location === 'local') {
          const code = unreadable.get(row.name);
          const message = code === undefined ? 'file is in the catalog but not on disk' : `file is in the catalog but its header cannot be read (${code}); its batches are not served`;
          this.problem({ file: row.name, code: 'TPD_FILE_UNAVAILABLE', message });
        }
        if (this.catalogWritable && entry.location !== row.location) this.catalog.recordFile({ ...row, location: entry.location }, [], []);
        this.files.push(entry);
        continue;
      }
      // A row of a remote file never indexed (indexedBytes 0) holds estimated times only.
      const indexedRow = row && row.indexedBytes >= HEADER_BYTES ? row : undefined;
      let from = indexedRow?.indexedBytes ?? HEADER_BYTES;
      let truncateFrom: number | undefined;
      let firstTs = indexedRow?.firstTs ?? null;
      let lastTs = indexedRow?.lastTs ?? null;
      if (from > disk.committed || (row && row.name !== disk.name && from !== disk.committed)) {
        // The catalog claims more than the file commits (or lost track of a rename
        // mid-write): forget this file's rows and index it again.
        if (from > disk.committed) {
          catalogAhead = true;
          this.logger.warn({ file: disk.name, indexedBytes: from, committedBytes: disk.committed }, 'catalog claims more than the file commits: file indexed again');
        }
        from = HEADER_BYTES;
        truncateFrom = HEADER_BYTES;
        firstTs = lastTs = null;
        if (!this.catalogWritable) this.staleRows.add(seq);
      }
      const entry: FileEntry = {
        seq,
        name: disk.name,
        location: 'local',
        firstTs,
        lastTs,
        committedBytes: disk.committed,
        sealed: disk.name !== CURRENT_NAME,
        damaged: false,
        table: undefined,
      };
      let scanned: BlockRow[] = [];
      if (from < disk.committed) {
        const fh = await open(join(this.dir, disk.name), 'r');
        try {
          const res = await scanBlocks(fh, from, disk.committed);
          scanned = res.blocks;
          for (const p of res.problems) this.problem({ file: disk.name, offset: p.offset, code: p.code, message: p.message });
          if (res.problems.length > 0) entry.damaged = true;
          for (const d of res.paths) newPaths.push({ id: d.id, path: d.path, firstTs: d.firstTs });
          for (const b of scanned) {
            if (b.type !== BlockType.DELTA) continue;
            entry.firstTs ??= b.firstTs;
            entry.lastTs = b.lastTs;
          }
          from = res.endOffset;
        } finally {
          await fh.close();
        }
      }
      const fileRow = { seq, name: entry.name, location: entry.location, firstTs: entry.firstTs, lastTs: entry.lastTs, indexedBytes: from, sealed: entry.sealed };
      if (this.catalogWritable) {
        this.catalog.recordFile(fileRow, scanned, newPaths.splice(0), truncateFrom);
      } else if (scanned.length > 0) {
        this.tails.set(seq, scanned);
      }
      this.files.push(entry);
    }
    this.loadDictionary(newPaths);
    for (const f of this.files) if (f.lastTs !== null && f.lastTs > this.lastTs) this.lastTs = f.lastTs;
    if (catalogAhead) this.dropUncommittedPaths();
  }

  /**
   * After a catalog that was ahead of a file (the file was restored from an older copy, or
   * lost its last commits), the catalog's dictionary may hold paths that only the lost
   * data used. A path first used after the last committed batch is referenced by no block:
   * drop it (ids are assigned in time order, so these are the highest ids), or the writer
   * would use its id without defining it in the file.
   */
  private dropUncommittedPaths(): void {
    let keep = this.paths.length;
    while (keep > 0 && (this.pathFirstTs[keep - 1] as number) > this.lastTs) keep--;
    if (keep === this.paths.length) return;
    const dropped = this.paths.length - keep;
    for (const p of this.paths.splice(keep)) this.pathIds.delete(p);
    this.pathFirstTs.splice(keep);
    if (this.catalogWritable) this.catalog.db.prepare('DELETE FROM paths WHERE id >= ?').run(keep);
    this.logger.warn({ file: CATALOG_FILE, dropped, keep }, 'catalog dictionary was ahead of the files: forgot the paths no committed batch uses');
  }

  private loadDictionary(extra: PathRow[]): void {
    const all = [...this.catalog.paths(), ...extra].sort((a, b) => a.id - b.id);
    for (const p of all) {
      if (p.id < this.paths.length) {
        if (this.paths[p.id] !== p.path) this.problem({ file: CATALOG_FILE, code: 'TPD_CORRUPT_BLOCK', message: `path id ${p.id} defined as both ${this.paths[p.id]} and ${p.path}` });
        continue;
      }
      if (p.id !== this.paths.length) {
        this.problem({ file: CATALOG_FILE, code: 'TPD_CORRUPT_BLOCK', message: `path dictionary has a gap before id ${p.id}` });
        break;
      }
      this.definePath(p.path, p.firstTs);
    }
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
    for (const f of local.slice(-STORAGE_LIMITS.warmFilesMax)) this.table(f);
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

  /** The block table of a file, loaded from the catalog on first use. */
  table(entry: FileEntry): BlockTable {
    if (entry.table) return entry.table;
    const t = new BlockTable();
    if (!this.staleRows.has(entry.seq)) for (const r of this.catalog.blocks(entry.seq)) if (r.offset < entry.committedBytes) t.push(r);
    for (const r of this.tails.get(entry.seq) ?? []) t.push(r);
    entry.table = t;
    return t;
  }

  fileBySeq(seq: number): FileEntry | undefined {
    // Files are few and sorted; search from the end, where the action is.
    for (let i = this.files.length - 1; i >= 0; i--) {
      const f = this.files[i] as FileEntry;
      if (f.seq === seq) return f;
      if (f.seq < seq) return undefined;
    }
    return undefined;
  }

  fileIndex(seq: number): number {
    for (let i = this.files.length - 1; i >= 0; i--) if ((this.files[i] as FileEntry).seq === seq) return i;
    return -1;
  }

  /**
   * Reads and decodes one block (shared cache, one read per block however many ask). A
   * remote file is fetched first; `wait` hears about it.
   */
  readBlock(entry: FileEntry, row: BlockRow, wait?: FetchWait): Promise<DecodedBatches> {
    if (entry.location === 'remote') return this.fetchRemote(entry, wait).then(() => this.readLocalBlock(entry, row));
    return this.readLocalBlock(entry, row);
  }

  /** Makes a remote file that was never indexed readable (fetches and indexes it); no-op otherwise. */
  async prepare(entry: FileEntry, wait?: FetchWait): Promise<void> {
    if (!isIndexed(entry)) await this.fetchRemote(entry, wait);
  }

  private async fetchRemote(entry: FileEntry, wait: FetchWait | undefined): Promise<void> {
    if (entry.location !== 'remote' || !this.remote) {
      const why = entry.location === 'remote' ? 'remote and no get hook is configured' : entry.location;
      throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} is ${why}`, { file: entry.name });
    }
    wait?.({ name: entry.name, phase: 'start' });
    try {
      await this.remote.fetch(entry);
    } catch (err) {
      wait?.({ name: entry.name, phase: 'failed', error: err });
      throw err;
    }
    wait?.({ name: entry.name, phase: 'done' });
  }

  private readLocalBlock(entry: FileEntry, row: BlockRow): Promise<DecodedBatches> {
    return this.cache.get(`${entry.seq}:${row.offset}`, async () => {
      const frame = await this.withHandle(entry, (fh) => readExactly(fh, row.frameBytes, row.offset));
      const where = `${entry.name} block at ${row.offset}`;
      if (frame.length !== row.frameBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: file ends inside the block`, { file: entry.name, offset: row.offset });
      try {
        const { header, raw } = openFrame(frame, where);
        const d = decodeBatches(raw, header.firstTs);
        if (d.ts.length !== header.batches) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: batch count differs from its header`);
        for (const id of d.ids) if (id >= this.paths.length) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: unknown path id ${id}`);
        return d;
      } catch (err) {
        if (isTapedeckError(err) && err.details === undefined) {
          throw new TapedeckError(err.code, err.message, { file: entry.name, offset: row.offset }, { cause: err });
        }
        throw err;
      }
    });
  }

  private async withHandle<T>(entry: FileEntry, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    if (this.closed) throw new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive is closed');
    if (entry.location !== 'local') {
      throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} is ${entry.location}`, { file: entry.name });
    }
    let h = this.handles.get(entry.seq);
    if (!h) {
      const fhP = open(join(this.dir, entry.name), 'r');
      fhP.catch(() => this.handles.delete(entry.seq));
      h = { fh: fhP, busy: 0 };
      this.handles.set(entry.seq, h);
      this.evictHandles();
    }
    h.busy++;
    try {
      return await fn(await h.fh);
    } catch (err) {
      if (isTapedeckError(err)) throw err;
      // The system's message names the absolute path: keep it in `cause`, not in the message.
      throw new TapedeckError('TPD_IO', `reading ${entry.name}: ${(err as NodeJS.ErrnoException).code ?? 'I/O error'}`, { file: entry.name }, { cause: err });
    } finally {
      h.busy--;
    }
  }

  /** Closes a file's handle so that the file can be removed (eviction); false while a read uses it. */
  releaseFile(seq: number): boolean {
    const h = this.handles.get(seq);
    if (!h) return true;
    if (h.busy > 0) return false;
    this.handles.delete(seq);
    void h.fh.then((fh) => fh.close()).catch(() => undefined);
    return true;
  }

  private evictHandles(): void {
    if (this.handles.size <= STORAGE_LIMITS.openFilesMax) return;
    for (const [seq, h] of this.handles) {
      if (this.handles.size <= STORAGE_LIMITS.openFilesMax) break;
      if (h.busy > 0) continue;
      this.handles.delete(seq);
      void h.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  cursor(opts: CursorOptions = {}): Cursor {
    return new Cursor(this, opts);
  }

  /** Called by the writer after a two-phase commit: makes new blocks visible to readers. */
  publishCommit(entry: FileEntry, blocks: readonly BlockRow[]): void {
    const t = this.table(entry);
    for (const b of blocks) {
      t.push(b);
      if (b.type === BlockType.DELTA) {
        entry.firstTs ??= b.firstTs;
        entry.lastTs = b.lastTs;
        this.lastTs = b.lastTs;
      }
    }
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
      blocks += t.rows.length;
      bytes += f.committedBytes;
      for (const i of t.deltas) {
        const r = t.rows[i] as BlockRow;
        batches += r.batches;
        updates += r.updates;
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
    for (const h of this.handles.values()) await h.fh.then((fh) => fh.close()).catch(() => undefined);
    this.handles.clear();
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
    return rotatedName(us);
  }
}
