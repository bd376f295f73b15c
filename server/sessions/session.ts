/**
 * One playback session as clients drive it: its identity and owner, its controls and the
 * changes to them (applied whole or not at all, by the loop between sends), streams
 * attaching, leaving and replacing each other, and close. How it plays (the loop, bursts,
 * frames, failures) is ./playback-loop.ts; where it stands and how it reads, ./playhead.ts.
 */
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { TapedeckError } from '../../protocol/errors.js';
import { formatBound, parseControls, type Bound, type ControlsInput, type ControlsView, type ParsedControls } from '../../protocol/controls.js';
import { wallClockUs, type Archive } from '../../storage/index.js';
import { Burst } from './burst.js';
import type { CoverageSource, SessionEvents, SessionLimits, SessionLog } from './ports.js';
import { yieldToEventLoop } from './turns.js';
import { PlaybackFailures } from './playback-failures.js';
import type { SessionSink } from './wire.js';
import { coverInSlices } from '../routes/queries.js';

export type { FrameFormat, SessionSink } from './wire.js';
export type { CoverageSource, SessionEvents, SessionLimits, SessionLog } from './ports.js';

/** A range whose end is before its start is refused, naming the control that made it so. */
function checkRange(start: Bound, end: Bound, control: 'start' | 'end'): void {
  if (start.kind !== 'ts' || end.kind !== 'ts' || end.us >= start.us) return;
  throw new TapedeckError('TPD_BAD_CONTROL', control === 'end' ? `end: is before start (${formatBound(start)})` : `start: is after end (${formatBound(end)})`, { control });
}

export class Session extends PlaybackFailures {
  readonly createdAt = Date.now();
  readonly clientKey: string;
  /** When the last client went away (or creation); drives garbage collection. */
  detachedAt = Date.now();

  constructor(archive: Archive, clientKey: string, filter: readonly string[], limits: SessionLimits, events: SessionEvents, log: (id: string) => SessionLog, coverage?: CoverageSource) {
    super(archive, filter, limits, events, log, coverage);
    this.clientKey = clientKey;
  }

  /**
   * Applies the creation controls (including the initial seek) and starts the loop. When
   * `asker` aborts first (the POST's client left), the session ends with it: its seek stops
   * (./read-stops.ts) and this throws the reason.
   */
  async init(input: ControlsInput, asker?: AbortSignal): Promise<void> {
    const parsed = parseControls(input, wallClockUs());
    if (parsed.pos === undefined && parsed.state === 'tail') {
      parsed.pos = { kind: 'end' };
    } else if (parsed.pos === undefined) {
      const start = parsed.start ?? this.start;
      parsed.pos = start.kind === 'unbounded' ? { kind: 'beginning' } : { kind: 'ts', us: start.us };
    }
    const unlink = this.stops.endWith(asker);
    try {
      // The state frame asks the filter of every path id at once: decided here first, in slices.
      if (this.filter.length > 0) await coverInSlices(this.head.cursor, this.a.paths.length);
      await this.apply(parsed);
      asker?.throwIfAborted();
    } catch (err) {
      this.stops.stopped(err);
      throw err;
    } finally {
      unlink();
    }
    // The grace period runs from the answer: a creation that waited (a cold fetch) is not
    // charged to the client.
    this.detachedAt = Date.now();
    this.loopDone = this.run();
  }

  /** No client for `graceMs` (and created: a creation still under way is never collected). */
  collectable(nowMs: number, graceMs: number): boolean {
    return this.loopDone !== undefined && !this.attached && nowMs - this.detachedAt >= graceMs;
  }

  get attached(): boolean {
    return this.wire.sink !== undefined;
  }

  /**
   * Validates, then queues a control change for the loop; resolves with the new controls.
   * Its reads stop when `asker` aborts (who asked left) or the session ends.
   */
  setControls(input: ControlsInput, asker?: AbortSignal): Promise<ControlsView> {
    if (this.closed) return Promise.reject(new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} is closed`));
    let set: ParsedControls;
    try {
      // `pos-5m` counts from the position the client was shown when it asked.
      set = parseControls(input, wallClockUs(), this.head.posUs);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.commands.push({ set, asker, resolve, reject });
      this.wake();
    });
  }

  /** Attaches a client stream; a second stream replaces the first (reconnect). */
  attach(sink: SessionSink): void {
    const previous = this.wire.sink;
    this.log.info({ format: sink.format, replaced: previous !== undefined }, 'client attached');
    previous?.close(CLOSE_CODES.replaced, 'replaced by a newer connection');
    this.wire.connect(sink);
    this.stops.attached();
    this.needState = true;
    this.pacer.reset();
    this.wake();
  }

  /** A client used the session without a stream (REST): restart its grace period. */
  touch(): void {
    if (!this.wire.sink) this.detachedAt = Date.now();
  }

  detach(sink: SessionSink): void {
    if (this.wire.sink !== sink) return;
    this.log.info({}, 'client detached');
    this.wire.connect(undefined);
    // A read for it under way (play, tail, a state) stops: nothing of it would be sent.
    this.stops.left();
    // Nobody receives the rest of a burst: it ends where it is, in the state it leads to.
    this.finishBurst(null);
    this.detachedAt = Date.now();
    this.wake();
  }

  async close(reason: 'closed' | 'deleted'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.log.info({ reason }, 'session closed');
    const gone = (): TapedeckError => new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} was ${reason}`);
    // A read under way stops at once (a seek, a step, a wait for a cold file).
    this.stops.end(gone());
    const sink = this.wire.sink;
    if (sink) {
      this.sendFrame({ type: 'end', reason });
      sink.close(CLOSE_CODES.normal, reason);
    }
    this.wire.connect(undefined);
    for (const c of this.commands.splice(0)) c.reject(gone());
    this.burst?.fail(gone());
    this.burst = undefined;
    this.wake();
    // The loop ends at its next turn. A read waiting for a cold fetch is not waited for (it
    // stops once the abort reaches it): nothing is sent when it returns.
    if (this.fetching === 0) await this.loopDone;
  }

  /** The coverage journal changed: a tailing session sends the new coverage. */
  coverageChanged(): void {
    if (this.coverage === undefined || this.state !== 'tail') return;
    this.needCoverage = true;
    this.wake();
  }

  // ---------------------------------------------------------------- controls

  protected async applyCommands(): Promise<void> {
    const cmds = this.commands.splice(0);
    for (const [i, c] of cmds.entries()) {
      // One change's work at a time: changes that came together (a stream's control frames
      // arrive in one read) are applied with the event loop's turn between them.
      if (i > 0) await yieldToEventLoop();
      if (this.closed) {
        c.reject(new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} is closed`));
        continue;
      }
      try {
        await this.stops.askedBy(c.asker, () => this.apply(c.set));
        // A burst answers when it is over (its controls frame marks the end); a speed change
        // during one answers at once.
        if (c.set.burst !== undefined && this.burst) this.burst.waitFor(c);
        else c.resolve(this.controls);
      } catch (err) {
        this.stops.stopped(err);
        c.reject(err);
      }
    }
    if (cmds.length > 0 && !this.burst) this.sendFrame({ type: 'controls', controls: this.controls });
  }

  /**
   * Applies one change whole or not at all: what can refuse it (a range whose end is before
   * its start, a seek that fails: a gone file, a failed fetch) is done before anything
   * else changes, and a seek that fails puts the cursor back where the session shows it.
   */
  private async apply(set: ParsedControls): Promise<void> {
    if (set.burst !== undefined && !this.wire.sink) {
      throw new TapedeckError('TPD_BAD_CONTROL', 'burst: no stream is attached to receive the batches (open /api/v1/sessions/:id/stream first)', { control: 'burst' });
    }
    checkRange(set.start ?? this.start, set.end ?? this.end, set.end !== undefined ? 'end' : 'start');
    // A new position, state, range or burst cuts a running burst short where it is.
    if (this.burst && (set.start || set.end || set.pos !== undefined || set.state !== undefined || set.loop !== undefined || set.burst !== undefined)) {
      this.finishBurst(null);
    }
    const pos = set.pos ?? (set.state === 'tail' ? { kind: 'end' as const } : undefined);
    if (pos !== undefined) await this.seekTo(pos);
    // A new range, position or state may hold batches: the loop may wrap again. (Speed
    // alone changes nothing there.)
    if (set.start || set.end || set.pos !== undefined || set.state !== undefined || set.loop !== undefined) this.wrappedEmpty = false;
    if (set.start) this.start = set.start;
    if (set.end) this.end = set.end;
    if (set.loop !== undefined) this.loop = set.loop;
    if (set.speed !== undefined) this.pacer.setSpeed(set.speed);
    if (set.state !== undefined) {
      this.state = set.state;
      if (set.state === 'pause') this.pacer.pause();
      else if (set.state === 'play') this.pacer.resume();
      else this.pacer.reset();
      if (set.state !== 'pause') this.reachedEnd = false;
    }
    if (set.end) this.reachedEnd = false;
    // After the other controls: `{ pos: "beginning", burst: 5 }` sends the first five.
    if (set.burst !== undefined) this.burst = new Burst(set.burst);
  }
}
