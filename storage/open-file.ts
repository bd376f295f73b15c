/**
 * `current` as the writer holds it: the handle, how far frames are written and how far
 * they are committed, and the two-phase commit. Only the committed length says what the
 * file holds, so bytes past it may be garbage (a torn or refused write) and are simply
 * written over. Frames written but not committed are kept whole, so that after a failed
 * commit they can be handed back and written again.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeHeader, encodeSlot, slotOffset, HEADER_BYTES, SLOT_BYTES, SLOT_OFFSETS, FORMAT_VERSION } from './codec/header.js';
import type { FrameItem } from './block-builder.js';
import { CURRENT_NAME, readFileHeader } from './segment-file.js';
import type { Archive } from './archive.js';
import type { FileEntry } from './file-list.js';

/** A frame written to the file, at `offset`. */
export interface Written {
  item: FrameItem;
  offset: number;
}

export class OpenFile {
  private written: Written[] = [];

  private constructor(
    readonly fh: FileHandle,
    readonly entry: FileEntry,
    private generation: number,
    /** Bytes written (frames end here); moves only once a whole write succeeded. */
    public writtenPos: number,
    public committedPos: number,
    readonly createdUs: number,
  ) {}

  /** Opens an existing `current` for appending, cutting the torn tail past its committed length. */
  static async reopen(dir: string, entry: FileEntry): Promise<OpenFile> {
    const fh = await open(join(dir, CURRENT_NAME), 'r+');
    const h = await readFileHeader(fh);
    // Anything past the committed length was never promised.
    await fh.truncate(entry.committedBytes);
    return new OpenFile(fh, entry, h.commit.generation, entry.committedBytes, entry.committedBytes, h.createdUs);
  }

  /**
   * Writes a complete new `current` (header, dictionary, image) atomically via a tmp file
   * and a rename, and adds it to the archive's files; `done` are its frames, for the caller
   * to publish. Can be called again after any failure: the tmp file is rewritten from
   * scratch, and the file joins the list only once every step succeeded.
   */
  static async create(a: Archive, seq: number, start: FrameItem[]): Promise<{ file: OpenFile; done: Written[] }> {
    const createdUs = a.clockUs();
    const header = encodeHeader({ version: FORMAT_VERSION, archiveId: a.archiveId, seq, createdUs });
    const body = Buffer.concat(start.map((f) => f.bytes));
    const committed = HEADER_BYTES + body.length;
    header.set(encodeSlot({ generation: 0, committedBytes: committed }), SLOT_OFFSETS[0]);
    const tmp = join(a.dir, `${CURRENT_NAME}.tmp`);
    const tfh = await open(tmp, 'w+');
    try {
      await tfh.writeFile(Buffer.concat([header, body]));
      await tfh.datasync();
    } finally {
      await tfh.close();
    }
    await rename(tmp, join(a.dir, CURRENT_NAME));
    await fsyncDir(a.dir);
    const fh = await open(join(a.dir, CURRENT_NAME), 'r+');
    const entry = a.fileList.append({
      seq, name: CURRENT_NAME, location: 'local', firstTs: null, lastTs: null,
      committedBytes: HEADER_BYTES, sealed: false, damaged: false,
    });
    let at = HEADER_BYTES;
    const done = start.map((item) => {
      const w = { item, offset: at };
      at += item.bytes.length;
      return w;
    });
    return { file: new OpenFile(fh, entry, 0, committed, committed, createdUs), done };
  }

  get uncommittedBytes(): number {
    return this.writtenPos - this.committedPos;
  }

  /**
   * Writes frames at writtenPos, which moves only once all of them are written: after a
   * short or failed write (full disk) the retry writes them again over the same bytes.
   */
  async write(frames: FrameItem[]): Promise<number> {
    const total = frames.reduce((n, f) => n + f.bytes.length, 0);
    const { bytesWritten } = await this.fh.writev(frames.map((f) => f.bytes), this.writtenPos);
    if (bytesWritten !== total) {
      // A short write (disk full, signal): finish it from one buffer.
      const buf = Buffer.concat(frames.map((f) => f.bytes));
      let off = bytesWritten;
      while (off < total) {
        const r = await this.fh.write(buf, off, total - off, this.writtenPos + off);
        if (r.bytesWritten <= 0) throw new Error('write made no progress');
        off += r.bytesWritten;
      }
    }
    let at = this.writtenPos;
    for (const item of frames) {
      this.written.push({ item, offset: at });
      at += item.bytes.length;
    }
    this.writtenPos = at;
    return total;
  }

  /**
   * Two-phase commit: fdatasync, the committed length into the next header slot,
   * fdatasync. Returns the frames it committed, or undefined when nothing was written.
   */
  async commit(): Promise<Written[] | undefined> {
    if (this.writtenPos === this.committedPos) return undefined;
    const upto = this.writtenPos;
    const gen = this.generation + 1;
    await this.fh.datasync();
    await this.fh.write(encodeSlot({ generation: gen, committedBytes: upto }), 0, SLOT_BYTES, slotOffset(gen));
    await this.fh.datasync();
    this.generation = gen;
    this.committedPos = upto;
    const done = this.written;
    this.written = [];
    return done;
  }

  /**
   * After a failed commit: the frames since the last one, to be written again. A failed
   * fdatasync may have dropped their dirty pages, so the bytes on disk cannot be trusted.
   */
  takeUncommitted(): FrameItem[] {
    const items = this.written.map((w) => w.item);
    this.writtenPos = this.committedPos;
    this.written = [];
    return items;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
