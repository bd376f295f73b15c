/**
 * The gate between the archive's reads and a change of a file's places (a compaction by the
 * running server, storage/live-compact.ts, replaces a sealed file with one whose blocks lie
 * elsewhere). A read operation that holds places (block indices, offsets, table rows) across
 * awaits runs inside `run`; `exclusive` runs a change only while no such operation is in
 * flight, so no operation sees two generations of one file. Between operations a reader that
 * keeps a place (a cursor) maps it to the new generation (file-list.ts PlaceMap).
 *
 * The change waits first for a moment when nothing is in flight, without holding anyone up
 * (STORAGE_LIMITS.gateIdleWaitMs); failing that, it closes the gate: new operations wait,
 * those in flight finish (at most gateDrainWaitMs), and the change runs. An operation that
 * does not finish in time (a read waiting for a cold fetch) reopens the gate and the change
 * is given up for now: the caller tries again later. No read waits longer than
 * gateDrainWaitMs plus the change itself.
 *
 * A holder (a cursor) whose operation is in flight may start another one (nested, or a
 * second caller of the same cursor) without waiting: it would otherwise wait for itself.
 */
import { STORAGE_LIMITS } from './limits.js';

export class ReadGate {
  private inFlight = 0;
  private readonly depth = new WeakMap<object, number>();
  /** The gate is closed: new operations wait for `reopened`. */
  private closed = false;
  private reopenWaiters: Array<() => void> = [];
  /** An exclusive change waits for inFlight to reach 0. */
  private onIdle: (() => void) | undefined;
  private changing = false;

  /** Operations in flight (tests, metrics). */
  get reads(): number {
    return this.inFlight;
  }

  /** Runs read operation `fn` (of `holder`, when it has one) once the gate is open. */
  async run<T>(fn: () => Promise<T>, holder?: object): Promise<T> {
    const wait = this.enter(holder);
    if (wait !== undefined) await wait;
    try {
      return await fn();
    } finally {
      this.leave(holder);
    }
  }

  /** Starts an operation: undefined when it may go on at once, else a promise to wait for (then it has started). */
  enter(holder?: object): Promise<void> | undefined {
    const held = holder !== undefined && (this.depth.get(holder) ?? 0) > 0;
    if (!this.closed || held) {
      this.count(holder, 1);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.reopenWaiters.push(() => {
        this.count(holder, 1);
        resolve();
      });
    });
  }

  /** Ends an operation begun by enter. */
  leave(holder?: object): void {
    this.count(holder, -1);
    if (this.inFlight === 0 && this.onIdle !== undefined) {
      // Closed here, before any other operation can start: the change runs next.
      this.closed = true;
      const go = this.onIdle;
      this.onIdle = undefined;
      go();
    }
  }

  private count(holder: object | undefined, d: 1 | -1): void {
    this.inFlight += d;
    if (holder !== undefined) this.depth.set(holder, (this.depth.get(holder) ?? 0) + d);
  }

  /**
   * Runs `change` while no read operation is in flight; false (nothing ran) when in-flight
   * operations did not finish within the limits. One change at a time.
   */
  async exclusive(change: () => Promise<void>, limits: { idleWaitMs: number; drainWaitMs: number } = { idleWaitMs: STORAGE_LIMITS.gateIdleWaitMs, drainWaitMs: STORAGE_LIMITS.gateDrainWaitMs }): Promise<boolean> {
    if (this.changing) throw new Error('ReadGate.exclusive: a change is already running');
    this.changing = true;
    try {
      if (!(await this.idle(limits.idleWaitMs, false)) && !(await this.idle(limits.drainWaitMs, true))) return false;
      try {
        await change();
      } finally {
        this.reopen();
      }
      return true;
    } finally {
      this.changing = false;
    }
  }

  /** Waits up to ms for nothing in flight (closing the gate first when `close`); true = idle, and the gate is then closed. */
  private idle(ms: number, close: boolean): Promise<boolean> {
    if (this.inFlight === 0) {
      this.closed = true;
      return Promise.resolve(true);
    }
    if (close) this.closed = true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.onIdle = undefined;
        if (close) this.reopen();
        resolve(false);
      }, ms);
      this.onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  private reopen(): void {
    this.closed = false;
    const waiters = this.reopenWaiters;
    this.reopenWaiters = [];
    for (const w of waiters) w();
  }
}
