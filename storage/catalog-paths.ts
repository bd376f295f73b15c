/**
 * The path dictionary in the catalog (schema 3): runs of up to PATHS_PER_ROW_MAX
 * consecutive ids per row of table `paths`, each row's definitions packed and deflated.
 * Adding paths re-encodes the last row until it is full; forgetting paths from an id
 * rewrites the row that straddles it. Functions over the database, called by catalog.ts
 * (and by its schema upgrade) within their transactions.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import { BLOCK_PAYLOAD_BYTES_MAX } from './codec/frame.js';
import { ByteReader, ByteWriter } from './codec/bytes.js';
import type { PathDef } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';
import { COLUMNS, checkedRows, damaged, rowCrc, type Raw } from './catalog-rows.js';

/** Paths per row of the paths table (STORAGE_LIMITS.catalogPathsPerRowMax). */
export const PATHS_PER_ROW_MAX = STORAGE_LIMITS.catalogPathsPerRowMax;
/**
 * DEFLATE level of the dictionary's rows: level 1 takes 0.17 ms for a row of 1 024
 * Prometheus paths, level 6 2.2 ms for 8 % fewer bytes (a trickle of new paths re-encodes
 * the last row each commit, and a rebuild encodes every row).
 */
const PATHS_DEFLATE_LEVEL = 1;

/** A paths row: the definitions of ids first_id .. first_id + count - 1, deflated. */
interface PathsRow {
  firstId: number;
  count: number;
  firstTs: number;
  defs: Uint8Array;
}

/** Bytes of path text written to rows, counted by the catalog to checkpoint after a bulk insert. */
export interface PathBytesCount {
  bytes: number;
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

/** The definitions a paths row holds (raw: first_id, count, first_ts, defs). Throws CATALOG_ERROR_CODE when it does not decode. */
export function unpackPaths(r: Raw): PathDef[] {
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

/**
 * Adds the definitions whose ids are past the dictionary's end (ids already held are
 * skipped: every file starts with the whole dictionary). Runs of consecutive ids go into
 * rows of up to PATHS_PER_ROW_MAX paths, the last row first; a gap in the ids starts a new
 * row (the audit reports it). Call within a transaction.
 */
export function insertPathRows(db: Database.Database, input: readonly PathDef[], written: PathBytesCount): void {
  if (input.length === 0) return;
  const last = lastPathRow(db);
  const next = last === undefined ? 0 : (last[0] as number) + (last[1] as number);
  const fresh = input.filter((d) => d.id >= next).sort((x, y) => x.id - y.id);
  if (fresh.length === 0) return;
  let run: PathDef[] = last !== undefined && (fresh[0] as PathDef).id === next && (last[1] as number) < PATHS_PER_ROW_MAX ? unpackPaths(last) : [];
  for (const d of fresh) {
    const end = run[run.length - 1];
    if (end !== undefined && d.id === end.id) continue;
    written.bytes += d.path.length;
    if (end !== undefined && (d.id !== end.id + 1 || run.length >= PATHS_PER_ROW_MAX)) {
      writePathRow(db, run);
      run = [];
    }
    run.push(d);
  }
  writePathRow(db, run);
}

/** The paths row holding the highest ids (checksum checked), if any. */
function lastPathRow(db: Database.Database): Raw | undefined {
  const rows = db.prepare(`SELECT ${COLUMNS.paths.join(', ')}, crc FROM paths ORDER BY first_id DESC LIMIT 1`).raw(true).all();
  return checkedRows('paths', rows)[0];
}

function writePathRow(db: Database.Database, defs: readonly PathDef[]): void {
  const r = packPaths(defs);
  const values = [r.firstId, r.count, r.firstTs, r.defs];
  db.prepare(`INSERT OR REPLACE INTO paths(${COLUMNS.paths.join(', ')}, crc) VALUES (?, ?, ?, ?, ?)`).run(...values, rowCrc('paths', values));
}

/** Drops the paths from id `from` on, keeping the head of the row that straddles it. Call within a transaction. */
export function deletePathsFrom(db: Database.Database, from: number): void {
  const rows = db.prepare(`SELECT ${COLUMNS.paths.join(', ')}, crc FROM paths WHERE first_id < ? ORDER BY first_id DESC LIMIT 1`).raw(true).all(from);
  const straddling = checkedRows('paths', rows)[0];
  db.prepare('DELETE FROM paths WHERE first_id >= ?').run(from);
  if (straddling === undefined || (straddling[0] as number) + (straddling[1] as number) <= from) return;
  writePathRow(db, unpackPaths(straddling).slice(0, from - (straddling[0] as number)));
}
