/**
 * `tapedeck compact`: every sealed local file of an archive compacted (storage/seal-compact.ts)
 * and put in its place, with no server running (the writer's lock is held throughout, as
 * `tapedeck reindex` holds it: a directory a server records into is refused with
 * TPD_ARCHIVE_LOCKED). Nothing reads the archive meanwhile, so no reader holds a place in a
 * file being replaced; a server compacting files under its readers is the next stage.
 *
 * Crash safety, one file at a time: the compacted file is written whole and synced under
 * `<name>.compact.tmp`; the catalog forgets the file's rows (indexed bytes back to the
 * header); the compacted file is renamed over the old one and the directory synced; the
 * catalog records the new rows. A crash before the rename leaves the old file, which the next
 * open indexes again from its header; after it, the new one, indexed the same way; either
 * holds every batch. Leftover `.compact.tmp` files are removed by the next compaction. The
 * file's per-series sidecar is removed after (a crash before leaves one whose identity no
 * longer matches: refused and rebuilt, as any such sidecar); the next server builds it anew.
 *
 * Files skipped: damaged ones (refused), ones whose put hook has run (cold storage holds the
 * old bytes: a copy fetched back must match the catalog's rows), and ones already compacted
 * (a compaction would not make fewer delta blocks). A compaction that would keep more than
 * compactKeptBytesRatioMax of the file's bytes is thrown away and not tried again (a catalog
 * meta row): larger blocks make seeks and state reads in the file dearer, which a small
 * saving does not pay for (random doubles: 18 % smaller, seek + state p50 10 -> 24 ms).
 */
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive, type OpenOptions } from './archive.js';
import { assertArchiveDir } from './archive-dir.js';
import { HEADER_BYTES } from './codec/header.js';
import type { FileEntry } from './file-list.js';
import { fsyncDir } from './open-file.js';
import { compactedDeltaCount, compactSealedFile, type CompactedFile, type CompactTargets } from './seal-compact.js';
import { STORAGE_LIMITS } from './limits.js';
import { sidecarPath } from './series-index/build.js';

export const COMPACT_TMP_SUFFIX = '.compact.tmp';
/** Catalog meta key (+ the file's name) of a file whose compaction saved too little: not tried again. */
const DECLINED_KEY = 'compact_declined:';

export interface CompactFileReport {
  name: string;
  /** Bytes before and after; equal when skipped. */
  before: number;
  after: number;
  deltasBefore: number;
  deltasAfter: number;
  /** Why the file was left as it was. */
  skipped?: string;
}

export interface CompactOptions extends OpenOptions {
  targets?: Partial<CompactTargets>;
  /** Largest share of a file's bytes a kept compaction may have (STORAGE_LIMITS.compactKeptBytesRatioMax; benchmarks pass Infinity to compact whatever it costs). */
  keptBytesRatioMax?: number;
  /** Called after each file (progress). */
  onFile?: (r: CompactFileReport) => void;
}

/** Why `e` is not compacted, or undefined (here and by the running server, live-compact.ts). */
export function skipReason(a: Archive, e: FileEntry, shipped: ReadonlySet<string>, target: number): string | undefined {
  if (!e.sealed) return 'open file';
  if (e.location !== 'local') return `file is ${e.location}`;
  if (e.damaged) return 'damaged (run tapedeck verify)';
  if (shipped.has(e.name)) return 'shipped by the put hook';
  if (compactedDeltaCount(a.table(e), target) >= a.table(e).deltas.length) return 'already compact';
  if (a.catalog.getMeta(DECLINED_KEY + e.name) !== undefined) return 'declined before: saves too little';
  return undefined;
}

/**
 * Puts compaction `c` of sealed file `e`, written and synced at `tmp`, in its place: the
 * catalog forgets the file's rows, the compaction is renamed over the file, the directory is
 * synced, the new rows are recorded, and the file's sidecar (which describes the old blocks)
 * is removed; a server builds the new one. `renamed` runs right after the rename, when the
 * file on disk is the compaction (the running server swaps its file entry there,
 * live-compact.ts).
 */
export async function swapInCompaction(a: Archive, e: FileEntry, tmp: string, c: CompactedFile, renamed?: () => void): Promise<void> {
  const row = { seq: e.seq, name: e.name, location: e.location, firstTs: e.firstTs, lastTs: e.lastTs, sealed: true };
  a.catalog.recordFile({ ...row, indexedBytes: HEADER_BYTES }, [], [], HEADER_BYTES);
  await rename(tmp, join(a.dir, e.name));
  renamed?.();
  await fsyncDir(a.dir);
  a.catalog.recordFile({ ...row, indexedBytes: c.bytes }, c.rows, [], HEADER_BYTES);
  await rm(sidecarPath(a, e.name), { force: true });
}

/** Notes that compacting `name` would keep too much (`bytes`): it is not tried again. */
export function markDeclined(a: Archive, name: string, bytes: number): void {
  a.catalog.setMeta(DECLINED_KEY + name, String(bytes));
}

export async function compactArchive(dir: string, opts: CompactOptions = {}): Promise<CompactFileReport[]> {
  await assertArchiveDir(dir);
  const a = await Archive.open(dir, { ...opts, readonly: false });
  const out: CompactFileReport[] = [];
  try {
    for (const name of await readdir(dir)) if (name.endsWith(COMPACT_TMP_SUFFIX)) await rm(join(dir, name), { force: true });
    const shipped = new Set(a.catalog.puts().map((p) => p.name));
    const target = opts.targets?.updates ?? STORAGE_LIMITS.compactBlockUpdatesTarget;
    for (const e of a.fileList.all()) {
      const before = e.location === 'local' ? (await stat(join(dir, e.name))).size : 0;
      const deltas = e.location === 'local' && !e.damaged ? a.table(e).deltas.length : 0;
      const skipped = skipReason(a, e, shipped, target);
      if (skipped !== undefined) {
        const r = { name: e.name, before, after: before, deltasBefore: deltas, deltasAfter: deltas, skipped };
        out.push(r);
        opts.onFile?.(r);
        continue;
      }
      const tmp = join(dir, e.name + COMPACT_TMP_SUFFIX);
      const c = await compactSealedFile(a, e, tmp, opts.targets);
      if (c.bytes > before * (opts.keptBytesRatioMax ?? STORAGE_LIMITS.compactKeptBytesRatioMax)) {
        // Larger blocks cost every seek and state read in the file: not worth a small saving.
        await rm(tmp, { force: true });
        markDeclined(a, e.name, c.bytes);
        const r = { name: e.name, before, after: before, deltasBefore: c.deltasBefore, deltasAfter: c.deltasBefore, skipped: `saves too little (${c.bytes} bytes)` };
        out.push(r);
        opts.onFile?.(r);
        continue;
      }
      await swapInCompaction(a, e, tmp, c);
      const r = { name: e.name, before, after: c.bytes, deltasBefore: c.deltasBefore, deltasAfter: c.deltasAfter };
      out.push(r);
      opts.onFile?.(r);
    }
  } finally {
    await a.close();
  }
  return out;
}
