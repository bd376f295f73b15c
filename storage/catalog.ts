/**
 * The catalog: a better-sqlite3 database that indexes an archive's files, blocks and
 * path dictionary. It is derived from the segment files and can always be rebuilt from
 * them (`tapedeck reindex`); it never holds anything the files do not, except the put
 * status of rotated files (table `puts`), which a reindex forgets and the list hook
 * re-derives (docs/archive-hooks.md).
 *
 * Calls are synchronous. They are kept small (one transaction per commit, a few rows) so
 * they do not stall the event loop; bulk rebuilds run at open, before serving starts.
 *
 * This file holds the database's life: opening (and moving a damaged catalog aside),
 * the statements, checked reads, writes, the WAL's checkpoints and the audits. The rows'
 * format and checksums are in catalog-rows.ts, the dictionary's rows in catalog-paths.ts,
 * the tables and their upgrades in catalog-schema.ts.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { STORAGE_LIMITS } from './limits.js';
import { fsyncDir } from './open-file.js';
import {
  CATALOG_FILE, COLUMNS, LOCATIONS, PUT_STATUSES, TABLES, catalogError, checkedRows, damaged, isEnvironmentError, pastIndexedProblems, rowCrc, tileProblems, toBlockRow, toFileRow,
  type BlockRow, type FileRow, type PathRow, type PutRow, type PutStatus, type Raw, type Table,
} from './catalog-rows.js';
import { deletePathsFrom, insertPathRows, unpackPaths, type PathBytesCount } from './catalog-paths.js';
import { SCHEMA_VERSION, migrateCatalog } from './catalog-schema.js';

// What other modules import from here (the catalog's one public module).
export { CATALOG_ERROR_CODE, CATALOG_FILE, catalogError, rowCrc, type BlockRow, type FileLocation, type FileRow, type PathRow, type PutRow, type PutStatus } from './catalog-rows.js';
export { PATHS_PER_ROW_MAX } from './catalog-paths.js';

/**
 * WAL pages past which a commit checkpoints: each catalog transaction appends whole pages
 * to the WAL (about 4 pages for a commit of one block), so with SQLite's default of 1 000
 * pages a durable commit per request left a 4 MiB WAL beside a small archive. A checkpoint
 * copies the few distinct pages back; the WAL file is then truncated to WAL_BYTES_KEPT.
 */
const WAL_AUTOCHECKPOINT_PAGES = STORAGE_LIMITS.catalogWalCheckpointPages;
const WAL_BYTES_KEPT = STORAGE_LIMITS.catalogWalBytesKept;
/**
 * Once this many bytes of new paths were recorded (a bulk insert: the first commit of a
 * large dictionary, a rebuild, an upgrade), the WAL is checkpointed at once and truncated,
 * so that those pages are not kept twice until the next checkpoint. Counted in path bytes,
 * not in rows rewritten: a trickle of one new path a commit checkpoints rarely.
 */
const BULK_CHECKPOINT_BYTES = STORAGE_LIMITS.catalogBulkCheckpointBytes;

export class Catalog {
  readonly db: Database.Database;
  private readonly stmts;
  /** Bytes of new paths recorded since the last bulk checkpoint. */
  private readonly pathBytesWritten: PathBytesCount = { bytes: 0 };

  /** Throws a TapedeckError (CATALOG_ERROR_CODE) when SQLite cannot open or read the file. */
  constructor(file: string, readonly = false) {
    try {
      this.db = new Database(file, readonly ? { readonly: true, fileMustExist: true } : {});
    } catch (err) {
      throw catalogError(err, 'cannot be opened');
    }
    try {
      if (!readonly) {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
        this.db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
        this.db.pragma(`journal_size_limit = ${WAL_BYTES_KEPT}`);
        migrateCatalog(this.db, this.pathBytesWritten);
        this.checkpointAfterBulk();
      }
      this.stmts = this.prepare(readonly);
    } catch (err) {
      this.db.close();
      throw catalogError(err, 'cannot be opened');
    }
  }

  private prepare(readonly: boolean) {
    const select = (t: Table, rest: string) => this.db.prepare(`SELECT ${COLUMNS[t].join(', ')}, crc FROM ${t} ${rest}`).raw(true);
    const insert = (t: Table, verb: string, tail = '') =>
      readonly ? undefined : this.db.prepare(`${verb} INTO ${t}(${COLUMNS[t].join(', ')}, crc) VALUES (${COLUMNS[t].map(() => '?').join(', ')}, ?) ${tail}`);
    const upsertTail = (t: Table, key: string) => `ON CONFLICT(${key}) DO UPDATE SET ${[...COLUMNS[t].filter((c) => c !== key), 'crc'].map((c) => `${c} = excluded.${c}`).join(', ')}`;
    return {
      meta: select('meta', ''),
      setMeta: insert('meta', 'INSERT', upsertTail('meta', 'key')),
      files: select('files', 'ORDER BY seq'),
      upsertFile: insert('files', 'INSERT', upsertTail('files', 'seq')),
      blocks: select('blocks', 'WHERE seq = ? ORDER BY offset'),
      fileRow: select('files', 'WHERE seq = ?'),
      newestLocal: this.db.prepare("SELECT seq FROM files WHERE location = 'local' ORDER BY seq DESC LIMIT 1").pluck(true),
      allBlocks: select('blocks', 'ORDER BY seq, offset'),
      insertBlock: insert('blocks', 'INSERT OR REPLACE'),
      deleteBlocksFrom: readonly ? undefined : this.db.prepare('DELETE FROM blocks WHERE seq = ? AND offset >= ?'),
      deleteFile: readonly ? undefined : this.db.prepare('DELETE FROM files WHERE seq = ?'),
      paths: select('paths', 'ORDER BY first_id'),
      puts: select('puts', 'ORDER BY name'),
      upsertPut: insert('puts', 'INSERT', upsertTail('puts', 'name')),
    };
  }

  /** Runs a query, turning SQLite errors and rows that fail their checksum into TapedeckErrors. */
  private read<T>(doing: string, f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw catalogError(err, doing);
    }
  }

  getMeta(key: string): string | undefined {
    const row = this.read('read of meta', () => checkedRows('meta', this.stmts.meta.all()).find((r) => r[0] === key));
    return row === undefined ? undefined : String(row[1]);
  }

  setMeta(key: string, value: string): void {
    this.read('write of meta', () => this.stmts.setMeta?.run(key, value, rowCrc('meta', [key, value])));
  }

  files(): FileRow[] {
    return this.read('read of files', () => checkedRows('files', this.stmts.files.all())).map(toFileRow);
  }

  /**
   * A file's block rows, checked as they are read (the open checks only the newest file's,
   * see openCheckedCatalog): every row's checksum and the shape of the file's index (its
   * blocks tile its bytes from the header on, hold possible values, and lie within what its
   * file row says was indexed). Throws a TapedeckError (CATALOG_ERROR_CODE) on any damage.
   */
  blocks(seq: number): BlockRow[] {
    return this.read('read of blocks', () => {
      const rows = this.checkedBlocks(seq);
      const problem = rows.problems[0];
      if (problem !== undefined) throw damaged(problem);
      return rows.raw.map(toBlockRow);
    });
  }

  /** A file's block rows (checksums checked: throws on a bad one) and what is wrong with their shape. */
  private checkedBlocks(seq: number): { raw: Raw[]; problems: string[] } {
    // One read transaction: a writer in another process commits between two statements otherwise.
    const [raw, fileRow] = this.db.transaction(() => [checkedRows('blocks', this.stmts.blocks.all(seq)), checkedRows('files', this.stmts.fileRow.all(seq))[0]] as const)();
    const indexed = fileRow === undefined ? -1 : (fileRow[5] as number);
    return { raw, problems: [...tileProblems(raw), ...pastIndexedProblems(raw, () => indexed)] };
  }

  /** The dictionary, by id. Throws a TapedeckError (CATALOG_ERROR_CODE) on a damaged row. */
  paths(): PathRow[] {
    return this.read('read of paths', () => checkedRows('paths', this.stmts.paths.all()).flatMap(unpackPaths));
  }

  /** Put status of rotated files, by name. */
  puts(): PutRow[] {
    return this.read('read of puts', () => checkedRows('puts', this.stmts.puts.all())).map((r) => ({
      name: r[0] as string, status: r[1] as PutStatus, attempts: r[2] as number, error: r[3] as string | null, updatedMs: r[4] as number,
    }));
  }

  setPut(row: PutRow): void {
    const values = [row.name, row.status, row.attempts, row.error, row.updatedMs];
    this.read('write of puts', () => this.stmts.upsertPut?.run(...values, rowCrc('puts', values)));
  }

  /** Records a file's new state with its newly indexed blocks and paths in one transaction. */
  recordFile(file: FileRow, blocks: readonly BlockRow[], paths: readonly PathRow[], truncateFrom?: number): void {
    const run = this.db.transaction(() => {
      if (truncateFrom !== undefined) this.stmts.deleteBlocksFrom?.run(file.seq, truncateFrom);
      for (const b of blocks) {
        const values = [file.seq, b.offset, b.frameBytes, b.type, b.firstTs, b.lastTs, b.batches, b.updates];
        this.stmts.insertBlock?.run(...values, rowCrc('blocks', values));
      }
      insertPathRows(this.db, paths, this.pathBytesWritten);
      const values = [file.seq, file.name, file.location, file.firstTs, file.lastTs, file.indexedBytes, file.sealed ? 1 : 0];
      this.stmts.upsertFile?.run(...values, rowCrc('files', values));
    });
    this.read('write of a file', () => run());
    this.checkpointAfterBulk();
  }

  /** After a bulk write of paths rows: copy the WAL into the database and truncate it. */
  private checkpointAfterBulk(): void {
    if (this.pathBytesWritten.bytes < BULK_CHECKPOINT_BYTES) return;
    this.pathBytesWritten.bytes = 0;
    // A reader in another process holding an old snapshot keeps part of the WAL: the
    // checkpoint then does what it can without waiting for it (a TRUNCATE checkpoint would
    // call the busy handler, up to 5 s on the event loop), and later ones do the rest.
    this.read('checkpoint', () => {
      const timeoutMs = this.db.pragma('busy_timeout', { simple: true }) as number;
      this.db.pragma('busy_timeout = 0');
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        this.db.pragma(`busy_timeout = ${timeoutMs}`);
      }
    });
  }

  /** Removes a file and its blocks (a file that left the archive, e.g. a `current` moved aside). */
  forgetFile(seq: number): void {
    const run = this.db.transaction(() => {
      this.stmts.deleteBlocksFrom?.run(seq, 0);
      this.stmts.deleteFile?.run(seq);
    });
    this.read('removal of a file', () => run());
  }

  /** Forgets the paths from id `from` on (the dictionary was ahead of the files). */
  forgetPathsFrom(from: number): void {
    const run = this.db.transaction(() => deletePathsFrom(this.db, from));
    this.read('removal of paths', () => run());
  }

  /**
   * Everything wrong with the catalog, read whole: SQLite's own check of its pages
   * (`thorough`: integrity_check, which also matches indexes with tables; else
   * quick_check), every row's checksum, and the shape of the index (each file's blocks tile
   * its bytes from the header on, without gap or overlap; path ids are dense). Empty
   * when sound. Never throws.
   */
  audit(thorough = false): string[] {
    return this.auditWith(thorough, false, () => {
      const blocks = this.read('read of blocks', () => checkedRows('blocks', this.stmts.allBlocks.all()));
      const indexed = new Map(this.files().map((f) => [f.seq, f.indexedBytes]));
      return [...tileProblems(blocks), ...pastIndexedProblems(blocks, (seq) => indexed.get(seq) ?? -1)];
    });
  }

  /**
   * The check at open: as audit, but of the block rows only the newest local file's (the
   * one a writer appends to, and the first a reader seeks in). The other files' rows are
   * checked when their block table is first loaded (blocks()), so that opening does not
   * read every row of a large archive. Empty when sound. Throws only what the machine could
   * not do (isEnvironmentError: a full disk, an I/O error), which says nothing of the catalog.
   */
  openAudit(thorough: boolean): string[] {
    return this.auditWith(thorough, true, () => {
      const seq = this.read('read of files', () => this.stmts.newestLocal.get()) as number | undefined;
      return seq === undefined ? [] : this.read('read of blocks', () => this.checkedBlocks(seq).problems);
    });
  }

  /** SQLite's own check, then the small tables whole, then `blockProblems`. */
  private auditWith(thorough: boolean, throwEnvironment: boolean, blockProblems: () => string[]): string[] {
    try {
      const check = this.db.pragma(thorough ? 'integrity_check(20)' : 'quick_check(20)') as Array<Record<string, unknown>>;
      const bad = check.map((r) => String(Object.values(r)[0])).filter((m) => m !== 'ok');
      if (bad.length > 0) return bad.map((m) => `catalog fails SQLite's ${thorough ? 'integrity' : 'quick'}_check: ${m}`);
      const out: string[] = [];
      if (this.getMeta('schema_version') !== SCHEMA_VERSION) out.push(`catalog schema_version is not ${SCHEMA_VERSION}`);
      for (const f of this.files()) if (!LOCATIONS.has(f.location) || f.indexedBytes < 0) out.push(`catalog row of file ${f.seq} holds impossible values`);
      out.push(...blockProblems());
      this.paths().forEach((p, i) => {
        if (p.id !== i) out.push(`catalog path ids are not dense at ${i}`);
      });
      for (const p of this.puts()) if (!PUT_STATUSES.has(p.status)) out.push(`catalog put row ${p.name} has an unknown status`);
      return out.slice(0, 20);
    } catch (err) {
      const e = catalogError(err, 'check');
      if (throwEnvironment && isEnvironmentError(e)) throw e;
      return [e instanceof Error ? e.message : String(e)];
    }
  }

  close(): void {
    this.db.close();
  }
}

export interface OpenedCatalog {
  catalog: Catalog;
  /** Whether rows written go anywhere that lasts (false: a read-only open of a sound catalog). */
  writable: boolean;
  /** Why the catalog on disk was found damaged, if it was. */
  damage?: string;
  /** Where a writable open moved the damaged catalog. */
  aside?: string;
}

/**
 * Opens an archive's catalog and checks it (openAudit: everything but the block rows of
 * files other than the newest local one, which Catalog.blocks checks on first load). A damaged catalog holds nothing
 * the files do not (but put status, re-derived by the list hook): it is replaced by an
 * empty one that opening fills from the files, in memory for a read-only open (the
 * directory stays as it was), else after moving it aside as `catalog.sqlite.bad-<ms>`.
 * A missing catalog is created (createCatalogFile; in memory when read-only); one that holds
 * nothing (catalogHoldsNothing) is not damage either.
 */
export async function openCheckedCatalog(dir: string, readonly: boolean): Promise<OpenedCatalog> {
  const file = join(dir, CATALOG_FILE);
  if (!(await stat(file).then(() => true, () => false))) return { catalog: readonly ? new Catalog(':memory:') : await createCatalogFile(dir), writable: true };
  let damage: string;
  try {
    const catalog = new Catalog(file, readonly);
    // A writer also goes through the indexes (unique paths, put names): check them too.
    let problems: string[];
    try {
      problems = catalog.openAudit(!readonly);
    } catch (err) {
      catalog.close();
      throw err;
    }
    if (problems.length === 0) return { catalog, writable: !readonly };
    catalog.close();
    damage = problems.join('; ');
  } catch (err) {
    // A full disk or an I/O error is not damage: a writable open that moved the catalog
    // aside would lose the put status and the rows of files in cold storage only.
    if (!readonly && isEnvironmentError(err)) throw err;
    damage = err instanceof Error ? err.message : String(err);
  }
  // A writable open completes such a file's tables in place (migrateCatalog); a read-only one cannot.
  if (readonly && catalogHoldsNothing(file)) return { catalog: new Catalog(':memory:'), writable: true };
  return replaceCatalog(dir, readonly, damage);
}

/**
 * An empty catalog in place of one that cannot be used (`damage` says why; the caller has
 * closed it): in memory for a read-only open, else after moving the old one (with its
 * `-wal` and `-shm`) aside as `catalog.sqlite.bad-<ms>`. Opening then fills it from the files.
 */
export async function replaceCatalog(dir: string, readonly: boolean, damage: string): Promise<OpenedCatalog> {
  if (readonly) return { catalog: new Catalog(':memory:'), writable: true, damage };
  const file = join(dir, CATALOG_FILE);
  const aside = `${CATALOG_FILE}.bad-${Date.now()}`;
  for (const suffix of ['', '-wal', '-shm']) await rename(file + suffix, join(dir, aside + suffix)).catch(() => undefined);
  return { catalog: await createCatalogFile(dir), writable: true, damage, aside };
}

/** The name a new catalog is built under (createCatalogFile); a leftover is removed by the next creation. */
const CATALOG_NEW_FILE = `${CATALOG_FILE}.new`;

/**
 * Creates the archive's catalog, its tables and schema version committed, in one step: it is
 * built as CATALOG_NEW_FILE, checkpointed (the file holds it all, its WAL is gone), synced,
 * and renamed over `catalog.sqlite`. A process killed at any instant (`tapedeck reindex`,
 * an open that replaces a damaged catalog) leaves either no catalog, or the one that was
 * there, or a complete empty one, never a file that readers would take for a damaged catalog.
 * Before the rename, the `-wal` and `-shm` of the name are removed: what is left of a catalog
 * moved aside by a process killed between its renames, a WAL SQLite would replay into the new
 * file. Writable opens only, under the writer's lock.
 */
async function createCatalogFile(dir: string): Promise<Catalog> {
  const file = join(dir, CATALOG_FILE);
  const tmp = join(dir, CATALOG_NEW_FILE);
  for (const suffix of ['', '-wal', '-shm']) await rm(tmp + suffix, { force: true });
  const created = new Catalog(tmp);
  try {
    const [r] = created.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    if (r?.busy !== 0) throw new Error(`catalog creation: ${CATALOG_NEW_FILE} could not be checkpointed`);
  } catch (err) {
    created.close();
    throw catalogError(err, 'creation');
  }
  created.close();
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  for (const suffix of ['-wal', '-shm']) await rm(file + suffix, { force: true });
  await rename(tmp, file);
  await fsyncDir(dir);
  return new Catalog(file);
}

/**
 * Whether the catalog file holds no row: no table (a file whose schema was never committed,
 * as an earlier version that created the catalog in place left it when killed), or only
 * tables of the catalog's, all empty. Such a file is a missing catalog, not a damaged one.
 * False when it cannot be read (damage, or the machine's fault). Never throws.
 */
export function catalogHoldsNothing(file: string): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const objects = db.prepare<[], { type: string; name: string }>('SELECT type, name FROM sqlite_master').all();
    const tables = new Set<string>(TABLES);
    for (const { type, name } of objects) {
      if (type === 'index' && name.startsWith('sqlite_autoindex_')) continue;
      if (type !== 'table' || !tables.has(name)) return false;
      if (db.prepare(`SELECT 1 FROM ${name} LIMIT 1`).get() !== undefined) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    db?.close();
  }
}
