/**
 * The turns of a session's loop: sleeping until woken or a timer fires, and yielding to the
 * event loop so that no session holds the server.
 *
 * Every loopStepsPerTurnMax turns the loop yields with setImmediate, whatever it awaited in
 * between: an await on a settled promise is no yield, and a loop over one spins the process,
 * deaf to sockets and signals. A turn that slept until its timer fired has yielded already,
 * so the next turn (the batch now due) goes at once, not after the sockets' turn. Where no
 * turn can make progress the loop sleeps without a timer until wake().
 */
import { setImmediate } from 'node:timers/promises';

/** A turn of the event loop for sockets, timers, signals and other sessions (an await on a settled promise is none). */
export function yieldToEventLoop(): Promise<void> {
  return setImmediate();
}

export class Turns {
  private wakeFn: (() => void) | undefined;
  /** The last sleep ended by its timer (a real yield to the event loop). */
  private timerFired = false;
  /** Turns since the last yield to the event loop. */
  private stepsSinceYield = 0;

  constructor(private readonly stepsPerYieldMax: number) {}

  /** Waits `ms` (Infinity: until woken); wake() ends it early. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      // Node fires a timer past 2^31 - 1 ms at once: wait at most that, the loop re-arms it.
      const timer = ms === Infinity ? undefined : setTimeout(() => {
        this.timerFired = true;
        done();
      }, Math.min(Math.max(0, ms), 2 ** 31 - 1));
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeFn === done) this.wakeFn = undefined;
        resolve();
      };
      this.wakeFn = done;
    });
  }

  /** Ends the current sleep, if any. */
  wake(): void {
    const w = this.wakeFn;
    this.wakeFn = undefined;
    w?.();
  }

  /** Runs `turn` until `closed()`, yielding to the event loop as described above. */
  async run(turn: () => Promise<void>, closed: () => boolean): Promise<void> {
    while (!closed()) {
      this.timerFired = false;
      await turn();
      if (this.timerFired) {
        this.stepsSinceYield = 0;
        continue;
      }
      if (++this.stepsSinceYield >= this.stepsPerYieldMax) {
        this.stepsSinceYield = 0;
        // Let sockets, timers, signals and other sessions run: a session playing at
        // unlimited speed from cached blocks would otherwise never leave the microtask queue.
        await yieldToEventLoop();
      }
    }
  }
}
