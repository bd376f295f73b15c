/**
 * A cursor's reads by columns (Cursor.nextColumns): each block's batches from a position
 * on as columns in update order (storage/column-batches.ts), frames of consecutive blocks
 * read together (STORAGE_LIMITS.cursorReadAheadBytes). The cursor keeps the position; this
 * keeps the decoder's scratch and the read-ahead span.
 */
import { isTapedeckError } from '../protocol/errors.js';
import type { Archive, FetchWait } from './archive.js';
import { ColumnBatchesBuilder, type ColumnBatches, type Selection } from './column-batches.js';
import type { BlockTable, FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';
import { readBlockSelected } from './series-read.js';

export class CursorColumns {
  private readonly builder = new ColumnBatchesBuilder();
  /** Frames of consecutive blocks read together. */
  private span: { seq: number; base: number; buf: Uint8Array } | undefined;
  /**
   * The read-ahead's buffer, reused span after span (grown to the largest span, at most
   * cursorReadAheadBytes or one frame): a span's frames are decoded before the next span is
   * read, and nothing decoded keeps a view of a payload (codec/frame.ts, test/payload-buffer).
   */
  private spanBuffer = new Uint8Array(0);

  constructor(
    private readonly a: Archive,
    private readonly sel: Selection,
    private readonly wait: FetchWait | undefined,
  ) {}

  /** Blocks read through the codec's typed decode (test/cursor-columns.test.ts checks the path is taken). */
  get intoBlocks(): number {
    return this.builder.intoBlocks;
  }

  /** Lets the read-ahead go (at the end of data: blocks committed later are read anew). */
  dropSpan(): void {
    this.span = undefined;
    this.spanBuffer = new Uint8Array(0);
  }

  /** Batches [k, end) of delta block di of f as columns. */
  async at(f: FileEntry, di: number, k: number): Promise<ColumnBatches> {
    const t = this.a.table(f);
    const row = t.delta(di);
    const sel = this.sel;
    const frame = await this.frameAhead(f, t, di);
    const raw = frame === undefined ? await this.a.readPayload(f, row, this.wait) : this.a.payloadOf(f, row, frame);
    try {
      const view = this.builder.fill(raw, row.firstTs, row.batches, this.a.paths.length, k, sel);
      if (view) return view;
    } catch (err) {
      if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
    }
    // What the column reader refuses (a path in two columns of a block, a signalling NaN
    // among other values) the codec reads; a block neither reads fails with the archive's error.
    const d = sel.dropEmpty && sel.keep ? await readBlockSelected(this.a, f, row, sel.keep, this.wait) : await this.a.readBlock(f, row, this.wait);
    return this.builder.fromDecoded(d, k, sel);
  }

  /**
   * The frame of delta block di of a local file from the read-ahead span, which is read
   * (this block and the ones after it, within cursorReadAheadBytes) when it does not hold
   * it. undefined for a file that is not local or a frame past the file's end: readPayload
   * fetches the one and fails on the other as every reader does.
   */
  private async frameAhead(f: FileEntry, t: BlockTable, di: number): Promise<Uint8Array | undefined> {
    if (f.location !== 'local') return undefined;
    const i = t.deltas[di] as number;
    const offset = t.offset(i);
    const bytes = t.frameBytes(i);
    let s = this.span;
    if (s === undefined || s.seq !== f.seq || offset < s.base || offset + bytes > s.base + s.buf.length) {
      let end = offset + bytes;
      for (let dj = di + 1; dj < t.deltas.length; dj++) {
        const j = t.deltas[dj] as number;
        const next = t.offset(j) + t.frameBytes(j);
        if (t.offset(j) < offset || next - offset > STORAGE_LIMITS.cursorReadAheadBytes) break;
        end = next;
      }
      this.span = undefined;
      if (this.spanBuffer.length < end - offset) this.spanBuffer = new Uint8Array(end - offset);
      const got = await this.a.readBytesInto(f, offset, end - offset, this.spanBuffer);
      s = { seq: f.seq, base: offset, buf: this.spanBuffer.subarray(0, got) };
      this.span = s;
    }
    const at = offset - s.base;
    return at + bytes <= s.buf.length ? s.buf.subarray(at, at + bytes) : undefined;
  }
}
