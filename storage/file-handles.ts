/**
 * The archive's shared read handles: one open handle per file, at most
 * STORAGE_LIMITS.openFilesMax (idle ones closed first), counted while a read uses them so
 * that eviction (cold storage) never closes a handle under a read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { STORAGE_LIMITS } from './limits.js';
import type { FileEntry } from './file-list.js';

interface Handle {
  fh: Promise<FileHandle>;
  busy: number;
  /** The generation of the file it opened (FileEntry.gen): a replaced file's handle reads the old bytes. */
  gen: number;
  /** Replaced: closed once no read uses it. */
  retired?: boolean;
}

export class FileHandles {
  private readonly dir: string;
  private readonly closed: () => boolean;
  private readonly handles = new Map<number, Handle>();

  /** `closed` tells whether the archive is closed: every read then fails TPD_ARCHIVE_CLOSED. */
  constructor(dir: string, closed: () => boolean) {
    this.dir = dir;
    this.closed = closed;
  }

  /** Runs `fn` on the file's handle (opened on first use); system errors become TPD_IO. */
  async with<T>(entry: FileEntry, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    if (this.closed()) throw new TapedeckError('TPD_ARCHIVE_CLOSED', 'archive is closed');
    if (entry.location !== 'local') {
      throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} is ${entry.location}`, { file: entry.name });
    }
    let h = this.handles.get(entry.seq);
    if (h !== undefined && h.gen !== entry.gen) {
      // The file was replaced (a compaction): the old handle reads the old bytes.
      this.retire(entry.seq);
      h = undefined;
    }
    if (!h) {
      const fhP = this.openEntry(entry);
      const opened: Handle = { fh: fhP, busy: 0, gen: entry.gen };
      fhP.catch(() => {
        if (this.handles.get(entry.seq) === opened) this.handles.delete(entry.seq);
      });
      h = opened;
      this.handles.set(entry.seq, h);
      this.evict();
    }
    const held = h;
    held.busy++;
    try {
      return await fn(await h.fh);
    } catch (err) {
      if (isTapedeckError(err)) throw err;
      // The system's message names the absolute path: keep it in `cause`, not in the message.
      throw new TapedeckError('TPD_IO', `reading ${entry.name}: ${(err as NodeJS.ErrnoException).code ?? 'I/O error'}`, { file: entry.name }, { cause: err });
    } finally {
      held.busy--;
      if (held.retired && held.busy === 0) void held.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  /**
   * The file of `seq` was replaced on disk (a compaction renamed over it): its handle is let
   * go, closed at once when idle, else when the last read on it ends (it holds the old inode).
   */
  retire(seq: number): void {
    const h = this.handles.get(seq);
    if (!h) return;
    this.handles.delete(seq);
    h.retired = true;
    if (h.busy === 0) void h.fh.then((fh) => fh.close()).catch(() => undefined);
  }

  /**
   * Opens a file by its entry's name. The writer renames `current` on disk before it renames
   * the entry (writer.renameCurrent): an open racing the rename fails with ENOENT and is tried
   * again under the new name, once the rename's continuation has run.
   */
  private async openEntry(entry: FileEntry): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      const name = entry.name;
      try {
        return await open(join(this.dir, name), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= STORAGE_LIMITS.rotationRaceOpenTries) throw err;
        if (entry.name === name) await new Promise((resolve) => setImmediate(resolve));
        if (entry.name === name) throw err;
      }
    }
  }

  /** Closes a file's handle so that the file can be removed (eviction); false while a read uses it. */
  release(seq: number): boolean {
    const h = this.handles.get(seq);
    if (!h) return true;
    if (h.busy > 0) return false;
    this.handles.delete(seq);
    void h.fh.then((fh) => fh.close()).catch(() => undefined);
    return true;
  }

  private evict(): void {
    if (this.handles.size <= STORAGE_LIMITS.openFilesMax) return;
    for (const [seq, h] of this.handles) {
      if (this.handles.size <= STORAGE_LIMITS.openFilesMax) break;
      if (h.busy > 0) continue;
      this.handles.delete(seq);
      void h.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  /** Closes every handle (at the archive's close). */
  async closeAll(): Promise<void> {
    for (const h of this.handles.values()) await h.fh.then((fh) => fh.close()).catch(() => undefined);
    this.handles.clear();
  }
}
