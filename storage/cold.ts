/**
 * Cold storage: the archive hooks put, list and get (seed 003's `archive_cmds`) and local
 * retention. The contract each hook command must keep is in docs/archive-hooks.md. This
 * file holds the options, the list merge, single-flight gets and retention; shipping is in
 * cold-put.ts, a fetched file's checks in cold-fetch.ts, list output's parsing in
 * cold-list.ts and the hook processes in hooks.ts.
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
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TapedeckError } from '../protocol/errors.js';
import { parseTs } from '../protocol/time.js';
import type { Archive, RemoteStore } from './archive.js';
import type { FileEntry } from './file-list.js';
import type { BlockRow, PathRow, PutRow } from './catalog.js';
import { fileRowOf } from './catalog-rows.js';
import { HOOK_DEFAULTS, HOOK_LIST_TIMEOUT_MS, HookError, HookRunner, type HookCommand, type HookName, type HookPolicy, type HookStats } from './hooks.js';
import { ROTATED_NAME } from './segment-file.js';
import { parseListOutput, placeNewNames } from './cold-list.js';
import { PutShipper, type PutEvent } from './cold-put.js';
import { GetSlots, adoptFetched } from './cold-fetch.js';
import { fsyncDir } from './open-file.js';
import { sidecarPath } from './series-index/build.js';

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
  | PutEvent
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
  /** Put status of every rotated file and the queue shipping them. */
  private readonly shipper: PutShipper;
  private readonly fetches = new Map<number, Promise<void>>();
  private readonly getSlots = new GetSlots(COLD_LIMITS.getsConcurrentMax);
  private readonly evicting = new Map<string, Promise<void>>();
  private readonly fetchedAtMs = new Map<string, number>();
  private listTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private listing: Promise<void> | undefined;
  private stopped = false;
  private counters = { fetched: 0, evicted: 0, listRejected: 0, lastListMs: null as number | null, lastListError: null as string | null };
  private readonly onRotate = (e: { seq: number; name: string }): void => this.shipper.enqueue(e.name);

  private constructor(a: Archive, opts: ColdOptions) {
    super();
    this.a = a;
    const policy = (h: HookName): HookPolicy => ({ ...HOOK_DEFAULTS, ...(h === 'list' ? { timeoutMs: HOOK_LIST_TIMEOUT_MS } : {}), ...opts.policy?.[h] });
    this.hooks = new HookRunner(opts.hooks, { put: policy('put'), get: policy('get'), list: policy('list') }, a.logger);
    this.retention = opts.retention ?? { maxAgeMs: 0, maxBytes: 0 };
    this.listIntervalMs = opts.listIntervalMs ?? COLD_DEFAULTS.listIntervalMs;
    this.checkIntervalMs = opts.checkIntervalMs ?? COLD_DEFAULTS.checkIntervalMs;
    this.fetchedKeepMs = opts.fetchedKeepMs ?? COLD_DEFAULTS.fetchedKeepMs;
    this.shipper = new PutShipper(a, this.hooks, (event) => this.emit('event', event satisfies ColdEvent), COLD_LIMITS.putQueueMax);
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
    c.shipper.load(a.catalog.puts());
    if (c.hooks.has('get')) a.setRemote(c);
    a.on('rotate', c.onRotate);
    if (c.hooks.has('list')) {
      await c.refreshList().catch(() => undefined);
      if (c.listIntervalMs > 0) {
        c.listTimer = setInterval(() => void c.refreshList().catch(() => undefined), c.listIntervalMs);
        c.listTimer.unref();
      }
    }
    c.shipper.queueUnshipped();
    if (c.checkIntervalMs > 0) {
      c.checkTimer = setInterval(() => void c.check(), c.checkIntervalMs);
      c.checkTimer.unref();
    }
    void c.check();
    return c;
  }

  get stats(): ColdStats {
    let putsPending = 0;
    for (const f of this.a.files) if (f.location === 'local' && this.shipper.needsPut(f)) putsPending++;
    return {
      hooks: this.hooks.stats,
      putsPending,
      putQueue: this.shipper.queued,
      putsDeferred: this.shipper.deferred,
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
    return this.shipper.row(name) ?? { name, status: 'pending', attempts: 0, error: null, updatedMs: 0 };
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
      if (this.hooks.has('put') && !this.shipper.has(f.name)) this.shipper.confirm(f.name);
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
    await this.getSlots.acquire();
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
      await adoptFetched(this.a, entry, tmp, ({ blocks, paths }) => {
        this.recordRow(entry, blocks, paths);
        // It came from cold storage, so it is there: no put needed.
        if (this.hooks.has('put') && !this.shipper.isDone(entry.name)) this.shipper.confirm(entry.name);
      });
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
      this.getSlots.release();
    }
  }

  // ---------------------------------------------------------------- retention

  /** Runs retention and queues puts that failed; resolves when done (one check at a time). */
  check(): Promise<void> {
    this.checking ??= (async () => {
      try {
        if (this.stopped) return;
        this.shipper.saveUnsaved();
        this.shipper.queueUnshipped();
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
    // Local bytes are the segments and their per-series sidecars (docs/prometheus.md: up to
    // about twice a segment's size, deleted with it): a disk sized to max_bytes must hold both.
    let localBytes = 0;
    const sidecarBytes = new Map<string, number>();
    for (const f of this.a.files) {
      if (f.location !== 'local') continue;
      const side = await this.sidecarBytesOf(f);
      sidecarBytes.set(f.name, side);
      localBytes += f.committedBytes + side;
    }
    const candidates = this.a.files.filter((f) => f.location === 'local' && f.sealed && ROTATED_NAME.test(f.name)
      && this.shipper.isDoneRecorded(f.name)
      && Date.now() - (this.fetchedAtMs.get(f.name) ?? -Infinity) >= this.fetchedKeepMs);
    for (const f of candidates) {
      if (this.stopped || this.a.isClosed) return;
      const endUs = f.lastTs ?? parseTs(f.name);
      const old = maxAgeMs > 0 && endUs < nowUs - maxAgeMs * 1000;
      const over = maxBytes > 0 && localBytes > maxBytes;
      if (!old && !over) continue;
      if (await this.evict(f)) localBytes -= f.committedBytes + (sidecarBytes.get(f.name) ?? 0);
    }
  }

  /** The size of a local file's sidecar (0 when it has none, or what is there is not a regular file). */
  private async sidecarBytesOf(f: FileEntry): Promise<number> {
    try {
      const st = await lstat(sidecarPath(this.a, f.name));
      return st.isFile() ? st.size : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Removes a shipped file from local disk; it stays in the catalog as remote. The local
   * copy goes first and the catalog's row after: on a full disk the row cannot be written
   * until space is given back, and retention is what gives it back (a row written first
   * failed SQLITE_FULL, so nothing was ever evicted and the recorder stayed refused). A
   * row not written (a full disk, a crash) is no loss: an open finds a shipped file gone
   * from disk remote (reconcile).
   */
  private async evict(f: FileEntry): Promise<boolean> {
    if (this.fetches.has(f.seq) || !this.a.releaseFile(f.seq)) return false;
    this.a.fileList.markLocation(f.seq, 'remote');
    const removing = rm(join(this.a.dir, f.name), { force: true }).then(() => fsyncDir(this.a.dir));
    this.evicting.set(f.name, removing.catch(() => undefined));
    try {
      await removing;
    } catch (err) {
      if (await lstat(join(this.a.dir, f.name)).then(() => true, () => false)) this.a.fileList.markLocation(f.seq, 'local');
      throw err;
    } finally {
      this.evicting.delete(f.name);
    }
    try {
      this.recordRow(f, [], []);
    } catch (err) {
      this.a.logger.warn({ name: f.name, error: (err as Error).message }, 'retention: the catalog could not record an evicted file as remote; the next open does');
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
    this.a.catalog.recordFile(fileRowOf(f), blocks, paths);
  }

  /** Stops timers, kills running hooks and waits for puts and fetches to settle. Before archive.close(). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.shipper.stop();
    clearInterval(this.listTimer);
    clearInterval(this.checkTimer);
    this.a.off('rotate', this.onRotate);
    this.hooks.stop();
    await Promise.allSettled([this.shipper.shipping, this.checking, this.listing, ...this.fetches.values()]);
    this.a.detachRemote(this);
  }
}
