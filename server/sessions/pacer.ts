/**
 * When a recorded batch is due, for one playback session. Pure: the clock is injected
 * (performance.now in a session, a number a test moves by hand), and the pacer sets no
 * timer; the session sleeps for what it answers.
 *
 * The schedule is an anchor: a wall time and the recorded time shown then. A batch
 * recorded at T is due at anchor.wall + (T - anchor.recorded) / speed, computed from the
 * anchor every time, so a timer firing late delays one batch and never the ones after it:
 * no drift however long the run. The playhead (the recorded time shown now) moves on from
 * the anchor at `speed`. A speed change re-anchors at the playhead, so the position stays
 * and only the rate changes; pause freezes the playhead and resume re-anchors there. With
 * no anchor (a new session, a seek, a client attaching) the first batch asked about
 * anchors the schedule and is due at once. At `unlimited` every batch is due at once.
 */
import type { Speed } from '../../protocol/controls.js';

const US_PER_MS = 1000;

export class Pacer {
  private anchor: { wallMs: number; recordedUs: number } | undefined;
  /** The playhead while paused. */
  private frozenUs: number | undefined;
  private rate: Speed;
  private readonly nowMs: () => number;

  constructor(speed: Speed, nowMs: () => number = () => performance.now()) {
    this.rate = speed;
    this.nowMs = nowMs;
  }

  get speed(): Speed {
    return this.rate;
  }

  /** Recorded time (µs) shown now: moving while anchored, frozen while paused, else undefined. */
  positionUs(): number | undefined {
    if (this.frozenUs !== undefined) return this.frozenUs;
    const a = this.anchor;
    if (!a || this.rate === 'unlimited') return undefined;
    return a.recordedUs + (this.nowMs() - a.wallMs) * US_PER_MS * this.rate;
  }

  /**
   * Wall time (ms, the clock's) at which the batch recorded at `tsUs` is due. Without an
   * anchor this batch becomes it (due now).
   */
  dueMs(tsUs: number): number {
    if (this.rate === 'unlimited') return this.nowMs();
    this.anchor ??= { wallMs: this.nowMs(), recordedUs: tsUs };
    return this.anchor.wallMs + (tsUs - this.anchor.recordedUs) / US_PER_MS / this.rate;
  }

  /** Milliseconds until the batch recorded at `tsUs` is due; zero or less: due (late by its absolute value). */
  waitMs(tsUs: number): number {
    return this.dueMs(tsUs) - this.nowMs();
  }

  /** A new rate from the playhead on (unlimited has no playhead: the next batch anchors). */
  setSpeed(speed: Speed): void {
    const at = this.frozenUs === undefined ? this.positionUs() : undefined;
    this.rate = speed;
    this.anchor = at === undefined || speed === 'unlimited' ? undefined : { wallMs: this.nowMs(), recordedUs: at };
  }

  /** Freezes the playhead where it is. */
  pause(): void {
    if (this.frozenUs !== undefined) return;
    this.frozenUs = this.positionUs();
    this.anchor = undefined;
  }

  /** Moves on from where pause froze the playhead; not paused (or nothing shown yet): starts afresh. */
  resume(): void {
    const at = this.frozenUs;
    this.frozenUs = undefined;
    this.anchor = at === undefined || this.rate === 'unlimited' ? undefined : { wallMs: this.nowMs(), recordedUs: at };
  }

  /** Forgets the schedule (a seek, a client attaching, the end): the next batch anchors. */
  reset(): void {
    this.anchor = undefined;
    this.frozenUs = undefined;
  }
}
