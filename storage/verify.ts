/**
 * Full check of an archive: every byte of every header (fixed part, both commit slots,
 * reserved bytes), every committed block (framing, CRC32C, decompression, decoding,
 * timestamp order within and across files, reserved bytes), the catalog (SQLite's
 * integrity_check, every row's checksum, and its rows against the blocks and paths found
 * in the files), the coverage journal's lines, the workspace file and the per-series
 * sidecars (series-index/verify.ts: every byte of each, against the segment it was built
 * for). Bytes past a file's committed length are an uncommitted tail
 * (a crash between the two phases of a commit), not damage: they are counted, never judged.
 * Reads everything, one block at a time. Used by `tapedeck verify`.
 */
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isTapedeckError } from '../protocol/errors.js';
import { notAnArchive } from './archive-dir.js';
import { Catalog, CATALOG_ERROR_CODE, CATALOG_FILE, catalogHoldsNothing, type BlockRow } from './catalog.js';
import { BlockType } from './codec/frame.js';
import { COVERAGE_FILE, readJournal } from './coverage-journal.js';
import { unreadableFile } from './reconcile.js';
import { HEADER_BYTES, headerReservedProblems } from './codec/header.js';
import type { PathDef } from './codec/payload.js';
import { CURRENT_NAME, ROTATED_NAME, readExactly, readFileHeader, recoverCommit, scanBlocks } from './segment-file.js';
import type { SegmentIdentity } from './series-index/format.js';
import { parseWorkspace, WORKSPACE_FILE } from './workspace-file.js';
import { verifySidecars } from './series-index/verify.js';

export interface VerifyFileReport {
  name: string;
  seq: number | null;
  committedBytes: number;
  sizeBytes: number;
  blocks: number;
  batches: number;
  updates: number;
  /** Bytes past the committed length: a torn tail, cut on the next open for writing. */
  uncommittedTailBytes: number;
}

export interface VerifyProblem {
  file: string;
  offset: number | null;
  code: string;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  files: VerifyFileReport[];
  problems: VerifyProblem[];
}

interface HeaderInfo {
  name: string;
  seq: number;
  archiveId: string;
  committed: number;
  size: number;
}

/** What the files hold, for the comparison with the catalog. */
interface FileIndex {
  archiveId: string | undefined;
  blocks: Map<number, BlockRow[]>;
  paths: PathDef[];
  /** Segment file names in the directory, readable or not. */
  names: ReadonlySet<string>;
}

export async function verifyArchive(dir: string): Promise<VerifyReport> {
  const report: VerifyReport = { ok: true, files: [], problems: [] };
  const notArchive = await notAnArchive(dir);
  if (notArchive !== undefined) {
    report.ok = false;
    report.problems.push({ file: dir, offset: null, code: 'TPD_BAD_ARGUMENT', message: notArchive });
    return report;
  }
  const names = (await readdir(dir)).filter((n) => n === CURRENT_NAME || ROTATED_NAME.test(n));
  const headers: HeaderInfo[] = [];
  for (const name of names) {
    const h = await verifyHeader(join(dir, name), name, report.problems);
    if (h) headers.push(h);
    else report.files.push({ name, seq: null, committedBytes: 0, sizeBytes: 0, blocks: 0, batches: 0, updates: 0, uncommittedTailBytes: 0 });
  }
  headers.sort((x, y) => x.seq - y.seq);
  const ids = new Set(headers.map((h) => h.archiveId));
  if (ids.size > 1) report.problems.push({ file: dir, offset: null, code: 'TPD_FOREIGN_FILE', message: `files from ${ids.size} different archives: ${[...ids].join(', ')}` });
  const index: FileIndex = { archiveId: headers[0]?.archiveId, blocks: new Map(), paths: [], names: new Set(names) };
  let minTs: number | undefined;
  /** Rotated files read without a problem, with what their sidecar must have been built from. */
  const sealed = new Map<string, SegmentIdentity>();
  /** Their delta frames, in order (a version-5 sidecar points into them). */
  const deltaFrames = new Map<string, BlockRow[]>();
  for (const h of headers) {
    const fh = await open(join(dir, h.name), 'r');
    try {
      const res = await scanBlocks(fh, HEADER_BYTES, h.committed, { verify: true, continueAfterError: true, ...(minTs !== undefined ? { minTs } : {}) });
      for (const p of res.problems) report.problems.push({ file: h.name, offset: p.offset, code: p.code, message: p.message });
      for (const b of res.blocks) if (b.type === BlockType.DELTA) minTs = b.lastTs;
      index.blocks.set(h.seq, res.blocks);
      const deltas = res.blocks.filter((b) => b.type === BlockType.DELTA);
      if (h.name !== CURRENT_NAME && res.problems.length === 0 && deltas.length > 0) {
        deltaFrames.set(h.name, deltas);
        sealed.set(h.name, {
          archiveId: h.archiveId, seq: h.seq, name: h.name, committedBytes: h.committed, deltaBlocks: deltas.length,
          firstTs: deltas[0]!.firstTs, lastTs: deltas[deltas.length - 1]!.lastTs, updates: deltas.reduce((n, b) => n + b.updates, 0),
        });
      }
      index.paths.push(...res.paths);
      report.files.push({
        name: h.name, seq: h.seq, committedBytes: h.committed, sizeBytes: h.size, blocks: res.blocks.length,
        batches: res.batches, updates: res.updates, uncommittedTailBytes: Math.max(0, h.size - h.committed),
      });
    } finally {
      await fh.close();
    }
  }
  const rowSeqs = new Set<number>();
  for (const message of await verifyCatalog(dir, index, rowSeqs)) report.problems.push({ file: CATALOG_FILE, offset: null, code: CATALOG_ERROR_CODE, message });
  // Seqs count from 0 with no gap: a seq with no readable file that no catalog row names (a
  // file deleted, or one whose header is reported above, with no catalog) is a hole every read
  // reports (storage/cursor-gap.ts holeAfter); a row names the others (reported above, or remote).
  const rows = [...rowSeqs].sort((x, y) => x - y);
  const lost = (from: number, to: number): void => {
    if (from > to) return;
    const seqs = from === to ? `seq ${from}` : `seqs ${from} to ${to}`;
    report.problems.push({ file: dir, offset: null, code: 'TPD_FILE_UNAVAILABLE', message: `no readable file holds ${seqs} and no catalog row names it (deleted, or its header cannot be read): its batches cannot be read` });
  };
  let expected = 0;
  for (const h of headers) {
    let from = expected;
    for (const r of rows) {
      if (r < from || r >= h.seq) continue;
      lost(from, r - 1);
      from = r + 1;
    }
    lost(from, h.seq - 1);
    expected = Math.max(expected, h.seq + 1);
  }
  // The coverage journal: a torn last line (a crash during an append) is not damage.
  for (const p of (await readJournal(dir)).problems) report.problems.push({ file: COVERAGE_FILE, offset: null, code: 'TPD_CORRUPT_BLOCK', message: `line ${p.line}: ${p.message}` });
  // The workspace (bookmarks, layouts): read back by the server's rule, or moved aside by it at start.
  const workspace = await readFile(join(dir, WORKSPACE_FILE), 'utf8').then((t) => t, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : err));
  if (workspace instanceof Error) report.problems.push({ file: WORKSPACE_FILE, offset: null, code: 'TPD_IO', message: `cannot be read: ${workspace.message}` });
  else if (workspace !== undefined && parseWorkspace(workspace) === null) {
    report.problems.push({ file: WORKSPACE_FILE, offset: null, code: 'TPD_CORRUPT_BLOCK', message: 'fails its CRC32C or its shape: a server moves it aside at start and starts an empty workspace' });
  }
  // Sidecars of files with a problem of their own are left out: the file's problem is reported, and its sidecar is rebuilt once it is repaired.
  for (const name of new Set(report.problems.map((p) => p.file))) sealed.delete(name);
  for (const p of await verifySidecars(dir, sealed, deltaFrames)) report.problems.push({ ...p, code: 'TPD_CORRUPT_BLOCK' });
  report.ok = report.problems.length === 0;
  return report;
}

/** Checks a file's header: fixed part, both commit slots, reserved bytes. Undefined when unreadable. */
async function verifyHeader(path: string, name: string, problems: VerifyProblem[]): Promise<HeaderInfo | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const e = unreadableFile(err);
    problems.push({ file: name, offset: null, code: e.code, message: e.message });
    return undefined;
  }
  try {
    const h = await readFileHeader(fh);
    const size = (await fh.stat()).size;
    for (const message of headerReservedProblems(await readExactly(fh, HEADER_BYTES, 0))) problems.push({ file: name, offset: 0, code: 'TPD_CORRUPT_HEADER', message });
    const rec = await recoverCommit(fh, h, size);
    if (rec.damagedSlots.length > 0) {
      problems.push({
        file: name, offset: 0, code: 'TPD_CORRUPT_HEADER',
        message: `commit slot ${rec.damagedSlots.join(' and ')} fails its CRC32C; opening recovers ${rec.recoveredBlocks} intact block(s) past the surviving slot's length and cuts ${rec.cutBytes} byte(s)`,
      });
    }
    if (rec.committedBytes > size) {
      problems.push({ file: name, offset: size, code: 'TPD_CORRUPT_BLOCK', message: `committed length ${rec.committedBytes} is past the end of the file (${size} bytes)` });
    }
    return { name, seq: h.seq, archiveId: h.archiveId, committed: Math.min(rec.committedBytes, size), size };
  } catch (caught) {
    const err = isTapedeckError(caught) ? caught : unreadableFile(caught);
    problems.push({ file: name, offset: 0, code: err.code, message: err.message });
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * The catalog against itself (audit) and against the files. A catalog may be missing or
 * hold no row (catalogHoldsNothing: opening fills it from the files), lag behind a file (a
 * crash after a commit, before its rows were written) or run ahead of one (the file
 * restored from an older copy): opening settles all of them, so none is damage. What it
 * holds for a block or path the files also hold must be what the files say.
 */
async function verifyCatalog(dir: string, files: FileIndex, rowSeqs: Set<number>): Promise<string[]> {
  const file = join(dir, CATALOG_FILE);
  if (!(await stat(file).then(() => true, () => false))) return [];
  let catalog: Catalog;
  try {
    catalog = new Catalog(file, true);
  } catch (err) {
    // A file that holds no row (its schema never committed) is a missing catalog, as at an open.
    return catalogHoldsNothing(file) ? [] : [(err as Error).message];
  }
  try {
    const audit = catalog.audit(true);
    if (audit.length > 0) return catalogHoldsNothing(file) ? [] : audit;
    const out: string[] = [];
    const id = catalog.getMeta('archive_id');
    if (id !== undefined && files.archiveId !== undefined && id !== files.archiveId) out.push(`catalog names archive ${id}, the files ${files.archiveId}`);
    // A shipped file gone from disk is remote (an eviction cut short before its row): opening settles it.
    const shipped = new Set(catalog.puts().filter((p) => p.status === 'done').map((p) => p.name));
    for (const row of catalog.files()) {
      rowSeqs.add(row.seq);
      // A file the catalog holds as on this disk (local, or found missing at an open) must be here.
      if (row.location !== 'remote' && !files.blocks.has(row.seq) && !(shipped.has(row.name) && !files.names.has(row.name))) out.push(`file ${row.name} (seq ${row.seq}) is in the catalog but not readable on disk: its batches are not served`);
      const scanned = new Map((files.blocks.get(row.seq) ?? []).map((b) => [b.offset, b]));
      if (scanned.size === 0) continue;
      for (const b of catalog.blocks(row.seq)) {
        const f = scanned.get(b.offset);
        if (f && JSON.stringify(f) !== JSON.stringify(b)) out.push(`catalog row for block ${row.name}@${b.offset} differs from the block's header`);
      }
    }
    const defined = new Map(files.paths.map((p) => [p.id, p.path]));
    for (const p of catalog.paths()) {
      const path = defined.get(p.id);
      if (path !== undefined && path !== p.path) out.push(`catalog path id ${p.id} is ${JSON.stringify(p.path)}, the files define ${JSON.stringify(path)}`);
    }
    return out.slice(0, 20);
  } catch (err) {
    return [(err as Error).message];
  } finally {
    catalog.close();
  }
}
