/**
 * The archive's files, sorted by seq, and the one place that adds or changes them.
 *
 * Reconciliation appends what it finds at open, the writer appends each new `current` and
 * seals it under its rotated name, cold storage inserts files known only from the list
 * hook (anywhere in seq order: a listed file may be older than every local one), moves
 * files between local and remote and indexes fetched ones. Everyone else reads.
 *
 * Readers navigate by seq (`after`, `before`, `bySeq`), never by array index: an insert
 * between two awaits shifts every index past it, not the seqs. `all()` is a snapshot of
 * the membership (a change after it goes to a copy), so iterating it is safe across awaits.
 * Entries are live: the object a reader holds shows later changes (a fetch that makes it
 * local, a commit that extends it), but only this class writes to it.
 */
import { TapedeckError } from '../protocol/errors.js';
import type { BlockRow, FileLocation } from './catalog.js';
import { BlockType } from './codec/frame.js';

export interface FileEntry {
  readonly seq: number;
  readonly name: string;
  readonly location: FileLocation;
  /** First and last batch timestamps (delta blocks only); null while the file holds none. */
  readonly firstTs: number | null;
  readonly lastTs: number | null;
  readonly committedBytes: number;
  readonly sealed: boolean;
  /** The file failed checks at open; blocks past the first bad one are not indexed. */
  readonly damaged: boolean;
  /** Lazily loaded block table (catalog rows plus blocks committed since open). */
  readonly table: BlockTable | undefined;
  /**
   * How many times the file was replaced under the same seq and name (a compaction by the
   * running server, storage/live-compact.ts): 0 for the file as recorded. Caches and handles
   * key by it, and a reader holding a place from an older generation maps it (`replaced`).
   */
  readonly gen: number;
  /** How places of generation gen - 1 map to this one (set by replace). */
  readonly replaced: PlaceMap | undefined;
}

/**
 * Where the places of a file's previous generation lie in the new one: old delta block di
 * starts at batch `k[di]` of new delta block `di[di]` (a compaction joins blocks, never
 * splits one, so a batch keeps its order and an old place (di, k) is new place
 * (di[di], k[di] + k)). An old place past the last block is the new end.
 */
export interface PlaceMap {
  readonly fromGen: number;
  readonly di: Uint32Array;
  readonly k: Uint32Array;
}

/** Maps place (di, k) of generation map.fromGen to the file's current generation. */
export function mapPlace(map: PlaceMap, newDeltas: number, di: number, k: number): { di: number; k: number } {
  if (di >= map.di.length) return { di: newDeltas, k: 0 };
  return { di: map.di[di] as number, k: (map.k[di] as number) + k };
}

/** What a new entry starts with (its block table is loaded on first use). */
export type NewFileEntry = Omit<FileEntry, 'table' | 'gen' | 'replaced'>;

/** What indexing a fetched file found. */
export type IndexedFile = Pick<FileEntry, 'firstTs' | 'lastTs' | 'committedBytes' | 'damaged'>;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A remote file known only by name (from the list hook) has committedBytes 0 and no block
 * table: it must be fetched and indexed (Archive.prepare) before a cursor can enter it.
 */
export function isIndexed(entry: FileEntry): boolean {
  return entry.committedBytes > 0;
}

/**
 * A file's blocks in file order, held as columns of typed arrays (about 40 bytes a block,
 * against ~130 for an object per row: a 10 GB archive has ~80 000 blocks, and seeks load
 * every file's table). Read rows by index with the accessors; row(i) builds one BlockRow.
 */
export class BlockTable {
  private n = 0;
  private offsets: Float64Array;
  private frameBytesOf: Uint32Array;
  private types: Uint8Array;
  private firstTsOf: Float64Array;
  private lastTsOf: Float64Array;
  private batchesOf: Uint32Array;
  private updatesOf: Uint32Array;
  /** Indices of DELTA blocks, in file order. */
  readonly deltas: number[] = [];
  private rowObjects: BlockRow[] | undefined;

  /** `capacity`: blocks expected (the table grows past it by doubling). */
  constructor(capacity = 16) {
    const c = Math.max(1, capacity);
    this.offsets = new Float64Array(c);
    this.frameBytesOf = new Uint32Array(c);
    this.types = new Uint8Array(c);
    this.firstTsOf = new Float64Array(c);
    this.lastTsOf = new Float64Array(c);
    this.batchesOf = new Uint32Array(c);
    this.updatesOf = new Uint32Array(c);
  }

  /** Blocks in the table. */
  get length(): number {
    return this.n;
  }

  push(row: BlockRow): void {
    if (this.n === this.offsets.length) this.grow(this.n * 2);
    const i = this.n++;
    this.offsets[i] = row.offset;
    this.frameBytesOf[i] = row.frameBytes;
    this.types[i] = row.type;
    this.firstTsOf[i] = row.firstTs;
    this.lastTsOf[i] = row.lastTs;
    this.batchesOf[i] = row.batches;
    this.updatesOf[i] = row.updates;
    if (row.type === BlockType.DELTA) this.deltas.push(i);
    this.rowObjects?.push(this.row(i));
  }

  /** Block i as a new BlockRow object. */
  row(i: number): BlockRow {
    return {
      offset: this.offsets[i] as number,
      frameBytes: this.frameBytesOf[i] as number,
      type: this.types[i] as BlockType,
      firstTs: this.firstTsOf[i] as number,
      lastTs: this.lastTsOf[i] as number,
      batches: this.batchesOf[i] as number,
      updates: this.updatesOf[i] as number,
    };
  }

  /** Delta block di (the di-th DELTA of the file) as a new BlockRow object. */
  delta(di: number): BlockRow {
    return this.row(this.deltas[di] as number);
  }

  offset(i: number): number {
    return this.offsets[i] as number;
  }

  frameBytes(i: number): number {
    return this.frameBytesOf[i] as number;
  }

  type(i: number): BlockType {
    return this.types[i] as BlockType;
  }

  firstTs(i: number): number {
    return this.firstTsOf[i] as number;
  }

  lastTs(i: number): number {
    return this.lastTsOf[i] as number;
  }

  batches(i: number): number {
    return this.batchesOf[i] as number;
  }

  updates(i: number): number {
    return this.updatesOf[i] as number;
  }

  /**
   * Every block as BlockRow objects, built on first use and then kept up to date: for
   * tests and rare whole-table readers. It costs the memory the columns save; readers on
   * the seek and replay paths use the accessors.
   */
  get rows(): readonly BlockRow[] {
    if (!this.rowObjects) {
      const rows: BlockRow[] = new Array<BlockRow>(this.n);
      for (let i = 0; i < this.n; i++) rows[i] = this.row(i);
      this.rowObjects = rows;
    }
    return this.rowObjects;
  }

  private grow(capacity: number): void {
    const f64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const u32 = (a: Uint32Array): Uint32Array => {
      const b = new Uint32Array(capacity);
      b.set(a);
      return b;
    };
    this.offsets = f64(this.offsets);
    this.firstTsOf = f64(this.firstTsOf);
    this.lastTsOf = f64(this.lastTsOf);
    this.frameBytesOf = u32(this.frameBytesOf);
    this.batchesOf = u32(this.batchesOf);
    this.updatesOf = u32(this.updatesOf);
    const types = new Uint8Array(capacity);
    types.set(this.types);
    this.types = types;
  }
}

export class FileList {
  /** Sorted by seq. */
  private entries: Array<Mutable<FileEntry>> = [];
  /** `entries` was handed out by all(): the next membership change copies it first. */
  private shared = false;
  /** Files replaced so far (replace): readers skip generation checks while it is 0. */
  replacements = 0;

  /** The files now, sorted by seq: a snapshot that later inserts do not change. */
  all(): readonly FileEntry[] {
    this.shared = true;
    return this.entries;
  }

  get length(): number {
    return this.entries.length;
  }

  first(): FileEntry | undefined {
    return this.entries[0];
  }

  last(): FileEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  bySeq(seq: number): FileEntry | undefined {
    const e = this.entries[this.indexAfter(seq) - 1];
    return e?.seq === seq ? e : undefined;
  }

  /** The file with the smallest seq greater than `seq`. */
  after(seq: number): FileEntry | undefined {
    return this.entries[this.indexAfter(seq)];
  }

  /** The file with the greatest seq less than `seq`. */
  before(seq: number): FileEntry | undefined {
    return this.entries[this.indexAfter(seq - 1) - 1];
  }

  // ---------------------------------------------------------------- membership

  /** Adds a file after every known one (open-time reconciliation, a new `current`). */
  append(entry: NewFileEntry): FileEntry {
    const last = this.last();
    if (last && entry.seq <= last.seq) throw new TapedeckError('TPD_INTERNAL', `file seq ${entry.seq} appended after seq ${last.seq}`);
    const e: Mutable<FileEntry> = { ...entry, table: undefined, gen: 0, replaced: undefined };
    this.unshared().push(e);
    return e;
  }

  /** Adds a remote file at its place in seq order (the list hook may name files older than every local one). */
  insertRemote(entry: Omit<NewFileEntry, 'location'>): FileEntry {
    const i = this.indexAfter(entry.seq);
    if (this.entries[i - 1]?.seq === entry.seq) throw new TapedeckError('TPD_INTERNAL', `file seq ${entry.seq} is already in the archive`);
    const e: Mutable<FileEntry> = { ...entry, location: 'remote', table: undefined, gen: 0, replaced: undefined };
    this.unshared().splice(i, 0, e);
    return e;
  }

  // ---------------------------------------------------------------- changes

  markLocation(seq: number, location: FileLocation): void {
    this.entry(seq).location = location;
  }

  /** `current` is sealed under its rotated name (a rotation, or a damaged `current` at start). */
  sealAs(seq: number, name: string): void {
    const e = this.entry(seq);
    e.name = name;
    e.sealed = true;
  }

  markDamaged(seq: number): void {
    this.entry(seq).damaged = true;
  }

  /** A commit: the file now holds `committedBytes`, and delta blocks up to `lastTs` when it holds any. */
  extend(seq: number, committedBytes: number, delta: { firstTs: number; lastTs: number } | undefined): void {
    const e = this.entry(seq);
    e.committedBytes = committedBytes;
    if (!delta) return;
    e.firstTs ??= delta.firstTs;
    e.lastTs = delta.lastTs;
  }

  /** A fetched file that was known by name only, now indexed: its range is real, its old (empty) table goes. */
  setIndexed(seq: number, found: IndexedFile): void {
    Object.assign(this.entry(seq), found, { table: undefined });
  }

  setTable(seq: number, table: BlockTable): void {
    this.entry(seq).table = table;
  }

  /**
   * A sealed local file replaced on disk by another holding the same batches (a compaction):
   * its new length and block table, the next generation, and how old places map to new ones.
   * The entry object stays the one readers hold (storage/live-compact.ts swaps it only while
   * no read is in flight).
   */
  replace(seq: number, committedBytes: number, table: BlockTable, map: Omit<PlaceMap, 'fromGen'>): void {
    const e = this.entry(seq);
    e.replaced = { fromGen: e.gen, di: map.di, k: map.k };
    this.replacements++;
    e.gen++;
    e.committedBytes = committedBytes;
    e.table = table;
  }

  // ---------------------------------------------------------------- internals

  /** The array to change in place: a copy when the current one is someone's snapshot (open appends every file: no copy each). */
  private unshared(): Array<Mutable<FileEntry>> {
    if (this.shared) {
      this.entries = [...this.entries];
      this.shared = false;
    }
    return this.entries;
  }

  private entry(seq: number): Mutable<FileEntry> {
    const e = this.entries[this.indexAfter(seq) - 1];
    if (e?.seq !== seq) throw new TapedeckError('TPD_INTERNAL', `no file with seq ${seq} in the archive`);
    return e;
  }

  /** Index of the first entry whose seq is greater than `seq`. */
  private indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.entries[mid] as FileEntry).seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
