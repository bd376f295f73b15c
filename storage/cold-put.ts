/**
 * Shipping rotated files with the put hook: one at a time, in rotation order, in the
 * background (recording never waits). Each file's put status lives in the catalog (table
 * `puts`), written before the hook runs, so a put cut short (crash, stop) is never taken
 * for a shipped file; a file stays on local disk until its put is confirmed. Retention,
 * list and get (cold.ts) read and set the status through this class.
 */
import { join } from 'node:path';
import type { Archive } from './archive.js';
import type { FileEntry } from './file-list.js';
import type { PutRow, PutStatus } from './catalog.js';
import type { HookRunner } from './hooks.js';
import { ROTATED_NAME } from './segment-file.js';

/** What a put ended with, for cold storage's `event`. */
export interface PutEvent {
  type: 'put';
  name: string;
  ok: boolean;
  error?: string;
}

export class PutShipper {
  private deferredCount = 0;
  private readonly rows = new Map<string, PutRow>();
  /** Rows the catalog could not take yet (a full disk): written again at each check. */
  private readonly unsaved = new Set<string>();
  private readonly queue: string[] = [];
  private loop: Promise<void> | undefined;
  private running = false;
  private stopped = false;

  constructor(
    private readonly a: Archive,
    private readonly hooks: HookRunner,
    private readonly emit: (event: PutEvent) => void,
    /** COLD_LIMITS.putQueueMax: files past it stay pending and the next check queues them. */
    private readonly queueMax: number,
  ) {}

  /** Takes the statuses the catalog holds (at start). */
  load(rows: readonly PutRow[]): void {
    for (const row of rows) this.rows.set(row.name, row);
  }

  /** Rotations not queued because the queue was full (the next check queues them). */
  get deferred(): number {
    return this.deferredCount;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** The shipping loop's last run (cold storage's stop waits for it). */
  get shipping(): Promise<void> | undefined {
    return this.loop;
  }

  /** Whether a put of this name was ever recorded (started, failed, done or confirmed by list). */
  has(name: string): boolean {
    return this.rows.has(name);
  }

  row(name: string): PutRow | undefined {
    return this.rows.get(name);
  }

  isDone(name: string): boolean {
    return this.rows.get(name)?.status === 'done';
  }

  /** Done, and so in the catalog: only then may retention remove the local copy (an open must know it shipped). */
  isDoneRecorded(name: string): boolean {
    return this.isDone(name) && !this.unsaved.has(name);
  }

  /** Writes again the rows the catalog could not take (at each check). */
  saveUnsaved(): void {
    for (const name of [...this.unsaved]) {
      const row = this.rows.get(name);
      if (row) this.save(row);
    }
  }

  needsPut(f: FileEntry): boolean {
    return this.hooks.has('put') && f.sealed && ROTATED_NAME.test(f.name) && this.rows.get(f.name)?.status !== 'done';
  }

  /** Queues every local rotated file not shipped yet (at start and at each check). */
  queueUnshipped(): void {
    for (const f of this.a.files) if (f.location === 'local' && this.needsPut(f)) this.enqueue(f.name);
  }

  enqueue(name: string): void {
    if (!this.hooks.has('put') || this.stopped || this.queue.includes(name)) return;
    if (this.queue.length >= this.queueMax) {
      this.deferredCount++;
      this.a.logger.warn({ name, putQueueMax: this.queueMax }, 'put queue full; the file is shipped by a later check');
      return;
    }
    this.queue.push(name);
    if (!this.running) this.loop = this.run();
  }

  /** The file is known to be in cold storage (listed there, or fetched from there): no put needed. */
  confirm(name: string): void {
    this.set({ name, status: 'done', attempts: 0, error: null, updatedMs: 0 });
  }

  /** No more puts start; the one running ends when its hook is killed (HookRunner.stop). */
  stop(): void {
    this.stopped = true;
  }

  /** Ships queued files one at a time; a file leaves the queue once its put has ended. */
  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const event = await this.putOne(this.queue[0] as string);
        this.queue.shift();
        if (event) this.emit(event);
      }
    } finally {
      this.running = false;
    }
  }

  private async putOne(name: string): Promise<PutEvent | undefined> {
    let f = this.a.files.find((x) => x.name === name);
    if (!f || f.location !== 'local' || !this.needsPut(f)) return undefined;
    // A file the server compacts is shipped as compacted (storage/live-compact.ts): the cold
    // copy must hold the bytes the catalog's rows describe.
    if (this.a.settling?.pending(f.seq) === true) {
      await this.a.settling.settled(f.seq);
      f = this.a.files.find((x) => x.name === name);
      if (!f || f.location !== 'local' || !this.needsPut(f) || this.stopped) return undefined;
    }
    const row = this.rows.get(name) ?? { name, status: 'pending' as PutStatus, attempts: 0, error: null, updatedMs: 0 };
    // Recorded before the hook runs: a put cut short (crash, stop) leaves this row, so a
    // partial copy that list shows later is not taken for a shipped file.
    if (!this.rows.has(name)) this.set(row);
    try {
      await this.hooks.run('put', [join(this.a.dir, name), name], (err) => {
        this.set({ ...row, status: 'pending', attempts: ++row.attempts, error: err.message });
      });
      this.set({ ...row, status: 'done', attempts: row.attempts + 1, error: null });
      this.a.logger.info({ name }, 'put: file shipped');
      return { type: 'put', name, ok: true };
    } catch (err) {
      const message = (err as Error).message;
      if (!this.stopped) {
        this.set({ ...row, status: 'failed', error: message });
        this.a.logger.error({ name, error: message }, 'put failed; the file stays local and is retried at the next check');
      }
      return { type: 'put', name, ok: false, error: message };
    }
  }

  private set(row: PutRow): void {
    const r = { ...row, updatedMs: Date.now() };
    this.rows.set(r.name, r);
    this.save(r);
  }

  /**
   * The row into the catalog. A write that fails (a full disk: SQLITE_FULL) never throws out
   * of the shipping loop, whose rejection nothing awaits (it ended the process): the row is
   * kept and written again at the next check, and retention waits for it.
   */
  private save(r: PutRow): void {
    if (this.a.isClosed) return;
    try {
      this.a.catalog.setPut(r);
      this.unsaved.delete(r.name);
    } catch (err) {
      if (!this.unsaved.has(r.name)) this.a.logger.warn({ name: r.name, status: r.status, error: (err as Error).message }, 'put status not recorded yet; written again at the next check');
      this.unsaved.add(r.name);
    }
  }
}
