/**
 * What the writer needs to live through a full disk: telling a full disk from other I/O
 * errors, and acknowledgements (flush, rotate, whenDurable) that a full disk must not hold
 * forever. The retry loop itself is the write queue's pump (storage/write-queue.ts), its timer in storage/durability.ts.
 */

/** Someone waiting for the writer to finish something (a commit, a rotation). */
export interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * A full file system or quota (the segment file or the catalog). Such a write can succeed
 * later, so the writer keeps its data and retries; any other error (EIO, EBADF...) means
 * the file can no longer be trusted and the writer fails.
 */
export function isDiskFullError(err: unknown): boolean {
  return diskFullCode(err) !== undefined;
}

/**
 * ENOSPC, EDQUOT, SQLITE_FULL or SQLITE_IOERR_SHMSIZE (SQLite's -shm could not grow) when `err` (or its cause: the catalog wraps SQLite errors
 * into TapedeckErrors whose details name the SQLite code) is a full disk; else undefined.
 */
export function diskFullCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const o = e as { code?: unknown; details?: { sqlite?: unknown }; cause?: unknown };
    for (const c of [o.code, o.details?.sqlite]) if (c === 'ENOSPC' || c === 'EDQUOT' || c === 'SQLITE_FULL' || c === 'SQLITE_IOERR_SHMSIZE') return c;
    e = o.cause;
  }
  return undefined;
}

/**
 * Waiters on acknowledgements. While armed (the disk is full) each one is rejected after
 * `ms` with the error of the moment; the work it waited for stays queued and is done when
 * space returns. A waiter rejected this way may still be resolved later: that is a no-op.
 */
export class AckDeadlines {
  private readonly pending = new Map<Waiter, NodeJS.Timeout | undefined>();
  private armed: { ms: number; error: () => Error } | undefined;

  /** A waiter that leaves the registry when settled (and then calls `onSettle`). */
  wrap(resolve: () => void, reject: (err: unknown) => void, onSettle?: () => void): Waiter {
    const w: Waiter = {
      resolve: () => {
        this.settle(w, onSettle);
        resolve();
      },
      reject: (err) => {
        this.settle(w, onSettle);
        reject(err);
      },
    };
    this.pending.set(w, undefined);
    if (this.armed) this.arm(w);
    return w;
  }

  armAll(ms: number, error: () => Error): void {
    this.armed = { ms, error };
    for (const [w, t] of this.pending) if (t === undefined) this.arm(w);
  }

  disarmAll(): void {
    this.armed = undefined;
    for (const [w, t] of this.pending) {
      clearTimeout(t);
      this.pending.set(w, undefined);
    }
  }

  private arm(w: Waiter): void {
    const a = this.armed as NonNullable<typeof this.armed>;
    this.pending.set(w, setTimeout(() => w.reject(a.error()), a.ms));
  }

  private settle(w: Waiter, onSettle: (() => void) | undefined): void {
    if (!this.pending.has(w)) return;
    clearTimeout(this.pending.get(w));
    this.pending.delete(w);
    onSettle?.();
  }
}
