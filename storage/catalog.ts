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
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { TapedeckError, type ErrorCode } from '../protocol/errors.js';
import { crc32c } from './codec/crc.js';
import { HEADER_BYTES } from './codec/header.js';
import { BLOCK_PAYLOAD_BYTES_MAX, BlockType } from './codec/frame.js';
import { ByteReader, ByteWriter } from './codec/bytes.js';
import type { PathDef } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';

export const CATALOG_FILE = 'catalog.sqlite';
/**
 * 2: every row carries crc, the CRC32C of its values (rowCrc).
 * 3: the dictionary is stored by runs of up to PATHS_PER_ROW_MAX paths (one row each,
 * deflated), not one row per path with a unique index on the text (2.2x the bytes of the
 * paths themselves, more than the segment files of a small archive).
 */
const SCHEMA_VERSION = '3';
/** Paths per row of the paths table (STORAGE_LIMITS.catalogPathsPerRowMax). */
export const PATHS_PER_ROW_MAX = STORAGE_LIMITS.catalogPathsPerRowMax;
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
/**
 * DEFLATE level of the dictionary's rows: level 1 takes 0.17 ms for a row of 1 024
 * Prometheus paths, level 6 2.2 ms for 8 % fewer bytes (a trickle of new paths re-encodes
 * the last row each commit, and a rebuild encodes every row).
 */
const PATHS_DEFLATE_LEVEL = 1;
const TABLES = ['meta', 'files', 'blocks', 'paths', 'puts'] as const;
/** The code of a catalog that SQLite or its row checksums find damaged (docs/errors.md). */
export const CATALOG_ERROR_CODE: ErrorCode = 'TPD_CORRUPT_CATALOG';

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

/** Columns of each table, in the order their CRC32C covers them. */
const COLUMNS = {
  meta: ['key', 'value'],
  files: ['seq', 'name', 'location', 'first_ts', 'last_ts', 'indexed_bytes', 'sealed'],
  blocks: ['seq', 'offset', 'frame_bytes', 'type', 'first_ts', 'last_ts', 'batches', 'updates'],
  paths: ['first_id', 'count', 'first_ts', 'defs'],
  puts: ['name', 'status', 'attempts', 'error', 'updated_ms'],
} as const satisfies Record<(typeof TABLES)[number], readonly string[]>;
type Table = keyof typeof COLUMNS;
/** A row as SQLite returns it in raw mode: the table's columns in order, then crc. */
type Raw = unknown[];

/**
 * CRC32C of a row's values (with its table's name, so a row cannot pass for another
 * table's). SQLite checks its page structure, not the values in it: a flipped bit inside
 * a row is only seen by this checksum.
 */
export function rowCrc(table: Table, values: readonly unknown[]): number {
  if (table === 'paths') {
    // The blob's bytes follow the JSON text of the other values.
    const defs = values[3];
    return crc32c(defs instanceof Uint8Array ? defs : new Uint8Array(0), crc32c(JSON.stringify([table, ...values.slice(0, 3)])));
  }
  return crc32c(JSON.stringify([table, ...values]));
}

/** A paths row: the definitions of ids first_id .. first_id + count - 1, deflated. */
interface PathsRow {
  firstId: number;
  count: number;
  firstTs: number;
  defs: Uint8Array;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * One row's blob, deflated: each path's firstTs as a delta from the one before (the first
 * from the row's first_ts), then each path's UTF-8 byte length, then the paths' bytes one
 * after another (ids are first_id + i). The texts together compress better than between
 * the numbers (docs/format.md, "The dictionary's rows").
 */
function packPaths(defs: readonly PathDef[]): PathsRow {
  const first = defs[0] as PathDef;
  const texts = defs.map((d) => utf8Encoder.encode(d.path));
  const w = new ByteWriter(64 + defs.length * 4 + texts.reduce((n, t) => n + t.length, 0));
  let prevTs = first.firstTs;
  for (const d of defs) {
    w.svar(d.firstTs - prevTs);
    prevTs = d.firstTs;
  }
  for (const t of texts) w.uvar(t.length);
  for (const t of texts) w.bytes(t);
  return { firstId: first.id, count: defs.length, firstTs: first.firstTs, defs: deflateRawSync(w.finish(), { level: PATHS_DEFLATE_LEVEL }) };
}

function unpackPaths(r: Raw): PathDef[] {
  const [firstId, count, firstTs, blob] = r as [number, number, number, Uint8Array];
  try {
    const raw = inflateRawSync(blob, { maxOutputLength: BLOCK_PAYLOAD_BYTES_MAX });
    if (count < 1 || count > raw.length) throw new Error(`${count} paths in ${raw.length} bytes`);
    const rd = new ByteReader(raw);
    const ts = new Array<number>(count);
    let prevTs = firstTs;
    for (let i = 0; i < count; i++) ts[i] = prevTs += rd.svar();
    const lengths = new Array<number>(count);
    for (let i = 0; i < count; i++) lengths[i] = rd.uvar();
    const defs: PathDef[] = [];
    for (let i = 0; i < count; i++) defs.push({ id: firstId + i, path: utf8Decoder.decode(rd.bytes(lengths[i] as number)), firstTs: ts[i] as number });
    if (rd.pos !== rd.end) throw new Error('trailing bytes');
    return defs;
  } catch (err) {
    throw damaged(`paths row at id ${firstId} does not decode (${(err as Error).message})`);
  }
}

/** Turns a SQLite error (SQLITE_CORRUPT, SQLITE_NOTADB, ...) into a TapedeckError with a stable code. */
export function catalogError(err: unknown, doing: string): unknown {
  if (err instanceof TapedeckError) return err;
  const e = err as { code?: unknown; message?: unknown };
  if (!(err instanceof Error) || typeof e.code !== 'string' || !e.code.startsWith('SQLITE_')) return err;
  return new TapedeckError(CATALOG_ERROR_CODE, `catalog ${doing}: ${e.code}: ${String(e.message)}; rebuild it with tapedeck reindex`, { file: CATALOG_FILE, sqlite: e.code }, { cause: err });
}

function damaged(message: string): TapedeckError {
  return new TapedeckError(CATALOG_ERROR_CODE, `catalog ${message}; rebuild it with tapedeck reindex`, { file: CATALOG_FILE });
}

const LOCATIONS: ReadonlySet<unknown> = new Set(['local', 'remote', 'missing']);
const PUT_STATUSES: ReadonlySet<unknown> = new Set(['pending', 'done', 'failed']);

export class Catalog {
  readonly db: Database.Database;
  private readonly stmts;
  /** Bytes of new paths recorded since the last bulk checkpoint. */
  private pathBytesWritten = 0;

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
        this.migrate();
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

  private migrate(): void {
    const had = this.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get()?.n === 1;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER);
      CREATE TABLE IF NOT EXISTS files(
        seq INTEGER PRIMARY KEY, name TEXT NOT NULL, location TEXT NOT NULL,
        first_ts INTEGER, last_ts INTEGER, indexed_bytes INTEGER NOT NULL, sealed INTEGER NOT NULL, crc INTEGER);
      CREATE TABLE IF NOT EXISTS blocks(
        seq INTEGER NOT NULL, offset INTEGER NOT NULL, frame_bytes INTEGER NOT NULL, type INTEGER NOT NULL,
        first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, batches INTEGER NOT NULL, updates INTEGER NOT NULL, crc INTEGER,
        PRIMARY KEY(seq, offset)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS paths(first_id INTEGER PRIMARY KEY, count INTEGER NOT NULL, first_ts INTEGER NOT NULL, defs BLOB NOT NULL, crc INTEGER);
      CREATE TABLE IF NOT EXISTS puts(
        name TEXT PRIMARY KEY, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT, updated_ms INTEGER NOT NULL, crc INTEGER);
    `);
    const version = had ? this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get()?.value : undefined;
    if (version === SCHEMA_VERSION) return;
    this.db.transaction(() => {
      // Schemas 1 and 2: one row per path, its text unique. Schema 2's rows are checked
      // against their checksums before they are regrouped (a damaged one would get a valid
      // checksum in its new row); schema 1 had none, its rows are taken as they stand.
      const pathCols = this.db.prepare('PRAGMA table_info(paths)').all() as Array<{ name: string }>;
      if (pathCols.some((c) => c.name === 'path')) {
        const checked = pathCols.some((c) => c.name === 'crc');
        const old = this.db.prepare(`SELECT id, path, first_ts${checked ? ', crc' : ''} FROM paths ORDER BY id`).raw().all() as Array<[number, string, number, number?]>;
        for (const [id, path, firstTs, crc] of old) {
          if (checked && crc !== crc32c(JSON.stringify(['paths', id, path, firstTs]))) throw damaged(`schema-2 row of path id ${id} fails its checksum`);
        }
        this.db.exec(`DROP TABLE paths;
          CREATE TABLE paths(first_id INTEGER PRIMARY KEY, count INTEGER NOT NULL, first_ts INTEGER NOT NULL, defs BLOB NOT NULL, crc INTEGER);`);
        this.insertPathRows(old.map(([id, path, firstTs]) => ({ id, path, firstTs })));
      }
      // Schema 1 (no row checksums): add the column and checksum the rows as they stand.
      for (const t of TABLES) {
        const cols = this.db.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>;
        if (cols.some((c) => c.name === 'crc')) continue;
        this.db.exec(`ALTER TABLE ${t} ADD COLUMN crc INTEGER`);
        const rows = this.db.prepare(`SELECT ${COLUMNS[t].join(', ')} FROM ${t}`).raw().all() as unknown[][];
        this.db.exec(`DELETE FROM ${t}`);
        const ins = this.db.prepare(`INSERT INTO ${t}(${COLUMNS[t].join(', ')}, crc) VALUES (${COLUMNS[t].map(() => '?').join(', ')}, ?)`);
        for (const r of rows) ins.run(...r, rowCrc(t, r));
      }
      const set = this.db.prepare('INSERT INTO meta(key, value, crc) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, crc = excluded.crc');
      set.run('schema_version', SCHEMA_VERSION, rowCrc('meta', ['schema_version', SCHEMA_VERSION]));
    })();
  }

  /** Runs a query, turning SQLite errors and rows that fail their checksum into TapedeckErrors. */
  private read<T>(doing: string, f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw catalogError(err, doing);
    }
  }

  private checked(t: Table, rows: unknown[]): Raw[] {
    const n = COLUMNS[t].length;
    for (const r of rows as Raw[]) {
      const values = r.slice(0, n);
      if (r[n] !== rowCrc(t, values)) throw damaged(`row ${JSON.stringify(values).slice(0, 120)} of table ${t} fails its checksum`);
    }
    return rows as Raw[];
  }

  getMeta(key: string): string | undefined {
    const row = this.read('read of meta', () => this.checked('meta', this.stmts.meta.all()).find((r) => r[0] === key));
    return row === undefined ? undefined : String(row[1]);
  }

  setMeta(key: string, value: string): void {
    this.read('write of meta', () => this.stmts.setMeta?.run(key, value, rowCrc('meta', [key, value])));
  }

  files(): FileRow[] {
    return this.read('read of files', () => this.checked('files', this.stmts.files.all())).map(toFileRow);
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
    const [raw, fileRow] = this.db.transaction(() => [this.checked('blocks', this.stmts.blocks.all(seq)), this.checked('files', this.stmts.fileRow.all(seq))[0]] as const)();
    const indexed = fileRow === undefined ? -1 : (fileRow[5] as number);
    const problems = tileProblems(raw);
    for (const b of raw) {
      if ((b[1] as number) + (b[2] as number) > indexed) problems.push(`catalog block ${String(b[0])}@${String(b[1])} lies past what its file row says was indexed`);
    }
    return { raw, problems };
  }

  /** The dictionary, by id. Throws a TapedeckError (CATALOG_ERROR_CODE) on a damaged row. */
  paths(): PathRow[] {
    return this.read('read of paths', () => this.checked('paths', this.stmts.paths.all()).flatMap(unpackPaths));
  }

  /**
   * Adds the definitions whose ids are past the dictionary's end (ids already held are
   * skipped: every file starts with the whole dictionary). Runs of consecutive ids go into
   * rows of up to PATHS_PER_ROW_MAX paths, the last row first; a gap in the ids starts a new
   * row (the audit reports it). Call within a transaction.
   */
  private insertPathRows(input: readonly PathDef[]): void {
    if (input.length === 0) return;
    const last = this.lastPathRow();
    const next = last === undefined ? 0 : (last[0] as number) + (last[1] as number);
    const fresh = input.filter((d) => d.id >= next).sort((x, y) => x.id - y.id);
    if (fresh.length === 0) return;
    let run: PathDef[] = last !== undefined && (fresh[0] as PathDef).id === next && (last[1] as number) < PATHS_PER_ROW_MAX ? unpackPaths(last) : [];
    for (const d of fresh) {
      const end = run[run.length - 1];
      if (end !== undefined && d.id === end.id) continue;
      this.pathBytesWritten += d.path.length;
      if (end !== undefined && (d.id !== end.id + 1 || run.length >= PATHS_PER_ROW_MAX)) {
        this.writePathRow(run);
        run = [];
      }
      run.push(d);
    }
    this.writePathRow(run);
  }

  /** The paths row holding the highest ids (checksum checked), if any. */
  private lastPathRow(): Raw | undefined {
    const rows = this.db.prepare(`SELECT ${COLUMNS.paths.join(', ')}, crc FROM paths ORDER BY first_id DESC LIMIT 1`).raw(true).all();
    return this.checked('paths', rows)[0];
  }

  private writePathRow(defs: readonly PathDef[]): void {
    const r = packPaths(defs);
    const values = [r.firstId, r.count, r.firstTs, r.defs];
    this.db.prepare(`INSERT OR REPLACE INTO paths(${COLUMNS.paths.join(', ')}, crc) VALUES (?, ?, ?, ?, ?)`).run(...values, rowCrc('paths', values));
  }

  /** Put status of rotated files, by name. */
  puts(): PutRow[] {
    return this.read('read of puts', () => this.checked('puts', this.stmts.puts.all())).map((r) => ({
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
      this.insertPathRows(paths);
      const values = [file.seq, file.name, file.location, file.firstTs, file.lastTs, file.indexedBytes, file.sealed ? 1 : 0];
      this.stmts.upsertFile?.run(...values, rowCrc('files', values));
    });
    this.read('write of a file', () => run());
    this.checkpointAfterBulk();
  }

  /** After a bulk write of paths rows: copy the WAL into the database and truncate it. */
  private checkpointAfterBulk(): void {
    if (this.pathBytesWritten < BULK_CHECKPOINT_BYTES) return;
    this.pathBytesWritten = 0;
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
    const run = this.db.transaction(() => {
      const rows = this.db.prepare(`SELECT ${COLUMNS.paths.join(', ')}, crc FROM paths WHERE first_id < ? ORDER BY first_id DESC LIMIT 1`).raw(true).all(from);
      const straddling = this.checked('paths', rows)[0];
      this.db.prepare('DELETE FROM paths WHERE first_id >= ?').run(from);
      if (straddling === undefined || (straddling[0] as number) + (straddling[1] as number) <= from) return;
      this.writePathRow(unpackPaths(straddling).slice(0, from - (straddling[0] as number)));
    });
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
    return this.auditWith(thorough, () => {
      const blocks = this.read('read of blocks', () => this.checked('blocks', this.stmts.allBlocks.all()));
      const out = tileProblems(blocks);
      const indexed = new Map(this.files().map((f) => [f.seq, f.indexedBytes]));
      for (const b of blocks) {
        if ((b[1] as number) + (b[2] as number) > (indexed.get(b[0] as number) ?? -1)) out.push(`catalog block ${String(b[0])}@${String(b[1])} lies past what its file row says was indexed`);
      }
      return out;
    });
  }

  /**
   * The check at open: as audit, but of the block rows only the newest local file's (the
   * one a writer appends to, and the first a reader seeks in). The other files' rows are
   * checked when their block table is first loaded (blocks()), so that opening does not
   * read every row of a large archive. Empty when sound. Never throws.
   */
  openAudit(thorough: boolean): string[] {
    return this.auditWith(thorough, () => {
      const seq = this.read('read of files', () => this.stmts.newestLocal.get()) as number | undefined;
      return seq === undefined ? [] : this.read('read of blocks', () => this.checkedBlocks(seq).problems);
    });
  }

  /** SQLite's own check, then the small tables whole, then `blockProblems`. */
  private auditWith(thorough: boolean, blockProblems: () => string[]): string[] {
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
      return [e instanceof Error ? e.message : String(e)];
    }
  }

  close(): void {
    this.db.close();
  }
}

function toFileRow(r: Raw): FileRow {
  return {
    seq: r[0] as number, name: r[1] as string, location: r[2] as FileLocation, firstTs: r[3] as number | null,
    lastTs: r[4] as number | null, indexedBytes: r[5] as number, sealed: r[6] === 1,
  };
}

/** A blocks row without its seq (raw: seq, offset, frame_bytes, type, first_ts, last_ts, batches, updates). */
function toBlockRow(r: Raw): BlockRow {
  return {
    offset: r[1] as number, frameBytes: r[2] as number, type: r[3] as BlockType, firstTs: r[4] as number,
    lastTs: r[5] as number, batches: r[6] as number, updates: r[7] as number,
  };
}

/** Each file's blocks (sorted by seq, offset) start after the header and follow each other without gap. */
function tileProblems(blocks: readonly Raw[]): string[] {
  const out: string[] = [];
  let seq = -1;
  let end = 0;
  for (const raw of blocks) {
    const b = toBlockRow(raw);
    if (raw[0] !== seq) {
      seq = raw[0] as number;
      end = HEADER_BYTES;
    }
    if (b.offset !== end) out.push(`catalog blocks of file ${seq} leave a gap or overlap at ${b.offset}`);
    if (b.type < BlockType.PATHS || b.type > BlockType.IMAGE || b.frameBytes < 48 || b.lastTs < b.firstTs) out.push(`catalog block ${seq}@${b.offset} holds impossible values`);
    end = b.offset + b.frameBytes;
  }
  return out;
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
 * A missing catalog is created (in memory when read-only).
 */
export async function openCheckedCatalog(dir: string, readonly: boolean): Promise<OpenedCatalog> {
  const file = join(dir, CATALOG_FILE);
  if (!(await stat(file).then(() => true, () => false))) return { catalog: new Catalog(readonly ? ':memory:' : file), writable: true };
  let damage: string;
  try {
    const catalog = new Catalog(file, readonly);
    // A writer also goes through the indexes (unique paths, put names): check them too.
    const problems = catalog.openAudit(!readonly);
    if (problems.length === 0) return { catalog, writable: !readonly };
    catalog.close();
    damage = problems.join('; ');
  } catch (err) {
    damage = err instanceof Error ? err.message : String(err);
  }
  if (readonly) return { catalog: new Catalog(':memory:'), writable: true, damage };
  const aside = `${CATALOG_FILE}.bad-${Date.now()}`;
  for (const suffix of ['', '-wal', '-shm']) await rename(file + suffix, join(dir, aside + suffix)).catch(() => undefined);
  return { catalog: new Catalog(file), writable: true, damage, aside };
}
