/**
 * The catalog's rows as they lie in SQLite: each table's columns, the CRC32C every row
 * carries over its values, raw rows turned into typed ones, the shape a file's block rows
 * must have, and the errors that report a damaged catalog. Pure: no database here
 * (catalog.ts runs the statements).
 */
import { TapedeckError, type ErrorCode } from '../protocol/errors.js';
import { crc32c } from './codec/crc.js';
import { HEADER_BYTES } from './codec/header.js';
import { BlockType } from './codec/frame.js';
import type { FileEntry } from './file-list.js';

export const CATALOG_FILE = 'catalog.sqlite';
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

export const TABLES = ['meta', 'files', 'blocks', 'paths', 'puts'] as const;

/** Columns of each table, in the order their CRC32C covers them. */
export const COLUMNS = {
  meta: ['key', 'value'],
  files: ['seq', 'name', 'location', 'first_ts', 'last_ts', 'indexed_bytes', 'sealed'],
  blocks: ['seq', 'offset', 'frame_bytes', 'type', 'first_ts', 'last_ts', 'batches', 'updates'],
  paths: ['first_id', 'count', 'first_ts', 'defs'],
  puts: ['name', 'status', 'attempts', 'error', 'updated_ms'],
} as const satisfies Record<(typeof TABLES)[number], readonly string[]>;
export type Table = keyof typeof COLUMNS;
/** A row as SQLite returns it in raw mode: the table's columns in order, then crc. */
export type Raw = unknown[];

export const LOCATIONS: ReadonlySet<unknown> = new Set(['local', 'remote', 'missing']);
export const PUT_STATUSES: ReadonlySet<unknown> = new Set(['pending', 'done', 'failed']);

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

/** The rows of table `t` as read (values then crc); throws when one fails its checksum. */
export function checkedRows(t: Table, rows: unknown[]): Raw[] {
  const n = COLUMNS[t].length;
  for (const r of rows as Raw[]) {
    const values = r.slice(0, n);
    if (r[n] !== rowCrc(t, values)) throw damaged(`row ${JSON.stringify(values).slice(0, 120)} of table ${t} fails its checksum`);
  }
  return rows as Raw[];
}

/**
 * SQLite codes that say what the machine could not do at that moment (a full disk, memory,
 * a lock another connection holds, an I/O error, a file system that refuses writes) and
 * nothing of what the catalog holds. Taken for damage, a full disk at a writable open moved
 * a sound catalog aside (and with it the put status and the rows of files that live in cold
 * storage only) and a late block-table load held a file unreadable until a reindex. A short
 * read and a corrupt file system are the file's content: damage.
 */
const ENVIRONMENT_SQLITE = /^SQLITE_(FULL|BUSY|LOCKED|NOMEM|INTERRUPT|READONLY|IOERR(?!_SHORT_READ|_CORRUPTFS))/;

/**
 * Turns a SQLite error into a TapedeckError with a stable code: CATALOG_ERROR_CODE for what
 * the file holds (SQLITE_CORRUPT, SQLITE_NOTADB, ...), TPD_DISK_FULL for SQLITE_FULL and
 * SQLITE_IOERR_SHMSIZE (the -shm file could not grow: what a full disk gives at an open) and
 * TPD_IO for the rest of ENVIRONMENT_SQLITE (never a reason to rebuild the catalog).
 */
export function catalogError(err: unknown, doing: string): unknown {
  if (err instanceof TapedeckError) return err;
  const e = err as { code?: unknown; message?: unknown };
  if (!(err instanceof Error) || typeof e.code !== 'string' || !e.code.startsWith('SQLITE_')) return err;
  const details = { file: CATALOG_FILE, sqlite: e.code };
  if (e.code === 'SQLITE_FULL' || e.code === 'SQLITE_IOERR_SHMSIZE') return new TapedeckError('TPD_DISK_FULL', `catalog ${doing}: the disk is full (${e.code})`, details, { cause: err });
  if (ENVIRONMENT_SQLITE.test(e.code)) return new TapedeckError('TPD_IO', `catalog ${doing}: ${e.code}: ${String(e.message)}`, details, { cause: err });
  return new TapedeckError(CATALOG_ERROR_CODE, `catalog ${doing}: ${e.code}: ${String(e.message)}; rebuild it with tapedeck reindex`, details, { cause: err });
}

/** Whether `err` is a catalog error of the machine, not of the catalog's content (see ENVIRONMENT_SQLITE). */
export function isEnvironmentError(err: unknown): boolean {
  const sqlite = (err as { details?: { sqlite?: unknown } } | undefined)?.details?.sqlite;
  return err instanceof TapedeckError && err.code !== CATALOG_ERROR_CODE && typeof sqlite === 'string' && sqlite.startsWith('SQLITE_');
}

export function damaged(message: string): TapedeckError {
  return new TapedeckError(CATALOG_ERROR_CODE, `catalog ${message}; rebuild it with tapedeck reindex`, { file: CATALOG_FILE });
}

/** The row a file of the archive's file list is recorded as (its committed bytes are what is indexed). */
export function fileRowOf(f: FileEntry): FileRow {
  return { seq: f.seq, name: f.name, location: f.location, firstTs: f.firstTs, lastTs: f.lastTs, indexedBytes: f.committedBytes, sealed: f.sealed };
}

export function toFileRow(r: Raw): FileRow {
  return {
    seq: r[0] as number, name: r[1] as string, location: r[2] as FileLocation, firstTs: r[3] as number | null,
    lastTs: r[4] as number | null, indexedBytes: r[5] as number, sealed: r[6] === 1,
  };
}

/** A blocks row without its seq (raw: seq, offset, frame_bytes, type, first_ts, last_ts, batches, updates). */
export function toBlockRow(r: Raw): BlockRow {
  return {
    offset: r[1] as number, frameBytes: r[2] as number, type: r[3] as BlockType, firstTs: r[4] as number,
    lastTs: r[5] as number, batches: r[6] as number, updates: r[7] as number,
  };
}

/** Each file's blocks (sorted by seq, offset) start after the header and follow each other without gap. */
export function tileProblems(blocks: readonly Raw[]): string[] {
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

/** Block rows that reach past the bytes their file row says were indexed (`indexedOf(seq)`; -1 for a file without a row). */
export function pastIndexedProblems(blocks: readonly Raw[], indexedOf: (seq: number) => number): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    if ((b[1] as number) + (b[2] as number) > indexedOf(b[0] as number)) out.push(`catalog block ${String(b[0])}@${String(b[1])} lies past what its file row says was indexed`);
  }
  return out;
}
