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

export class FrameSpan {
  private fh: FileHandle | undefined;
  private buf: Uint8Array = new Uint8Array(0);
  private base = 0;

  private constructor(private readonly entry: FileEntry) {}

  /** A span reader over a local file, or undefined when the file cannot be opened here. */
  static async open(a: Archive, entry: FileEntry): Promise<FrameSpan | undefined> {
    if (entry.location !== 'local' || a.isClosed) return undefined;
    const span = new FrameSpan(entry);
    try {
      span.fh = await open(join(a.dir, entry.name), 'r');
    } catch {
      return undefined;
    }
    return span;
  }

  /**
   * Reads delta blocks [from, to) of `table` (consecutive in the file) in one I/O while
   * the span stays within spanBytes (at least one block); returns their rows.
   */
  async load(table: BlockTable, from: number, to: number, spanBytes: number): Promise<BlockRow[]> {
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
    this.base = base;
    this.buf = await readExactly(this.fh as FileHandle, bytes, base);
    return rows;
  }

  /** The checked payload of a row within the loaded span. */
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

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
  }
}
