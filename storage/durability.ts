/**
 * The writer's promises and its health: who waits for which batch to be durable, how long
 * a full disk may hold an acknowledgement, and the disk-full state with its retry timer.
 * The writer (storage/writer.ts) decides when to commit; this module only keeps the books.
 */
import { TapedeckError } from '../protocol/errors.js';
import { AckDeadlines, diskFullCode, type Waiter } from './disk-full.js';
import { STORAGE_LIMITS, type DiskFullLimits } from './limits.js';
import type { Logger } from './archive.js';

export interface WriterHealth {
  /** ok; disk_full: writes wait for space (batches are kept in memory); failed: appends are refused for good. */
  state: 'ok' | 'disk_full' | 'failed';
  /** When the state began (ms since the epoch). */
  since: number;
  /** Bytes of frames in memory that are not committed yet (the write queue and written-but-uncommitted frames). */
  bufferedBytes: number;
}

/** What the books need from the writer. */
export interface DurabilityHost {
  logger: Logger;
  emit(event: 'disk-full' | 'disk-ok', payload: object): void;
  /** Bytes of frames in memory and not committed. */
  bufferedBytes(): number;
  /** Runs the pump again (the retry after a full disk). */
  retry(): void;
}

/**
 * durableTs before any batch is committed: below every batch time, so a batch at 0 µs (the
 * first time the time contract takes) waits for its commit like any other.
 */
export const NOTHING_DURABLE = -1;

export class Durability {
  readonly limits: DiskFullLimits = {
    retryMs: STORAGE_LIMITS.diskFullRetryMs,
    retryMaxMs: STORAGE_LIMITS.diskFullRetryMaxMs,
    bufferBytesMax: STORAGE_LIMITS.diskFullBufferBytesMax,
    ackWaitMs: STORAGE_LIMITS.diskFullAckWaitMs,
  };
  /** Acknowledgements a full disk may hold up (flush, rotate, whenDurable). */
  readonly acks = new AckDeadlines();
  /** Timestamp of the last committed batch (NOTHING_DURABLE before one): a waiter for it or an older one resolves at once. */
  durableTs: number;
  private readonly waiters = new Map<Waiter, number>();
  private diskFull: { sinceMs: number; attempts: number; code: string } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stateSinceMs = Date.now();
  private stopped = false;

  constructor(private readonly host: DurabilityHost, durableTs: number) {
    this.durableTs = durableTs;
  }

  setLimits(limits: Partial<DiskFullLimits>): void {
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isFinite(v) || v < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `disk-full limit ${k} must be a non-negative number, got ${String(v)}`);
    }
    Object.assign(this.limits, limits);
  }

  /** A promise for the batch at `ts` (not committed yet), settled by committed() or rejectAll(). */
  waitFor(ts: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = this.acks.wrap(resolve, reject, () => this.waiters.delete(w));
      this.waiters.set(w, ts);
    });
  }

  get hasWaiters(): boolean {
    return this.waiters.size > 0;
  }

  /** Everything up to `ts` is committed. */
  committed(ts: number): void {
    this.durableTs = ts;
    for (const [w, t] of this.waiters) if (t <= ts) w.resolve();
  }

  rejectAll(err: unknown): void {
    for (const w of [...this.waiters.keys()]) w.reject(err);
  }

  get isDiskFull(): boolean {
    return this.diskFull !== undefined;
  }

  /** True while the pump must wait for the retry timer (for good once stopped on a full disk: no busy loop at close). */
  get retryPending(): boolean {
    return this.retryTimer !== undefined || (this.stopped && this.diskFull !== undefined);
  }

  /**
   * A write met a full disk: the first time, arm the acknowledgement deadlines, log and
   * announce; every time, schedule the next try (backing off up to retryMaxMs). Returns
   * whether the state is new.
   */
  enterDiskFull(err: unknown): boolean {
    const fresh = !this.diskFull;
    if (!this.diskFull) {
      const code = diskFullCode(err) ?? 'ENOSPC';
      this.diskFull = { sinceMs: Date.now(), attempts: 0, code };
      this.stateSinceMs = this.diskFull.sinceMs;
      const bufferedBytes = this.host.bufferedBytes();
      this.host.logger.error({ code, bufferedBytes, err },
        'archive file system is full: batches wait in memory (bounded), writes are retried, recording resumes when space returns');
      this.acks.armAll(this.limits.ackWaitMs, () => this.diskFullError());
      this.host.emit('disk-full', { code, bufferedBytes });
    }
    if (this.stopped) return fresh;
    const df = this.diskFull;
    const delayMs = Math.min(this.limits.retryMaxMs, this.limits.retryMs * 2 ** Math.min(df.attempts, 30));
    df.attempts++;
    clearTimeout(this.retryTimer);
    // Not unref'd: data waits in memory, so the process must stay to write it.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) this.host.retry();
    }, delayMs);
    return fresh;
  }

  leaveDiskFull(): void {
    const df = this.diskFull;
    if (!df) return;
    this.diskFull = undefined;
    this.stateSinceMs = Date.now();
    this.acks.disarmAll();
    const ms = this.stateSinceMs - df.sinceMs;
    this.host.logger.info({ ms, retries: df.attempts }, 'archive file system has space again: recording resumed');
    this.host.emit('disk-ok', { ms });
  }

  diskFullError(): TapedeckError {
    const code = this.diskFull?.code ?? 'ENOSPC';
    const l = this.limits;
    return new TapedeckError('TPD_DISK_FULL',
      `archive file system is full (${code}): ${this.host.bufferedBytes()} bytes wait in memory (limit ${l.bufferBytesMax}); recording resumes by itself when space returns`,
      { retryAfterMs: Math.min(l.retryMaxMs, Math.max(l.retryMs, 1000)) });
  }

  /** The writer failed for good: no retries, no disk-full state; waiters are rejected. */
  failed(err: unknown): void {
    this.stop();
    this.diskFull = undefined;
    this.stateSinceMs = Date.now();
    this.rejectAll(err);
  }

  /** No more retries (closing or failed); deadlines disarmed. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.acks.disarmAll();
  }

  health(failed: boolean): WriterHealth {
    const state = failed ? 'failed' : this.diskFull ? 'disk_full' : 'ok';
    return { state, since: this.stateSinceMs, bufferedBytes: this.host.bufferedBytes() };
  }
}
