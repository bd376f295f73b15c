/**
 * The catalog's tables and their upgrade from older schemas, run once at a writable open.
 * Upgrades keep what the rows say and re-check what they can: schema 2's checksums are
 * verified before its rows are regrouped, schema 1's rows (no checksums) are taken as
 * they stand.
 */
import type Database from 'better-sqlite3';
import { crc32c } from './codec/crc.js';
import { COLUMNS, TABLES, damaged, rowCrc } from './catalog-rows.js';
import { insertPathRows, type PathBytesCount } from './catalog-paths.js';

/**
 * 2: every row carries crc, the CRC32C of its values (rowCrc).
 * 3: the dictionary is stored by runs of up to PATHS_PER_ROW_MAX paths (one row each,
 * deflated), not one row per path with a unique index on the text (2.2x the bytes of the
 * paths themselves, more than the segment files of a small archive).
 */
export const SCHEMA_VERSION = '3';

/** Creates the tables of an empty catalog and brings an older one to SCHEMA_VERSION (paths regrouped count into `written`). */
export function migrateCatalog(db: Database.Database, written: PathBytesCount): void {
  const had = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get()?.n === 1;
  // SQLite keeps each statement's text in sqlite_master: it stays as first written, indent included.
  db.exec(`
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
  const version = had ? db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get()?.value : undefined;
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Schemas 1 and 2: one row per path, its text unique. Schema 2's rows are checked
    // against their checksums before they are regrouped (a damaged one would get a valid
    // checksum in its new row); schema 1 had none, its rows are taken as they stand.
    const pathCols = db.prepare('PRAGMA table_info(paths)').all() as Array<{ name: string }>;
    if (pathCols.some((c) => c.name === 'path')) {
      const checked = pathCols.some((c) => c.name === 'crc');
      const old = db.prepare(`SELECT id, path, first_ts${checked ? ', crc' : ''} FROM paths ORDER BY id`).raw().all() as Array<[number, string, number, number?]>;
      for (const [id, path, firstTs, crc] of old) {
        if (checked && crc !== crc32c(JSON.stringify(['paths', id, path, firstTs]))) throw damaged(`schema-2 row of path id ${id} fails its checksum`);
      }
      db.exec(`DROP TABLE paths;
          CREATE TABLE paths(first_id INTEGER PRIMARY KEY, count INTEGER NOT NULL, first_ts INTEGER NOT NULL, defs BLOB NOT NULL, crc INTEGER);`);
      insertPathRows(db, old.map(([id, path, firstTs]) => ({ id, path, firstTs })), written);
    }
    // Schema 1 (no row checksums): add the column and checksum the rows as they stand.
    for (const t of TABLES) {
      const cols = db.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>;
      if (cols.some((c) => c.name === 'crc')) continue;
      db.exec(`ALTER TABLE ${t} ADD COLUMN crc INTEGER`);
      const rows = db.prepare(`SELECT ${COLUMNS[t].join(', ')} FROM ${t}`).raw().all() as unknown[][];
      db.exec(`DELETE FROM ${t}`);
      const ins = db.prepare(`INSERT INTO ${t}(${COLUMNS[t].join(', ')}, crc) VALUES (${COLUMNS[t].map(() => '?').join(', ')}, ?)`);
      for (const r of rows) ins.run(...r, rowCrc(t, r));
    }
    const set = db.prepare('INSERT INTO meta(key, value, crc) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, crc = excluded.crc');
    set.run('schema_version', SCHEMA_VERSION, rowCrc('meta', ['schema_version', SCHEMA_VERSION]));
  })();
}
