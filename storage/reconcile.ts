/**
 * Open-time reconciliation of an archive directory with its catalog: reads every file's
 * header, indexes only what the catalog has not seen (the tail of `current` after a crash,
 * or every file when the catalog is missing), settles files the catalog lists but the disk
 * does not hold (and the reverse), and loads the path dictionary. Called once by
 * `Archive.open`, before the writer starts.
 */
import { open, readdir, rename, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { CATALOG_FILE, replaceCatalog, type BlockRow, type PathRow } from './catalog.js';
import { BlockType } from './codec/frame.js';
import { FORMAT_VERSION, HEADER_BYTES } from './codec/header.js';
import { CURRENT_NAME, ROTATED_NAME, readFileHeader, readHeaderAt, recoverCommit, repairCommitSlots, scanBlocks } from './segment-file.js';
import type { Archive } from './archive.js';
import type { NewFileEntry } from './file-list.js';

/** The archive being opened: what reconciliation reads, and the state it fills in. */
export type ReconcileTarget = Pick<
  Archive,
  | 'dir' | 'readonly' | 'logger' | 'catalog' | 'catalogWritable' | 'archiveId' | 'fileList' | 'paths' | 'pathIds' | 'pathFirstTs' | 'lastTs' | 'problem'
  | 'definePath' | 'recovery' | 'strayNames'
>;

/** The archive's private block index for files its catalog cannot record (read-only opens). */
export interface ReadOnlyIndex {
  /** Blocks scanned at open past what the catalog holds, by seq. */
  readonly tails: Map<number, BlockRow[]>;
  /** Files indexed again from their header: their catalog rows are stale. */
  readonly staleRows: Set<number>;
}

/** Brings the catalog up to date with the files on disk. */
export async function reconcileArchive(a: ReconcileTarget, index: ReadOnlyIndex): Promise<void> {
  // `current` first: of two files claiming one seq (a rotated name holding a copy of
  // `current`), the one ignored is never `current`, which a writable open would start over.
  const names = (await readdir(a.dir)).filter((n) => n === CURRENT_NAME || ROTATED_NAME.test(n))
    .sort((x, y) => (x === CURRENT_NAME ? -1 : y === CURRENT_NAME ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const archiveId = await settleIdentity(a, names);
  const rows = new Map(a.catalog.files().map((r) => [r.seq, r]));
  /** `truncated`: the file ends before its committed length (its blocks past the cut are lost). */
  const onDisk = new Map<number, { name: string; committed: number; size: number; truncated: boolean }>();
  /** Files whose header could not be read, by name (error code). */
  const unreadable = new Map<string, string>();
  const newer: Array<{ name: string; version: unknown }> = [];
  for (const name of names) {
    const path = join(a.dir, name);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const h = await readFileHeader(fh);
      const size = (await fh.stat()).size;
      if (archiveId !== undefined && h.archiveId !== archiveId) {
        const message = `file belongs to archive ${h.archiveId}, not ${archiveId}; ignored`;
        a.problem({ file: name, code: 'TPD_FOREIGN_FILE', message });
        unreadable.set(name, 'TPD_FOREIGN_FILE');
        a.strayNames.add(name);
        continue;
      }
      const prev = onDisk.get(h.seq);
      if (prev) {
        a.problem({ file: name, code: 'TPD_CORRUPT_HEADER', message: `file repeats seq ${h.seq} of ${prev.name}; ignored` });
        unreadable.set(name, 'TPD_CORRUPT_HEADER');
        a.strayNames.add(name);
        continue;
      }
      const rec = await recoverCommit(fh, h, size);
      let committed = rec.committedBytes;
      if (rec.damagedSlots.length > 0) {
        a.recovery.damagedSlots += rec.damagedSlots.length;
        a.recovery.recoveredBlocks += rec.recoveredBlocks;
        a.recovery.cutBytes += rec.cutBytes;
        if (!a.readonly) await repairSlots(path, h, committed);
        a.problem({
          file: name, offset: 0, code: 'TPD_CORRUPT_HEADER',
          message: `commit slot ${rec.damagedSlots.join(' and ')} fails its CRC32C: ${rec.recoveredBlocks} intact block(s) (${rec.recoveredBytes} bytes) recovered past the surviving slot's length, ` +
            `${rec.cutBytes} byte(s) cut at ${committed}${a.readonly ? '' : '; slots rewritten'}`,
        });
      }
      const truncated = committed > size;
      if (truncated) {
        a.problem({ file: name, code: 'TPD_CORRUPT_BLOCK', message: `committed length ${committed} is past the end of the file (${size} bytes): file was truncated` });
        committed = size;
      }
      onDisk.set(h.seq, { name, committed, size, truncated });
    } catch (caught) {
      // A name that cannot be read at all (a directory, no permission, an I/O error) is a
      // file the archive cannot place, like one with a damaged header: not a failed start.
      const err = isTapedeckError(caught) ? caught : unreadableFile(caught);
      a.problem({ file: name, code: err.code, message: err.message });
      unreadable.set(name, err.code);
      a.strayNames.add(name);
      if (err.code === 'TPD_FORMAT_VERSION') newer.push({ name, version: err.details?.version });
    } finally {
      await fh?.close();
    }
  }
  if (newer.length > 0 && !a.readonly) {
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
  // Not gone when its seq is on disk under a rotated name: a rotation renamed it and was cut
  // short before the catalog row (the seq loop below takes the new name).
  const currentGone = !names.includes(CURRENT_NAME) && [...rows.values()].some((r) => r.name === CURRENT_NAME && !onDisk.has(r.seq));
  if ((currentCode !== undefined || currentGone) && !a.readonly) {
    if (currentCode !== undefined) {
      // Unreadable header on `current` (corrupt, not newer), or one of another archive: keep
      // the bytes for inspection, start afresh (never over them).
      const aside = `current.${currentCode === 'TPD_FOREIGN_FILE' ? 'foreign' : 'bad'}-${Date.now()}`;
      await rename(join(a.dir, CURRENT_NAME), join(a.dir, aside));
      a.problem({ file: CURRENT_NAME, code: currentCode, message: `moved aside to ${aside}` });
    } else {
      a.problem({ file: CURRENT_NAME, code: 'TPD_FILE_UNAVAILABLE', message: 'file is in the catalog but not on disk: its batches are lost; a new current is started' });
    }
    // Its batches are no longer part of the archive: forget the catalog's rows for it, or
    // the file would stay in the archive as missing and a new `current` could not start.
    for (const [seq, row] of rows) {
      if (row.name !== CURRENT_NAME || onDisk.has(seq)) continue;
      rows.delete(seq);
      if (a.catalogWritable) a.catalog.forgetFile(seq);
      forgotCurrent = true;
    }
  }
  a.strayNames.delete(CURRENT_NAME);
  a.archiveId = archiveId ?? randomBytes(8).toString('hex');
  if (a.catalogWritable) a.catalog.setMeta('archive_id', a.archiveId);

  const newPaths: PathRow[] = [];
  /** Every path definition seen (catalog, then files in seq order): a file that contradicts one is reported. Filled at the first scan. */
  let defined: Map<number, { path: string; by: string }> | undefined;
  let catalogAhead = forgotCurrent;
  /** Names whose put the catalog holds as done, read when a file is first found gone. */
  let shippedNames: Set<string> | undefined;
  const seqs = [...new Set([...rows.keys(), ...onDisk.keys()])].sort((x, y) => x - y);
  for (const seq of seqs) {
    const row = rows.get(seq);
    const disk = onDisk.get(seq);
    if (!disk) {
      if (!row) continue;
      const { indexedBytes, ...fields } = row;
      // A shipped file gone from disk is in cold storage: retention removed it and was cut
      // short (a crash, a full disk) before the catalog recorded it remote.
      const shipped = row.location !== 'remote' && !unreadable.has(row.name) && ROTATED_NAME.test(row.name) && (shippedNames ??= donePuts(a)).has(row.name);
      const entry: NewFileEntry = { ...fields, location: shipped ? 'remote' : row.location === 'local' ? 'missing' : row.location, committedBytes: indexedBytes, damaged: false };
      if (entry.location !== 'remote') {
        // Reported at every open, not only the first that found it gone.
        const code = unreadable.get(row.name);
        const message = code === undefined ? 'file is in the catalog but not on disk' : `file is in the catalog but its header cannot be read (${code}); its batches are not served`;
        a.problem({ file: row.name, code: 'TPD_FILE_UNAVAILABLE', message });
      }
      if (a.catalogWritable && entry.location !== row.location) a.catalog.recordFile({ ...row, location: entry.location }, [], []);
      a.fileList.append(entry);
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
        a.logger.warn({ file: disk.name, indexedBytes: from, committedBytes: disk.committed }, 'catalog claims more than the file commits: file indexed again');
      }
      from = HEADER_BYTES;
      truncateFrom = HEADER_BYTES;
      firstTs = lastTs = null;
      if (!a.catalogWritable) index.staleRows.add(seq);
    }
    const entry = {
      seq,
      name: disk.name,
      location: 'local' as const,
      firstTs,
      lastTs,
      committedBytes: disk.committed,
      sealed: disk.name !== CURRENT_NAME,
      // Cut at a frame's end, a truncated file scans clean: it is damaged all the same (its
      // lost end is a hole to every read, storage/cursor-gap.ts holeAfter), never a whole file.
      damaged: disk.truncated,
    } satisfies NewFileEntry;
    let scanned: BlockRow[] = [];
    let refused = false;
    if (from < disk.committed) {
      const fh = await open(join(a.dir, disk.name), 'r');
      try {
        const res = await scanBlocks(fh, from, disk.committed);
        scanned = res.blocks;
        for (const p of res.problems) a.problem({ file: disk.name, offset: p.offset, code: p.code, message: p.message });
        if (res.problems.length > 0) entry.damaged = true;
        defined ??= new Map(a.catalog.paths().map((p) => [p.id, { path: p.path, by: CATALOG_FILE }]));
        const mine: PathRow[] = [];
        for (const d of res.paths) {
          const known = defined.get(d.id);
          if (known === undefined || known.path === d.path) {
            mine.push({ id: d.id, path: d.path, firstTs: d.firstTs });
            continue;
          }
          // Ids are stable across an archive's files: one of the two is another archive's
          // (a fork: a copy of this directory that recorded on elsewhere). Never silent. A
          // rotated file that contradicts the catalog (the archive's dictionary) is the
          // stranger: it is not served, and is checked again at every open.
          entry.damaged = true;
          a.problem({ file: disk.name, code: 'TPD_CORRUPT_BLOCK', message: `defines path id ${d.id} as ${JSON.stringify(d.path)}, ${known.by} as ${JSON.stringify(known.path)}` });
          if (known.by === CATALOG_FILE && disk.name !== CURRENT_NAME) refused = true;
        }
        if (!refused) {
          for (const d of mine) {
            if (!defined.has(d.id)) defined.set(d.id, { path: d.path, by: disk.name });
            newPaths.push(d);
          }
        }
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
    if (refused) {
      const missing: NewFileEntry = { ...entry, location: 'missing', firstTs: null, lastTs: null, committedBytes: HEADER_BYTES };
      if (a.catalogWritable) a.catalog.recordFile({ seq, name: entry.name, location: 'missing', firstTs: null, lastTs: null, indexedBytes: HEADER_BYTES, sealed: entry.sealed }, [], [], truncateFrom ?? HEADER_BYTES);
      a.fileList.append(missing);
      continue;
    }
    const fileRow = { seq, name: entry.name, location: entry.location, firstTs: entry.firstTs, lastTs: entry.lastTs, indexedBytes: from, sealed: entry.sealed };
    if (a.catalogWritable) {
      a.catalog.recordFile(fileRow, scanned, newPaths.splice(0), truncateFrom);
    } else if (scanned.length > 0) {
      index.tails.set(seq, scanned);
    }
    a.fileList.append(entry);
  }
  // A `current` whose header cannot be read, left in place by a read-only open and named by no
  // catalog row (none, or rebuilt in memory): its batches come after every file's, so it is a
  // gone file of unknown times at the end, not nothing (a state past the last rotated file's
  // batches would be that file's, stale, in silence). As a catalog row would make it.
  if (currentCode !== undefined && a.readonly && !a.fileList.all().some((f) => f.name === CURRENT_NAME)) {
    const last = a.fileList.last();
    a.fileList.append({ seq: (last?.seq ?? -1) + 1, name: CURRENT_NAME, location: 'missing', firstTs: null, lastTs: null, committedBytes: HEADER_BYTES, sealed: false, damaged: false });
  }
  loadDictionary(a, newPaths);
  for (const f of a.fileList.all()) if (f.lastTs !== null && f.lastTs > a.lastTs) a.lastTs = f.lastTs;
  if (catalogAhead) dropUncommittedPaths(a);
}

/**
 * Whose archive the directory is: the archive id most of its readable segment files carry
 * (the files are the truth; a tie goes to the catalog's id, then to `current`'s, then to
 * the first file by name), or the catalog's when no file is readable. A catalog that names
 * another archive belongs elsewhere (copied in, restored from another machine): it is
 * replaced by an empty one that opening fills from the files, as a damaged one is, and the
 * files of the chosen archive are served. Deciding by the first file read instead let one
 * stray file (or a stray catalog) make every file of the archive "foreign": none was
 * served, and a writable open started a new `current` over the real one.
 */
async function settleIdentity(a: ReconcileTarget, names: readonly string[]): Promise<string | undefined> {
  const ids = new Map<string, string>();
  for (const name of names) {
    const id = await readHeaderAt(join(a.dir, name)).then((h) => h.archiveId, () => undefined);
    if (id !== undefined) ids.set(name, id);
  }
  const catalogId = a.catalog.getMeta('archive_id');
  const chosen = chooseArchiveId(ids, catalogId);
  if (catalogId === undefined || chosen === catalogId) return chosen;
  a.catalog.close();
  const damage = `catalog names archive ${catalogId}, the files ${chosen}`;
  const opened = await replaceCatalog(a.dir, a.readonly, damage);
  a.catalog = opened.catalog;
  a.catalogWritable = opened.writable;
  a.recovery.catalogRebuilds++;
  const done = opened.aside === undefined ? 'the files were indexed into memory and the directory left as it was' : `moved aside to ${opened.aside} and rebuilt from the files`;
  a.problem({ file: CATALOG_FILE, code: 'TPD_FOREIGN_FILE', message: `${damage}; ${done}` });
  return chosen;
}

/** The id most files carry (ties: the catalog's, `current`'s, the first name's); the catalog's when none. */
export function chooseArchiveId(ids: ReadonlyMap<string, string>, catalogId: string | undefined): string | undefined {
  const votes = new Map<string, number>();
  for (const id of ids.values()) votes.set(id, (votes.get(id) ?? 0) + 1);
  if (votes.size === 0) return catalogId;
  const most = Math.max(...votes.values());
  const tied = new Set([...votes].filter(([, n]) => n === most).map(([id]) => id));
  if (tied.size === 1) return [...tied][0];
  if (catalogId !== undefined && tied.has(catalogId)) return catalogId;
  const current = ids.get(CURRENT_NAME);
  if (current !== undefined && tied.has(current)) return current;
  for (const [, id] of [...ids].sort(([x], [y]) => (x < y ? -1 : 1))) if (tied.has(id)) return id;
  return undefined;
}

/** An fs error reading a segment file as a TapedeckError (TPD_FILE_UNAVAILABLE, naming the errno). */
export function unreadableFile(err: unknown): TapedeckError {
  const e = err as NodeJS.ErrnoException;
  return new TapedeckError('TPD_FILE_UNAVAILABLE', `file cannot be read (${e.code ?? e.message ?? String(err)})`, undefined, { cause: err });
}

async function repairSlots(path: string, h: Parameters<typeof repairCommitSlots>[1], committedBytes: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await repairCommitSlots(fh, h, committedBytes);
  } finally {
    await fh.close();
  }
}

/**
 * After a catalog that was ahead of a file (the file was restored from an older copy, or
 * lost its last commits), the catalog's dictionary may hold paths that only the lost
 * data used. A path first used after the last committed batch is referenced by no block:
 * drop it (ids are assigned in time order, so these are the highest ids), or the writer
 * would use its id without defining it in the file.
 */
function dropUncommittedPaths(a: ReconcileTarget): void {
  let keep = a.paths.length;
  while (keep > 0 && (a.pathFirstTs[keep - 1] as number) > a.lastTs) keep--;
  if (keep === a.paths.length) return;
  const dropped = a.paths.length - keep;
  for (const p of a.paths.splice(keep)) a.pathIds.delete(p);
  a.pathFirstTs.splice(keep);
  if (a.catalogWritable) a.catalog.forgetPathsFrom(keep);
  a.logger.warn({ file: CATALOG_FILE, dropped, keep }, 'catalog dictionary was ahead of the files: forgot the paths no committed batch uses');
}

function loadDictionary(a: ReconcileTarget, extra: PathRow[]): void {
  const all = [...a.catalog.paths(), ...extra].sort((x, y) => x.id - y.id);
  for (const p of all) {
    if (p.id < a.paths.length) {
      if (a.paths[p.id] !== p.path) a.problem({ file: CATALOG_FILE, code: 'TPD_CORRUPT_BLOCK', message: `path id ${p.id} defined as both ${a.paths[p.id]} and ${p.path}` });
      continue;
    }
    if (p.id !== a.paths.length) {
      a.problem({ file: CATALOG_FILE, code: 'TPD_CORRUPT_BLOCK', message: `path dictionary has a gap before id ${p.id}` });
      break;
    }
    a.definePath(p.path, p.firstTs);
  }
}

/** Names of the rotated files the catalog holds as shipped (put done); none when its rows cannot be read. */
function donePuts(a: ReconcileTarget): Set<string> {
  try {
    return new Set(a.catalog.puts().filter((p) => p.status === 'done').map((p) => p.name));
  } catch {
    return new Set();
  }
}
