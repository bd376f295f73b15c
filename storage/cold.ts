/**
 * Cold storage: the archive hooks put, list and get (seed 003's `archive_cmds`) and local
 * retention. The contract each hook command must keep is in docs/archive-hooks.md.
 *
 * - put: every rotated file is shipped in the background (one at a time, in rotation
 *   order); recording never waits. Put status lives in the catalog (table `puts`); a file
 *   is kept on local disk until its put is confirmed.
 * - list: at start and every listIntervalMs. Names not yet known join the archive as
 *   remote files, known by name only until fetched.
 * - get: a read of a remote file fetches it first, one fetch per file however many readers
 *   wait, at most getsConcurrentMax at once. The fetched file is checked (archive id, seq),
 *   indexed if it never was, and renamed into place.
 * - retention: every checkIntervalMs, rotated files whose put is confirmed are removed
 *   from local disk, oldest first, while they are older than maxAgeMs or local files
 *   exceed maxBytes. They stay in the catalog (with their block tables) as remote.
 */
import { EventEmitter } from 'node:events';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { parseTs } from '../protocol/time.js';
import type { Archive, RemoteStore } from './archive.js';
import { isIndexed, type FileEntry } from './file-list.js';
import type { BlockRow, PathRow, PutRow, PutStatus } from './catalog.js';
import { BlockType } from './codec/frame.js';
import { HEADER_BYTES } from './codec/header.js';
import { HOOK_DEFAULTS, HOOK_LIST_TIMEOUT_MS, HookError, HookRunner, type HookCommand, type HookName, type HookPolicy, type HookStats } from './hooks.js';
import { ROTATED_NAME, readFileHeader, scanBlocks } from './segment-file.js';
import { parseListOutput, placeNewNames } from './cold-list.js';
import { fsyncDir } from './open-file.js';

export const COLD_LIMITS = {
  /** Rotated files waiting for put; past this, files stay pending and the next check re-queues them. */
  putQueueMax: 1024,
  /** Get hooks running at once (each fetches one file); readers of other files wait. */
  getsConcurrentMax: 2,
} as const;

export const COLD_DEFAULTS = {
  /** How often the list hook runs after the one at start. */
  listIntervalMs: 300_000,
  /** How often retention runs and failed puts are queued again. */
  checkIntervalMs: 60_000,
  /** A fetched file is not evicted again for this long (readers are likely to come back). */
  fetchedKeepMs: 3_600_000,
} as const;

/** Suffix of the path a get hook writes to; renamed to the file's name once checked. */
export const FETCH_SUFFIX = '.fetching';

export interface RetentionPolicy {
  /** Local rotated files whose last batch is older than this may be evicted; 0 = no age limit. */
  maxAgeMs: number;
  /** Evict (oldest first) while local files hold more than this; 0 = no size limit. */
  maxBytes: number;
}

export interface ColdOptions {
  hooks: Partial<Record<HookName, HookCommand | null>>;
  policy?: Partial<Record<HookName, Partial<HookPolicy>>>;
  retention?: RetentionPolicy;
  listIntervalMs?: number;
  checkIntervalMs?: number;
  fetchedKeepMs?: number;
}

export interface ColdStats {
  hooks: HookStats;
  /** Local rotated files whose put is not confirmed yet. */
  putsPending: number;
  putQueue: number;
  /** Rotations not queued because the queue was full (the next check queues them). */
  putsDeferred: number;
  fetchesInFlight: number;
  fetched: number;
  evicted: number;
  /** Lines of list output that were not valid file names. */
  listRejected: number;
  lastListMs: number | null;
  lastListError: string | null;
}

export type ColdEvent =
  | { type: 'put'; name: string; ok: boolean; error?: string }
  | { type: 'fetch'; name: string; ok: boolean; error?: string }
  | { type: 'evict'; name: string }
  | { type: 'list'; names: number; added: number };

export class ColdStorage extends EventEmitter implements RemoteStore {
  readonly hooks: HookRunner;
  readonly retention: RetentionPolicy;
  private readonly a: Archive;
  private readonly listIntervalMs: number;
  private readonly checkIntervalMs: number;
  private readonly fetchedKeepMs: number;
  private readonly puts = new Map<string, PutRow>();
  private readonly putQueue: string[] = [];
  private putLoop: Promise<void> | undefined;
  private putting = false;
  private readonly fetches = new Map<number, Promise<void>>();
  private getsRunning = 0;
  private readonly getWaiters: Array<() => void> = [];
  private readonly evicting = new Map<string, Promise<void>>();
  private readonly fetchedAtMs = new Map<string, number>();
  private listTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private listing: Promise<void> | undefined;
  private stopped = false;
  private counters = { putsDeferred: 0, fetched: 0, evicted: 0, listRejected: 0, lastListMs: null as number | null, lastListError: null as string | null };
  private readonly onRotate = (e: { seq: number; name: string }): void => this.enqueuePut(e.name);

  private constructor(a: Archive, opts: ColdOptions) {
    super();
    this.a = a;
    const policy = (h: HookName): HookPolicy => ({ ...HOOK_DEFAULTS, ...(h === 'list' ? { timeoutMs: HOOK_LIST_TIMEOUT_MS } : {}), ...opts.policy?.[h] });
    this.hooks = new HookRunner(opts.hooks, { put: policy('put'), get: policy('get'), list: policy('list') }, a.logger);
    this.retention = opts.retention ?? { maxAgeMs: 0, maxBytes: 0 };
    this.listIntervalMs = opts.listIntervalMs ?? COLD_DEFAULTS.listIntervalMs;
    this.checkIntervalMs = opts.checkIntervalMs ?? COLD_DEFAULTS.checkIntervalMs;
    this.fetchedKeepMs = opts.fetchedKeepMs ?? COLD_DEFAULTS.fetchedKeepMs;
  }

  /**
   * Starts cold storage on a writable archive: runs list once (a failure is logged, not
   * fatal), queues puts of rotated files not yet shipped, and starts the timers.
   */
  static async start(a: Archive, opts: ColdOptions): Promise<ColdStorage> {
    if (a.readonly) throw new TapedeckError('TPD_ARCHIVE_READONLY', 'archive hooks need an archive opened for writing (a record section)');
    const c = new ColdStorage(a, opts);
    for (const name of await readdir(a.dir)) {
      if (name.endsWith(FETCH_SUFFIX)) await rm(join(a.dir, name), { force: true });
    }
    for (const row of a.catalog.puts()) c.puts.set(row.name, row);
    if (c.hooks.has('get')) a.setRemote(c);
    a.on('rotate', c.onRotate);
    if (c.hooks.has('list')) {
      await c.refreshList().catch(() => undefined);
      if (c.listIntervalMs > 0) {
        c.listTimer = setInterval(() => void c.refreshList().catch(() => undefined), c.listIntervalMs);
        c.listTimer.unref();
      }
    }
    c.queueUnshipped();
    if (c.checkIntervalMs > 0) {
      c.checkTimer = setInterval(() => void c.check(), c.checkIntervalMs);
      c.checkTimer.unref();
    }
    void c.check();
    return c;
  }

  get stats(): ColdStats {
    let putsPending = 0;
    for (const f of this.a.files) if (f.location === 'local' && this.needsPut(f)) putsPending++;
    return {
      hooks: this.hooks.stats,
      putsPending,
      putQueue: this.putQueue.length,
      putsDeferred: this.counters.putsDeferred,
      fetchesInFlight: this.fetches.size,
      fetched: this.counters.fetched,
      evicted: this.counters.evicted,
      listRejected: this.counters.listRejected,
      lastListMs: this.counters.lastListMs,
      lastListError: this.counters.lastListError,
    };
  }

  /** Put status of a rotated file; undefined for `current` or when no put hook is configured. */
  putStatus(name: string): PutRow | undefined {
    if (!this.hooks.has('put') || !ROTATED_NAME.test(name)) return undefined;
    return this.puts.get(name) ?? { name, status: 'pending', attempts: 0, error: null, updatedMs: 0 };
  }

  // ---------------------------------------------------------------- put

  private needsPut(f: FileEntry): boolean {
    return this.hooks.has('put') && f.sealed && ROTATED_NAME.test(f.name) && this.puts.get(f.name)?.status !== 'done';
  }

  private queueUnshipped(): void {
    for (const f of this.a.files) if (f.location === 'local' && this.needsPut(f)) this.enqueuePut(f.name);
  }

  private enqueuePut(name: string): void {
    if (!this.hooks.has('put') || this.stopped || this.putQueue.includes(name)) return;
    if (this.putQueue.length >= COLD_LIMITS.putQueueMax) {
      this.counters.putsDeferred++;
      this.a.logger.warn({ name, putQueueMax: COLD_LIMITS.putQueueMax }, 'put queue full; the file is shipped by a later check');
      return;
    }
    this.putQueue.push(name);
    if (!this.putting) this.putLoop = this.runPuts();
  }

  /** Ships queued files one at a time; a file leaves the queue once its put has ended. */
  private async runPuts(): Promise<void> {
    this.putting = true;
    try {
      while (this.putQueue.length > 0 && !this.stopped) {
        const event = await this.putOne(this.putQueue[0] as string);
        this.putQueue.shift();
        if (event) this.emit('event', event);
      }
    } finally {
      this.putting = false;
    }
  }

  private async putOne(name: string): Promise<ColdEvent | undefined> {
    const f = this.a.files.find((x) => x.name === name);
    if (!f || f.location !== 'local' || !this.needsPut(f)) return undefined;
    const row = this.puts.get(name) ?? { name, status: 'pending' as PutStatus, attempts: 0, error: null, updatedMs: 0 };
    // Recorded before the hook runs: a put cut short (crash, stop) leaves this row, so a
    // partial copy that list shows later is not taken for a shipped file.
    if (!this.puts.has(name)) this.setPut(row);
    try {
      await this.hooks.run('put', [join(this.a.dir, name), name], (err) => {
        this.setPut({ ...row, status: 'pending', attempts: ++row.attempts, error: err.message });
      });
      this.setPut({ ...row, status: 'done', attempts: row.attempts + 1, error: null });
      this.a.logger.info({ name }, 'put: file shipped');
      return { type: 'put', name, ok: true };
    } catch (err) {
      const message = (err as Error).message;
      if (!this.stopped) {
        this.setPut({ ...row, status: 'failed', error: message });
        this.a.logger.error({ name, error: message }, 'put failed; the file stays local and is retried at the next check');
      }
      return { type: 'put', name, ok: false, error: message };
    }
  }

  private setPut(row: PutRow): void {
    const r = { ...row, updatedMs: Date.now() };
    this.puts.set(r.name, r);
    if (!this.a.isClosed) this.a.catalog.setPut(r);
  }

  // ---------------------------------------------------------------- list

  /** Runs the list hook and merges the names it prints into the archive (one run at a time). */
  refreshList(): Promise<void> {
    this.listing ??= this.listOnce().finally(() => {
      this.listing = undefined;
    });
    return this.listing;
  }

  private async listOnce(): Promise<void> {
    let stdout: string;
    try {
      stdout = (await this.hooks.run('list', [])).stdout;
    } catch (err) {
      this.counters.lastListError = (err as Error).message;
      throw err;
    }
    if (this.stopped || this.a.isClosed) return;
    const { names: listed, rejected } = parseListOutput(stdout);
    for (const line of rejected) {
      this.counters.listRejected++;
      this.a.logger.warn({ line: line.slice(0, 100) }, 'list: not a rotated file name (RFC 3339 with 6 fractional digits, e.g. 2026-11-23T07:45:12.123456Z); ignored');
    }
    const known = new Set<string>();
    for (const f of this.a.files) {
      known.add(f.name);
      if (!listed.has(f.name)) continue;
      // Listed remotely and never put by us (e.g. the put table was lost with the catalog):
      // the file's put is confirmed. A put that was ever started (running, failed, cut
      // short by a crash) may have left a partial copy that list shows, so only a put
      // that ends well confirms those.
      if (this.hooks.has('put') && !this.puts.has(f.name)) {
        this.setPut({ name: f.name, status: 'done', attempts: 0, error: null, updatedMs: 0 });
      }
      if (f.location === 'missing') {
        this.a.fileList.markLocation(f.seq, 'remote');
        this.recordRow(f, [], []);
      }
    }
    const added = this.addRemote([...listed].filter((n) => !known.has(n)));
    this.counters.lastListMs = Date.now();
    this.counters.lastListError = null;
    this.emit('event', { type: 'list', names: listed.size, added } satisfies ColdEvent);
  }

  /** Adds files known only by name, at the seqs placeNewNames gives them (cold-list.ts). */
  private addRemote(names: string[]): number {
    const { placed, refused } = placeNewNames(this.a.files, names);
    for (const run of refused) {
      this.a.logger.warn({ names: run.names.slice(0, 5), count: run.names.length, between: run.between }, 'list: more files than free seqs between known files; ignored');
      this.counters.listRejected += run.names.length;
    }
    for (const { seq, name } of placed) {
      // Until fetched: the file ends at its name and starts after the file before it (in
      // seq order, so that may be one added just now).
      const before = this.a.fileList.before(seq);
      const firstTs = before?.lastTs != null ? before.lastTs + 1 : null;
      const f = this.a.fileList.insertRemote({ seq, name, firstTs, lastTs: parseTs(name), committedBytes: 0, sealed: true, damaged: false });
      this.recordRow(f, [], []);
    }
    if (placed.length > 0) this.a.logger.info({ added: placed.length }, 'list: remote files added to the archive');
    return placed.length;
  }

  // ---------------------------------------------------------------- get

  fetch(entry: FileEntry): Promise<void> {
    let p = this.fetches.get(entry.seq);
    if (!p) {
      p = this.fetchOnce(entry).finally(() => this.fetches.delete(entry.seq));
      this.fetches.set(entry.seq, p);
    }
    return p;
  }

  private async fetchOnce(entry: FileEntry): Promise<void> {
    await this.evicting.get(entry.name);
    await this.acquireGet();
    const tmp = join(this.a.dir, entry.name + FETCH_SUFFIX);
    try {
      if (entry.location === 'local') return;
      if (this.stopped || this.a.isClosed) throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} is remote and the archive is shutting down`, { file: entry.name });
      await rm(tmp, { force: true });
      try {
        await this.hooks.run('get', [tmp, entry.name]);
      } catch (err) {
        // Clients get what happened; the command and its stderr (paths, hosts) go to the log.
        this.a.logger.error({ name: entry.name, error: (err as Error).message }, 'get failed');
        const why = err instanceof HookError ? err.summary : 'failed';
        throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} could not be fetched from cold storage: the get hook ${why} (details in the server log)`, { file: entry.name }, { cause: err });
      }
      await this.adopt(entry, tmp);
      this.counters.fetched++;
      this.fetchedAtMs.set(entry.name, Date.now());
      this.a.logger.info({ name: entry.name }, 'get: file fetched');
      this.emit('event', { type: 'fetch', name: entry.name, ok: true } satisfies ColdEvent);
    } catch (err) {
      const message = (err as Error).message;
      this.a.logger.error({ name: entry.name, error: message }, 'get failed');
      this.emit('event', { type: 'fetch', name: entry.name, ok: false, error: message } satisfies ColdEvent);
      throw err;
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
      this.releaseGet();
    }
  }

  /** Checks a fetched file, indexes it if it never was, and moves it into place. */
  private async adopt(entry: FileEntry, tmp: string): Promise<void> {
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
      if (h.archiveId !== this.a.archiveId) fail('TPD_FOREIGN_FILE', `it belongs to archive ${h.archiveId}, not ${this.a.archiveId}`);
      if (h.seq !== entry.seq) fail('TPD_CORRUPT_HEADER', `it holds seq ${h.seq} where the archive expects ${entry.seq}`);
      committed = Math.min(h.commit.committedBytes, (await fh.stat()).size);
      if (isIndexed(entry)) {
        if (committed < entry.committedBytes) fail('TPD_CORRUPT_BLOCK', `it commits ${committed} bytes, the catalog indexed ${entry.committedBytes}`);
        committed = entry.committedBytes;
      } else {
        const res = await scanBlocks(fh, HEADER_BYTES, committed);
        blocks = res.blocks;
        committed = res.endOffset;
        damaged = res.problems.length > 0;
        for (const p of res.problems) this.a.logger.warn({ file: entry.name, ...p }, 'archive problem in a fetched file');
        for (const d of res.paths) {
          if (d.id !== this.a.paths.length) continue;
          this.a.definePath(d.path, d.firstTs);
          newPaths.push({ id: d.id, path: d.path, firstTs: d.firstTs });
        }
      }
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.a.dir, entry.name));
    await fsyncDir(this.a.dir);
    if (!isIndexed(entry)) {
      let firstTs: number | null = null;
      let lastTs: number | null = null;
      for (const b of blocks) {
        if (b.type !== BlockType.DELTA) continue;
        firstTs ??= b.firstTs;
        lastTs = b.lastTs;
      }
      this.a.fileList.setIndexed(entry.seq, { firstTs, lastTs, committedBytes: committed, damaged });
    }
    this.a.fileList.markLocation(entry.seq, 'local');
    this.recordRow(entry, blocks, newPaths);
    // It came from cold storage, so it is there: no put needed.
    if (this.hooks.has('put') && this.puts.get(entry.name)?.status !== 'done') {
      this.setPut({ name: entry.name, status: 'done', attempts: 0, error: null, updatedMs: 0 });
    }
  }

  private acquireGet(): Promise<void> {
    if (this.getsRunning < COLD_LIMITS.getsConcurrentMax) {
      this.getsRunning++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.getWaiters.push(resolve));
  }

  private releaseGet(): void {
    const next = this.getWaiters.shift();
    if (next) next();
    else this.getsRunning--;
  }

  // ---------------------------------------------------------------- retention

  /** Runs retention and queues puts that failed; resolves when done (one check at a time). */
  check(): Promise<void> {
    this.checking ??= (async () => {
      try {
        if (this.stopped) return;
        this.queueUnshipped();
        await this.enforceRetention();
      } catch (err) {
        this.a.logger.error({ error: (err as Error).message }, 'retention check failed');
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async enforceRetention(): Promise<void> {
    const { maxAgeMs, maxBytes } = this.retention;
    if (maxAgeMs <= 0 && maxBytes <= 0) return;
    const nowUs = this.a.clockUs();
    let localBytes = 0;
    for (const f of this.a.files) if (f.location === 'local') localBytes += f.committedBytes;
    const candidates = this.a.files.filter((f) => f.location === 'local' && f.sealed && ROTATED_NAME.test(f.name)
      && this.puts.get(f.name)?.status === 'done'
      && Date.now() - (this.fetchedAtMs.get(f.name) ?? -Infinity) >= this.fetchedKeepMs);
    for (const f of candidates) {
      if (this.stopped || this.a.isClosed) return;
      const endUs = f.lastTs ?? parseTs(f.name);
      const old = maxAgeMs > 0 && endUs < nowUs - maxAgeMs * 1000;
      const over = maxBytes > 0 && localBytes > maxBytes;
      if (!old && !over) continue;
      if (await this.evict(f)) localBytes -= f.committedBytes;
    }
  }

  /** Removes a shipped file from local disk; it stays in the catalog as remote. */
  private async evict(f: FileEntry): Promise<boolean> {
    if (this.fetches.has(f.seq) || !this.a.releaseFile(f.seq)) return false;
    this.a.fileList.markLocation(f.seq, 'remote');
    this.recordRow(f, [], []);
    const removing = rm(join(this.a.dir, f.name), { force: true }).then(() => fsyncDir(this.a.dir));
    this.evicting.set(f.name, removing.catch(() => undefined));
    try {
      await removing;
    } finally {
      this.evicting.delete(f.name);
    }
    this.fetchedAtMs.delete(f.name);
    this.counters.evicted++;
    this.a.logger.info({ name: f.name, bytes: f.committedBytes }, 'retention: local copy removed; the file stays in the archive as remote');
    this.emit('event', { type: 'evict', name: f.name } satisfies ColdEvent);
    return true;
  }

  // ---------------------------------------------------------------- shared

  private recordRow(f: FileEntry, blocks: readonly BlockRow[], paths: readonly PathRow[]): void {
    if (this.a.isClosed || !this.a.catalogWritable) return;
    this.a.catalog.recordFile(
      { seq: f.seq, name: f.name, location: f.location, firstTs: f.firstTs, lastTs: f.lastTs, indexedBytes: f.committedBytes, sealed: f.sealed },
      blocks,
      paths,
    );
  }

  /** Stops timers, kills running hooks and waits for puts and fetches to settle. Before archive.close(). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.listTimer);
    clearInterval(this.checkTimer);
    this.a.off('rotate', this.onRotate);
    this.hooks.stop();
    await Promise.allSettled([this.putLoop, this.checking, this.listing, ...this.fetches.values()]);
    this.a.detachRemote(this);
  }
}
