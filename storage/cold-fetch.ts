/**
 * What a file fetched from cold storage must be before it joins the archive again, and
 * the bound on fetches at once. The get hook writes to a temporary name; the file is
 * checked there (its header names this archive and the seq the archive expects; a file
 * the catalog indexed must commit at least what was indexed, one never indexed is scanned
 * block by block and its new paths defined), then renamed into place and marked local.
 */
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import type { Archive } from './archive.js';
import { isIndexed, type FileEntry } from './file-list.js';
import type { BlockRow, PathRow } from './catalog.js';
import { BlockType } from './codec/frame.js';
import { HEADER_BYTES } from './codec/header.js';
import { readFileHeader, recoverCommit, scanBlocks } from './segment-file.js';
import { fsyncDir } from './open-file.js';

/** The rows a fetched file adds to the catalog: its blocks and paths when it had never been indexed, else none. */
export interface AdoptedRows {
  blocks: BlockRow[];
  paths: PathRow[];
}

/**
 * Checks the fetched file at `tmp`, indexes it if it never was, and moves it into place
 * as `entry` (marked local in the file list), then calls `adopted` with the rows it adds
 * (in the same turn: nothing runs between the file list's change and the catalog's).
 * Throws TPD_FILE_UNAVAILABLE (nothing written), TPD_FOREIGN_FILE, TPD_CORRUPT_HEADER or
 * TPD_CORRUPT_BLOCK; the file is then left at `tmp`.
 */
export async function adoptFetched(a: Archive, entry: FileEntry, tmp: string, adopted: (rows: AdoptedRows) => void): Promise<void> {
  const fail = (code: 'TPD_FILE_UNAVAILABLE' | 'TPD_FOREIGN_FILE' | 'TPD_CORRUPT_HEADER' | 'TPD_CORRUPT_BLOCK', why: string): never => {
    throw new TapedeckError(code, `file ${entry.name} fetched from cold storage: ${why}`, { file: entry.name });
  };
  const fh = await open(tmp, 'r').catch(() => fail('TPD_FILE_UNAVAILABLE', `the get hook exited 0 but wrote nothing`));
  let blocks: BlockRow[] = [];
  const newPaths: PathRow[] = [];
  let committed: number;
  let damaged = false;
  try {
    const h = await readFileHeader(fh).catch((err: unknown) => fail('TPD_CORRUPT_HEADER', isTapedeckError(err) ? err.message : String(err)));
    if (h.archiveId !== a.archiveId) fail('TPD_FOREIGN_FILE', `it belongs to archive ${h.archiveId}, not ${a.archiveId}`);
    if (h.seq !== entry.seq) fail('TPD_CORRUPT_HEADER', `it holds seq ${h.seq} where the archive expects ${entry.seq}`);
    // A damaged commit slot: the blocks past the surviving slot's length are taken back as an
    // open takes them back from a local file (never cut in silence), and reported.
    const size = (await fh.stat()).size;
    const rec = await recoverCommit(fh, h, size);
    if (rec.damagedSlots.length > 0) {
      a.problem({
        file: entry.name, offset: 0, code: 'TPD_CORRUPT_HEADER',
        message: `fetched from cold storage: commit slot ${rec.damagedSlots.join(' and ')} fails its CRC32C: ${rec.recoveredBlocks} intact block(s) recovered past the surviving slot's length, ${rec.cutBytes} byte(s) not taken`,
      });
    }
    committed = Math.min(rec.committedBytes, size);
    if (isIndexed(entry)) {
      if (committed < entry.committedBytes) fail('TPD_CORRUPT_BLOCK', `it commits ${committed} bytes, the catalog indexed ${entry.committedBytes}`);
      committed = entry.committedBytes;
    } else {
      const res = await scanBlocks(fh, HEADER_BYTES, committed);
      blocks = res.blocks;
      committed = res.endOffset;
      damaged = res.problems.length > 0;
      // A copy cut short at a frame's first byte scans clean: only its header's committed
      // length says that blocks are missing.
      if (size < rec.committedBytes) {
        damaged = true;
        a.problem({ file: entry.name, offset: size, code: 'TPD_CORRUPT_BLOCK', message: `fetched from cold storage: the copy ends at byte ${size}, its header commits ${rec.committedBytes}: the blocks past ${size} are lost` });
      }
      // Reported as an open reports a damaged local file: the blocks after the damage are not served.
      for (const p of res.problems) a.problem({ file: entry.name, offset: p.offset, code: p.code, message: `fetched from cold storage: ${p.message}` });
      for (const d of res.paths) {
        // Ids are stable across an archive's files: a file that names a known id otherwise
        // (a fork of this archive, its copy recording on elsewhere) would have its values
        // served under another path.
        if (d.id < a.paths.length && a.paths[d.id] !== d.path) {
          fail('TPD_CORRUPT_BLOCK', `it defines path id ${d.id} as ${JSON.stringify(d.path)}, the archive as ${JSON.stringify(a.paths[d.id])}`);
        }
        if (d.id !== a.paths.length) continue;
        a.definePath(d.path, d.firstTs);
        newPaths.push({ id: d.id, path: d.path, firstTs: d.firstTs });
      }
    }
  } finally {
    await fh.close();
  }
  await rename(tmp, join(a.dir, entry.name));
  await fsyncDir(a.dir);
  if (!isIndexed(entry)) {
    let firstTs: number | null = null;
    let lastTs: number | null = null;
    for (const b of blocks) {
      if (b.type !== BlockType.DELTA) continue;
      firstTs ??= b.firstTs;
      lastTs = b.lastTs;
    }
    a.fileList.setIndexed(entry.seq, { firstTs, lastTs, committedBytes: committed, damaged });
  }
  a.fileList.markLocation(entry.seq, 'local');
  adopted({ blocks, paths: newPaths });
}

/** At most `max` get hooks at once; the others wait in arrival order. */
export class GetSlots {
  private running = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly max: number) {}

  acquire(): Promise<void> {
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Hands the slot to the next waiter, if any. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.running--;
  }
}
