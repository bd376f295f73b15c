/**
 * Reads runs of consecutive committed blocks of one local file with one I/O per span of at
 * most `spanBytes`, instead of one per block, and opens each frame with the checks
 * Archive.readBlock makes (CRC32C, LZ4, the frame against its catalog row). For passes
 * that read every block of a range once (GET /api/v1/diff): they skip the shared decoded
 * cache, which such a pass would only flush.
 *
 * A failed check throws; callers that want the archive's own error (with file and offset)
 * or its cold-storage fetch read the block again through Archive.readBlock.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError } from '../protocol/errors.js';
import type { Archive } from './archive.js';
import type { BlockRow } from './catalog.js';
import { openFrame } from './codec/frame.js';
import type { BlockTable, FileEntry } from './file-list.js';
import { readExactly } from './segment-file.js';
import { STORAGE_LIMITS } from './limits.js';

/** Blocks read together: their rows and the bytes from the first one's offset. */
export class FrameSpan {
  constructor(
    private readonly entry: FileEntry,
    readonly rows: readonly BlockRow[],
    private readonly base: number,
    private readonly buf: Uint8Array,
  ) {}

  /** The checked payload of one of the span's rows. */
  payload(row: BlockRow): Uint8Array {
    const where = `${this.entry.name} block at ${row.offset}`;
    const at = row.offset - this.base;
    if (at < 0 || at + row.frameBytes > this.buf.length) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: file ends inside the block`);
    const { header, raw } = openFrame(this.buf.subarray(at, at + row.frameBytes), where);
    if (header.type !== row.type || header.frameBytes !== row.frameBytes || header.firstTs !== row.firstTs || header.lastTs !== row.lastTs || header.batches !== row.batches) {
      throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: the catalog's row differs from the block`);
    }
    return raw;
  }
}

/** One local file open for span reads (its own handle: the pass reads ahead while it folds). */
export class FrameFile {
  private constructor(
    private readonly entry: FileEntry,
    private readonly fh: FileHandle,
  ) {}

  /**
   * The file open for reading, or undefined when it cannot be opened here (not local, gone,
   * closed archive). Files are opened by their entry's name, which a rotation changes just
   * after renaming `current` on disk: an open that races it fails, and is tried again under
   * the new name (a few times: STORAGE_LIMITS.rotationRaceOpenTries).
   */
  static async open(a: Archive, entry: FileEntry): Promise<FrameFile | undefined> {
    for (let attempt = 0; attempt < STORAGE_LIMITS.rotationRaceOpenTries; attempt++) {
      if (entry.location !== 'local' || a.isClosed) return undefined;
      const name = entry.name;
      try {
        return new FrameFile(entry, await open(join(a.dir, name), 'r'));
      } catch {
        // The rename's continuation, which renames the entry, may not have run yet.
        if (entry.name === name) await new Promise((resolve) => setImmediate(resolve));
        if (entry.name === name) return undefined;
      }
    }
    return undefined;
  }

  /**
   * Reads delta blocks [from, to) of `table` (consecutive in the file) in one I/O while
   * the span stays within spanBytes (at least one block).
   */
  async read(table: BlockTable, from: number, to: number, spanBytes: number): Promise<FrameSpan> {
    const rows = [table.delta(from)];
    const base = (rows[0] as BlockRow).offset;
    let bytes = (rows[0] as BlockRow).frameBytes;
    for (let di = from + 1; di < to; di++) {
      const i = table.deltas[di] as number;
      const end = table.offset(i) + table.frameBytes(i) - base;
      if (end > spanBytes || table.offset(i) < base) break;
      rows.push(table.row(i));
      bytes = Math.max(bytes, end);
    }
    return new FrameSpan(this.entry, rows, base, await readExactly(this.fh, bytes, base));
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
