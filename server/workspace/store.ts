/**
 * The workspace: bookmarks and named layouts of the web player, kept beside the archive in
 * one small JSON file (WORKSPACE_FILE). Every change rewrites the file whole and atomically
 * (temp file, fsync, rename, fsync of the directory), so a crash at any instant leaves
 * either the old file or the new one, never a mix. Changes are serialised through one
 * promise chain: two requests never write at once, and each sees the other's result.
 *
 * The file carries a CRC32C of its JSON (storage/workspace-file.ts, whose rule verify checks
 * it by too). A file that cannot be read as a workspace (damaged by hand, or by a disk, its
 * CRC32C failing) is moved aside
 * as `workspace.json.damaged-<epoch ms>` and the workspace starts empty: the server starts,
 * the log says what was moved, and nothing is silently overwritten.
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError } from '../../protocol/errors.js';
import { fsyncDir } from '../../storage/open-file.js';
import { parseWorkspace, WORKSPACE_FILE, WORKSPACE_FORMAT_VERSION, workspaceText, type Bookmark, type Layout, type WorkspaceFile } from '../../storage/workspace-file.js';
import { SERVER_LIMITS } from '../limits.js';

export { WORKSPACE_FILE } from '../../storage/workspace-file.js';
export type { Bookmark, Layout } from '../../storage/workspace-file.js';

export interface WorkspaceLog {
  warn(obj: object, msg: string): void;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

export class WorkspaceStore {
  private bookmarks: Bookmark[];
  private layouts: Map<string, Layout>;
  private chain: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string, data: WorkspaceFile) {
    this.bookmarks = data.bookmarks;
    this.layouts = new Map(data.layouts.map((l) => [l.name, l]));
  }

  /**
   * Never fails: the workspace is an annotation of the archive, and a problem with it must
   * not stop the server from recording and serving. A file it cannot read or move aside is
   * logged and left alone, and the workspace starts empty (its writes then fail loudly).
   */
  static async open(dir: string, log?: WorkspaceLog): Promise<WorkspaceStore> {
    const file = join(dir, WORKSPACE_FILE);
    const empty = (): WorkspaceStore => new WorkspaceStore(dir, { version: WORKSPACE_FORMAT_VERSION, bookmarks: [], layouts: [] });
    let text: string | undefined;
    try {
      // A temp file left by a crash before its rename is an unfinished change: drop it.
      await rm(`${file}.tmp`, { force: true });
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty();
      log?.warn({ file, err }, 'workspace file cannot be read: starting with an empty workspace');
      return empty();
    }
    const data = parseWorkspace(text);
    if (data !== null) return new WorkspaceStore(dir, data);
    const aside = `${file}.damaged-${Date.now()}`;
    try {
      await rename(file, aside);
      log?.warn({ file, movedTo: aside, code: 'TPD_CORRUPT_BLOCK' }, 'workspace file is not readable JSON of the expected shape: moved aside, starting with an empty workspace');
    } catch (err) {
      log?.warn({ file, err, code: 'TPD_CORRUPT_BLOCK' }, 'workspace file is not readable JSON of the expected shape and cannot be moved aside: starting with an empty workspace');
    }
    return empty();
  }

  /** Bookmarks in time order (ties by creation). */
  listBookmarks(): readonly Bookmark[] {
    return this.bookmarks;
  }

  addBookmark(b: Omit<Bookmark, 'id' | 'createdTs'>, nowUs: number): Promise<Bookmark> {
    if (utf8Bytes(b.note) > SERVER_LIMITS.bookmarkNoteBytesMax) {
      throw new TapedeckError('TPD_BODY_TOO_LARGE', `the note is ${utf8Bytes(b.note)} bytes; bookmarkNoteBytesMax is ${SERVER_LIMITS.bookmarkNoteBytesMax}`);
    }
    if (utf8Bytes(b.url) > SERVER_LIMITS.bookmarkUrlBytesMax) {
      throw new TapedeckError('TPD_BODY_TOO_LARGE', `the URL state is ${utf8Bytes(b.url)} bytes; bookmarkUrlBytesMax is ${SERVER_LIMITS.bookmarkUrlBytesMax}`);
    }
    if (b.end !== undefined && b.end < b.ts) throw new TapedeckError('TPD_BAD_ARGUMENT', '"end" is before "ts"');
    return this.change(() => {
      if (this.bookmarks.length >= SERVER_LIMITS.workspaceBookmarksMax) {
        throw new TapedeckError('TPD_BAD_ARGUMENT', `the workspace holds workspaceBookmarksMax (${SERVER_LIMITS.workspaceBookmarksMax}) bookmarks: delete some first`);
      }
      const made: Bookmark = { id: randomUUID(), ts: b.ts, ...(b.end !== undefined ? { end: b.end } : {}), note: b.note, createdTs: nowUs, url: b.url };
      return { bookmarks: [...this.bookmarks, made].sort((x, y) => x.ts - y.ts || x.createdTs - y.createdTs), result: made };
    });
  }

  /** False when no bookmark has this id. */
  deleteBookmark(id: string): Promise<boolean> {
    return this.change(() => {
      const next = this.bookmarks.filter((b) => b.id !== id);
      return next.length === this.bookmarks.length ? { result: false } : { bookmarks: next, result: true };
    });
  }

  listLayouts(): readonly Layout[] {
    return [...this.layouts.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  getLayout(name: string): Layout | undefined {
    return this.layouts.get(name);
  }

  /** Creates or replaces; true when it created. */
  putLayout(name: string, layout: Record<string, unknown>, nowUs: number): Promise<boolean> {
    const bytes = utf8Bytes(JSON.stringify(layout));
    if (bytes > SERVER_LIMITS.workspaceLayoutBytesMax) {
      throw new TapedeckError('TPD_BODY_TOO_LARGE', `the layout is ${bytes} bytes of JSON; workspaceLayoutBytesMax is ${SERVER_LIMITS.workspaceLayoutBytesMax}`);
    }
    return this.change(() => {
      const created = !this.layouts.has(name);
      if (created && this.layouts.size >= SERVER_LIMITS.workspaceLayoutsMax) {
        throw new TapedeckError('TPD_BAD_ARGUMENT', `the workspace holds workspaceLayoutsMax (${SERVER_LIMITS.workspaceLayoutsMax}) layouts: delete some first`);
      }
      return { layouts: new Map(this.layouts).set(name, { name, layout, updatedTs: nowUs }), result: created };
    });
  }

  deleteLayout(name: string): Promise<boolean> {
    return this.change(() => {
      if (!this.layouts.has(name)) return { result: false };
      const next = new Map(this.layouts);
      next.delete(name);
      return { layouts: next, result: true };
    });
  }

  /**
   * Runs `plan` after every earlier change, writes the state it plans, and only then makes
   * it the state in memory: a failed write (full disk, read-only directory) changes nothing.
   */
  private change<T>(plan: () => Change<T>): Promise<T> {
    const run = this.chain.then(async () => {
      const p = plan();
      if (p.bookmarks === undefined && p.layouts === undefined) return p.result;
      const bookmarks = p.bookmarks ?? this.bookmarks;
      const layouts = p.layouts ?? this.layouts;
      await this.write(workspaceText(bookmarks, layouts.values()));
      this.bookmarks = bookmarks;
      this.layouts = layouts;
      return p.result;
    });
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }

  private async write(text: string): Promise<void> {
    const file = join(this.dir, WORKSPACE_FILE);
    const tmp = `${file}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      await fsyncDir(this.dir);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw writeError(err as NodeJS.ErrnoException);
    }
  }
}

/** What a change leaves: the new lists (absent: unchanged; neither: nothing to write) and the answer. */
interface Change<T> {
  bookmarks?: Bookmark[];
  layouts?: Map<string, Layout>;
  result: T;
}

function writeError(err: NodeJS.ErrnoException): TapedeckError {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return new TapedeckError('TPD_DISK_FULL', 'the disk holding the archive is full: the workspace was not changed', { cause: err });
  if (err.code === 'EROFS' || err.code === 'EACCES' || err.code === 'EPERM') return new TapedeckError('TPD_ARCHIVE_READONLY', 'the archive directory is not writable: the workspace was not changed', { cause: err });
  return new TapedeckError('TPD_IO', 'the workspace file could not be written', { cause: err });
}
