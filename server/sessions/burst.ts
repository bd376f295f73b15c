/**
 * A burst in progress (controls `burst: N`, `next: true`; docs/playback.md): how many of
 * the asked batches have gone out, and who waits for the end (PATCH answers, and every
 * other change that came with it). The session's loop sends the batches, a frame per turn
 * unpaced, and ends the burst when N have gone, when it runs into the end of what there is,
 * or when a later control, the client leaving or close cuts it short.
 */
import type { ControlsView } from '../../protocol/controls.js';

interface Waiter {
  resolve: (v: ControlsView) => void;
  reject: (err: unknown) => void;
}

export class Burst {
  sent = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly asked: number) {}

  /** Batches still to send. */
  get left(): number {
    return this.asked - this.sent;
  }

  waitFor(w: Waiter): void {
    this.waiters.push(w);
  }

  /** The burst is over (done, clamped or cut short): answer with the controls after it. */
  settle(controls: ControlsView): void {
    for (const w of this.waiters.splice(0)) w.resolve(controls);
  }

  /** The session closed under it. */
  fail(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
