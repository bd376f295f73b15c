/**
 * The catalog: a better-sqlite3 database that indexes an archive's files, blocks and
 * path dictionary. It is derived from the segment files and can always be rebuilt from
 * them (`tapedeck reindex`); it never holds anything the files do not, except the put
 * status of rotated files (table `puts`), which a reindex forgets and the list hook
 * re-derives (docs/archive-hooks.md).
 *
 * Calls are synchronous. They are kept small (one transaction per commit, a few rows) so
 * they do not stall the event loop; bulk rebuilds run at open, before serving starts.
 */
import Database from 'better-sqlite3';
import type { BlockType } from './codec/frame.js';

export const CATALOG_FILE = 'catalog.sqlite';
const SCHEMA_VERSION = '1';

export type FileLocation = 'local' | 'remote' | 'missing';

export interface FileRow {
  seq: number;
  name: string;
  location: FileLocation;
  firstTs: number | null;
  lastTs: number | null;
  indexedBytes: number;
  sealed: boolean;
}

export interface BlockRow {
  offset: number;
  frameBytes: number;
  type: BlockType;
  firstTs: number;
  lastTs: number;
  batches: number;
  updates: number;
}

/** Whether the put hook has shipped a rotated file (not derivable from the files: see docs/archive-hooks.md). */
export type PutStatus = 'pending' | 'done' | 'failed';

export interface PutRow {
  name: string;
  status: PutStatus;
  attempts: number;
  error: string | null;
  updatedMs: number;
}

export interface PathRow {
  id: number;
  path: string;
  firstTs: number;
}

export class Catalog {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string, readonly = false) {
    this.db = new Database(file, readonly ? { readonly: true, fileMustExist: true } : {});
    if (!readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.migrate();
    }
    this.stmts = {
      getMeta: this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: readonly ? undefined : this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      files: this.db.prepare('SELECT seq, name, location, first_ts AS firstTs, last_ts AS lastTs, indexed_bytes AS indexedBytes, sealed FROM files ORDER BY seq'),
      upsertFile: readonly ? undefined : this.db.prepare(`INSERT INTO files(seq, name, location, first_ts, last_ts, indexed_bytes, sealed)
        VALUES (@seq, @name, @location, @firstTs, @lastTs, @indexedBytes, @sealed)
        ON CONFLICT(seq) DO UPDATE SET name = excluded.name, location = excluded.location, first_ts = excluded.first_ts,
          last_ts = excluded.last_ts, indexed_bytes = excluded.indexed_bytes, sealed = excluded.sealed`),
      blocks: this.db.prepare('SELECT offset, frame_bytes AS frameBytes, type, first_ts AS firstTs, last_ts AS lastTs, batches, updates FROM blocks WHERE seq = ? ORDER BY offset'),
      insertBlock: readonly ? undefined : this.db.prepare(`INSERT OR REPLACE INTO blocks(seq, offset, frame_bytes, type, first_ts, last_ts, batches, updates)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      deleteBlocksFrom: readonly ? undefined : this.db.prepare('DELETE FROM blocks WHERE seq = ? AND offset >= ?'),
      deleteFile: readonly ? undefined : this.db.prepare('DELETE FROM files WHERE seq = ?'),
      paths: this.db.prepare('SELECT id, path, first_ts AS firstTs FROM paths ORDER BY id'),
      insertPath: readonly ? undefined : this.db.prepare('INSERT OR IGNORE INTO paths(id, path, first_ts) VALUES (?, ?, ?)'),
      puts: readonly ? undefined : this.db.prepare('SELECT name, status, attempts, error, updated_ms AS updatedMs FROM puts ORDER BY name'),
      upsertPut: readonly ? undefined : this.db.prepare(`INSERT INTO puts(name, status, attempts, error, updated_ms) VALUES (@name, @status, @attempts, @error, @updatedMs)
        ON CONFLICT(name) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, error = excluded.error, updated_ms = excluded.updated_ms`),
    };
  }

  private migrate(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS files(
        seq INTEGER PRIMARY KEY, name TEXT NOT NULL, location TEXT NOT NULL,
        first_ts INTEGER, last_ts INTEGER, indexed_bytes INTEGER NOT NULL, sealed INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS blocks(
        seq INTEGER NOT NULL, offset INTEGER NOT NULL, frame_bytes INTEGER NOT NULL, type INTEGER NOT NULL,
        first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, batches INTEGER NOT NULL, updates INTEGER NOT NULL,
        PRIMARY KEY(seq, offset)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS paths(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, first_ts INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS puts(
        name TEXT PRIMARY KEY, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT, updated_ms INTEGER NOT NULL);
    `);
    const v = this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get('schema_version');
    if (!v) this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('schema_version', SCHEMA_VERSION);
  }

  getMeta(key: string): string | undefined {
    return this.stmts.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta?.run(key, value);
  }

  files(): FileRow[] {
    return (this.stmts.files.all() as Array<Omit<FileRow, 'sealed'> & { sealed: number }>).map((r) => ({ ...r, sealed: r.sealed === 1 }));
  }

  blocks(seq: number): BlockRow[] {
    return this.stmts.blocks.all(seq) as BlockRow[];
  }

  paths(): PathRow[] {
    return this.stmts.paths.all() as PathRow[];
  }

  /** Put status of rotated files, by name (empty for a read-only catalog opened before puts existed). */
  puts(): PutRow[] {
    return (this.stmts.puts?.all() ?? []) as PutRow[];
  }

  setPut(row: PutRow): void {
    this.stmts.upsertPut?.run(row);
  }

  /** Records a file's new state with its newly indexed blocks and paths in one transaction. */
  recordFile(file: FileRow, blocks: readonly BlockRow[], paths: readonly PathRow[], truncateFrom?: number): void {
    const run = this.db.transaction(() => {
      if (truncateFrom !== undefined) this.stmts.deleteBlocksFrom?.run(file.seq, truncateFrom);
      for (const b of blocks) this.stmts.insertBlock?.run(file.seq, b.offset, b.frameBytes, b.type, b.firstTs, b.lastTs, b.batches, b.updates);
      for (const p of paths) this.stmts.insertPath?.run(p.id, p.path, p.firstTs);
      this.stmts.upsertFile?.run({ ...file, sealed: file.sealed ? 1 : 0 });
    });
    run();
  }

  /** Removes a file and its blocks (a file that left the archive, e.g. a `current` moved aside). */
  forgetFile(seq: number): void {
    this.db.transaction(() => {
      this.stmts.deleteBlocksFrom?.run(seq, 0);
      this.stmts.deleteFile?.run(seq);
    })();
  }

  close(): void {
    this.db.close();
  }
}
