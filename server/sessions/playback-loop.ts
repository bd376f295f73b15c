/**
 * How a playback session plays: the loop that paces recorded batches to the attached client,
 * sends bursts, state, coverage and the end; a read that fails is met by
 * ./playback-failures.ts (a gap crossed, or an error frame). The session
 * (./session.ts) holds what clients drive: its controls, changes to them, streams attaching
 * and leaving, close.
 *
 * Only the loop touches the cursor (./playhead.ts). Control changes are queued and applied
 * by the loop between sends, so a seek never races a read. When a batch is due is the
 * Pacer's answer (./pacer.ts: an anchor, so errors do not add up over long runs). Sends
 * respect the socket's backpressure: above wsBufferHighBytes the loop waits for the client
 * to read.
 *
 * No session may hold the event loop: every turn of the loop does a bounded amount of work
 * (a control change, a state frame, one frame of batches, or a loop's wrap-around) and the
 * turns yield to the event loop (./turns.ts). Where no turn can make progress (no client, a
 * client whose socket no longer drains, a loop over a range holding no batch) the loop
 * parks until something wakes it: a control change, a client attaching or leaving, new
 * data, close. A burst (./burst.ts) sends its batches a frame per turn, unpaced. Frames are
 * encoded by ./wire.ts.
 */
import { randomBytes } from 'node:crypto';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { burstClampMessage, formatBound, type Bound, type ControlsView, type ParsedControls, type PlayState, type Speed } from '../../protocol/controls.js';
import { coverageFrame, type ValuelessFrame } from '../../protocol/frames.js';
import { formatTs } from '../../protocol/time.js';
import type { ColumnBatches, RawBatch } from '../../storage/cursor.js';
import { wallClockUs, type Archive, type FetchWait } from '../../storage/index.js';
import type { Burst } from './burst.js';
import { Pacer } from './pacer.js';
import type { CoverageSource, SessionEvents, SessionLimits, SessionLog } from './ports.js';
import { endIsLive, liveEndWaitMs } from './live-end.js';
import { Turns } from './turns.js';
import { gatherFrame } from './gather.js';
import { Playhead, type PosTarget } from './playhead.js';
import { fetchWaitFrame, SessionWire, type SessionSink } from './wire.js';
import { ReadStops } from './read-stops.js';

/** How early a paced batch may go out (ms): timers only ever fire late. */
const PACING_EARLY_MS = 1;

/** A control change waiting for the loop, and who waits for its answer. */
export interface Command {
  set: ParsedControls;
  /** Aborted when who asked leaves (the stream that sent it, a PATCH's client): the change's reads stop (./read-stops.ts). */
  asker: AbortSignal | undefined;
  resolve: (v: ControlsView) => void;
  reject: (err: unknown) => void;
}

export abstract class PlaybackLoop {
  readonly id = randomBytes(16).toString('hex');
  readonly filter: readonly string[];
  start: Bound = { kind: 'unbounded' };
  end: Bound = { kind: 'unbounded' };
  state: PlayState = 'play';
  loop = false;
  closed = false;
  /** True while the loop waits for newly committed data. */
  waitingForData = false;
  /** True while the loop waits for its client to read what it was sent (backpressure). */
  waitingForClient = false;
  readonly log: SessionLog;

  protected readonly a: Archive;
  protected readonly limits: SessionLimits;
  private readonly events: SessionEvents;
  protected readonly wire: SessionWire;
  protected readonly commands: Command[] = [];
  private readonly turns: Turns;
  /** Holds the speed (and when each batch is due). */
  protected readonly pacer = new Pacer(1);
  /** A burst being sent (`burst: N`, `next: true`), if any. */
  protected burst: Burst | undefined;
  /** Where the session stands and how it reads on (./playhead.ts). */
  protected readonly head: Playhead;
  protected needState = true;
  /** A coverage frame is due: after every state frame, and when coverage changes while tailing. */
  protected needCoverage = false;
  protected readonly coverage: CoverageSource | undefined;
  protected reachedEnd = false;
  protected loopDone: Promise<void> | undefined;
  /** The loop wrapped to `start` and has sent no batch since: the range is empty. */
  protected wrappedEmpty = false;
  /** Reads waiting for a file fetched from cold storage (a get hook: up to minutes). */
  protected fetching = 0;
  /** What stops the session's reads: its client leaving, its end (./read-stops.ts). */
  protected readonly stops: ReadStops;

  constructor(archive: Archive, filter: readonly string[], limits: SessionLimits, events: SessionEvents, log: (id: string) => SessionLog, coverage?: CoverageSource) {
    this.a = archive;
    this.coverage = coverage;
    this.log = log(this.id);
    this.filter = filter;
    this.stops = new ReadStops(this.onFetchWait);
    this.head = new Playhead(archive, filter, this.stops, this.log);
    this.limits = limits;
    this.turns = new Turns(limits.loopStepsPerTurnMax);
    this.events = events;
    this.wire = new SessionWire(() => archive.paths, events.framesSent, limits);
  }

  /** Applies the control changes waiting in `commands` (one turn's work). */
  protected abstract applyCommands(): Promise<void>;

  /** A turn failed with `err` (./playback-failures.ts): cross a hole, or tell the client; then run again. */
  protected abstract readFailed(err: unknown): Promise<void>;

  get controls(): ControlsView {
    const pos = this.head.posUs;
    return {
      start: formatBound(this.start),
      end: formatBound(this.end),
      pos: pos === null ? null : formatTs(pos),
      posUs: pos,
      speed: this.speed,
      state: this.state,
      loop: this.loop,
    };
  }

  get speed(): Speed {
    return this.pacer.speed;
  }

  wake(): void {
    this.turns.wake();
  }

  // ---------------------------------------------------------------- the loop

  private sleep(ms: number): Promise<void> {
    // A session closed while it awaited a read must not go back to sleep: close() waits for the loop.
    if (this.closed) return Promise.resolve();
    return this.turns.sleep(ms);
  }

  /** Runs the turns; a turn's reads stop when the stream attached as it began leaves (or the session ends). */
  protected run(): Promise<void> {
    return this.turns.run(() => this.stops.under(this.stops.loopSignal, () => this.turn()), () => this.closed).catch((err: unknown) => this.readFailed(err));
  }

  /** One bounded piece of work, or a wait for whatever lets the next one make progress. */
  private async turn(): Promise<void> {
    if (this.commands.length > 0) {
      await this.head.releaseColumns();
      return this.applyCommands();
    }
    const sink = this.wire.sink;
    // No client (gone, maybe for good): the column cursor, its block and read-ahead go.
    if (!sink) return this.head.releaseColumns().then(() => this.sleep(Infinity));
    // State and coverage frames wait for the socket like batches: a client that seeks and
    // does not read gets one state frame when it reads again, not one a seek.
    if ((this.needState || this.needCoverage) && sink.bufferedBytes() > this.limits.wsBufferHighBytes) return this.drain(sink);
    if (this.needState) {
      // msgpack: its paths go first, a `paths` frame a turn, and the state after the client read them (./wire.ts).
      if (this.wire.tellState(this.head.matches) === 'wait') return;
      await this.head.releaseColumns();
      this.needState = false;
      await this.sendState();
      // During a burst the controls frame comes at its end, which it marks.
      if (!this.burst) this.sendFrame({ type: 'controls', controls: this.controls });
      this.needCoverage = this.coverage !== undefined;
      return;
    }
    if (this.needCoverage) {
      this.needCoverage = false;
      this.sendCoverage();
      return;
    }
    if ((this.state === 'pause' || this.reachedEnd) && !this.burst) return this.sleep(Infinity);
    if (sink.bufferedBytes() > this.limits.wsBufferHighBytes) return this.drain(sink);
    await this.step();
  }

  /** Waits for the client to read what waits on its socket, or for a wake-up (a control change, a client leaving). */
  private async drain(sink: SessionSink): Promise<void> {
    let drained = false;
    this.waitingForClient = true;
    await Promise.race([sink.drained().then(() => (drained = true)), this.sleep(Infinity)]);
    this.waitingForClient = false;
    // Drained yet still full: the socket is gone (ws counts what is sent after its close
    // as buffered, forever). Park until the close event detaches it, rather than re-poll.
    // Not after a wake-up: that sleep would swallow the control change that woke it (a
    // PATCH to a session whose client was slow never answered).
    if (drained && this.commands.length === 0 && this.wire.sink === sink && sink.bufferedBytes() > this.limits.wsBufferHighBytes) await this.sleep(Infinity);
  }

  /** Sends the next frame of batches, or waits for data / the due time. */
  private async step(): Promise<void> {
    const [burst, sink] = [this.burst, this.wire.sink];
    // Unpaced play (no burst, nothing held back) reads whole blocks as columns.
    if (this.head.readsColumns && !burst && this.head.pending === null && this.state === 'play' && this.speed === 'unlimited') return this.stepColumns();
    await this.head.releaseColumns();
    const first = await this.head.next();
    // A burst takes what is there now: it never waits for live data, nor wraps a loop.
    if (!first && burst) return this.finishBurst(this.endIsLive() ? 'live' : 'end');
    if (!first) return this.noMoreData();
    if (this.end.kind === 'ts' && first.ts > this.end.us) {
      this.head.pending = first;
      if (burst) return this.finishBurst('bound');
      await this.endReached();
      return;
    }
    const paced = !burst && this.state === 'play' && this.speed !== 'unlimited';
    if (paced) {
      const waitMs = this.pacer.waitMs(first.ts);
      if (waitMs > PACING_EARLY_MS) {
        // Timers fire at or after their time, never before: aim a little early and send
        // within PACING_EARLY_MS of the due time, which centres the error around zero.
        this.head.pending = first;
        await this.sleep(waitMs - PACING_EARLY_MS);
        return;
      }
      this.events.pacingErrorMs(Math.abs(waitMs));
    }
    // Only coalesce what is due now; a paced session at real time sends one batch per frame.
    const coalesce = this.wire.sink?.coalesce === true && !(paced && (this.speed as number) <= 1);
    const { out, held, failed } = await gatherFrame(this.head.cursor, first, {
      batchesMax: Math.min(coalesce ? this.limits.frameBatchesMax : 1, burst?.left ?? Infinity),
      updatesMax: this.limits.frameUpdatesMax,
      bytesMax: this.limits.frameBytesMax,
      bytesOf: (b) => this.wire.batchBytes(b, b.filtered ? this.head.matches : undefined),
      endUs: this.end.kind === 'ts' ? this.end.us : null,
      waitMs: paced ? (ts) => this.pacer.waitMs(ts) : undefined,
      earlyMs: PACING_EARLY_MS,
      interrupted: () => this.commands.length > 0,
      onTime: (ms) => this.events.pacingErrorMs(ms),
    });
    const match = (out[0] as RawBatch).filtered ? this.head.matches : undefined;
    if (this.wire.sink !== sink || (burst && this.burst !== burst) || this.wire.tellBatches(out, match) === 'wait') {
      // The client left (or a new stream came) or the burst ended while this frame was read:
      // nothing goes out, and the position stays at the last batch sent (a new stream gets its
      // state there). Or its paths were told first (msgpack): the frame is read again next turn.
      await this.head.backToShown();
      return;
    }
    this.head.pending = held;
    this.sendBatches(out);
    this.head.posUs = (out[out.length - 1] as RawBatch).ts;
    if (burst) {
      burst.sent += out.length;
      if (burst.left === 0) this.finishBurst(null);
    }
    // The batches before a failed read have gone out; the failure reaches the client now.
    if (failed !== undefined) throw failed;
  }

  /** Committed data ran out (not in a burst): tail a live end, or end (or wrap) here. */
  protected async noMoreData(): Promise<void> {
    if (!this.endIsLive()) return this.endReached();
    if (this.state === 'play') {
      this.state = 'tail';
      this.sendFrame({ type: 'controls', controls: this.controls });
    }
    this.waitingForData = true;
    // A bounded end in the future: wake when it has passed (and batches stamped before
    // it have had a flush interval to be committed), then end if nothing came.
    await this.sleep(liveEndWaitMs(this.end, this.a.options.flushIntervalMs, wallClockUs()));
    this.waitingForData = false;
  }

  /** step() at unlimited speed: the next frame from the block held as columns, read when none is. */
  private async stepColumns(): Promise<void> {
    const [held, sink] = [this.head.held, this.wire.sink];
    if (!held.unsent) {
      const view = await (await this.head.columns()).nextColumns();
      if (!view) {
        held.clear();
        return this.noMoreData();
      }
      held.hold(view);
      // Read for a stream that has gone (or been replaced) meanwhile: held, unsent, for the next turn.
      if (this.wire.sink !== sink) return;
    }
    const view = held.view as ColumnBatches;
    const k0 = held.next;
    const k1 = held.frameEnd({
      batchesMax: this.wire.sink?.coalesce === true ? this.limits.frameBatchesMax : 1,
      updatesMax: this.limits.frameUpdatesMax,
      bytesMax: this.limits.frameBytesMax,
      bytesOf: (k) => this.wire.columnBatchBytes(view, k),
      endUs: this.end.kind === 'ts' ? this.end.us : null,
    });
    if (k1 === k0) {
      // The next batch is past the end: the cursor goes back after the last batch sent.
      await this.head.releaseColumns();
      return this.endReached();
    }
    // Its paths told first (msgpack), the frame is cut again next turn.
    if (this.wire.tellColumns(view, k0, k1) === 'wait') return;
    this.wrappedEmpty = false;
    this.wire.columnBatches(view, k0, k1);
    held.next = k1;
    this.head.posUs = view.ts[k1 - 1] as number;
  }

  /**
   * Ends the burst: `where` it stopped short (an info frame TPD_CLAMPED says so), null when
   * all of it went or it was cut short. Playing goes on paced from the burst's last batch;
   * the controls frame that follows marks the end for clients.
   */
  protected finishBurst(where: 'end' | 'live' | 'bound' | null): void {
    const b = this.burst;
    if (!b) return;
    this.burst = undefined;
    if (where !== null) this.sendFrame({ type: 'info', code: 'TPD_CLAMPED', message: burstClampMessage(b.asked, b.sent, where, this.head.posUs) });
    this.pacer.reset();
    if (this.state === 'play' && this.head.posUs !== null) this.pacer.dueMs(this.head.posUs);
    this.sendFrame({ type: 'controls', controls: this.controls });
    b.settle(this.controls);
  }

  protected endIsLive(): boolean {
    return endIsLive(this.end, this.a.options.flushIntervalMs, wallClockUs());
  }

  protected async endReached(): Promise<void> {
    if (this.loop && this.wrappedEmpty) {
      // A whole pass from `start` found no batch (an empty range, or a filter matching none
      // in it). The end is no longer live and timestamps only grow, so the range stays
      // empty: wait for a control change instead of wrapping again and again.
      await this.sleep(Infinity);
      return;
    }
    if (this.loop) {
      await this.seekTo(this.start.kind === 'unbounded' ? { kind: 'beginning' } : { kind: 'ts', us: this.start.us });
      this.wrappedEmpty = true;
      return;
    }
    this.reachedEnd = true;
    this.state = 'pause';
    this.pacer.reset();
    this.sendFrame({ type: 'end', reason: 'end' });
    this.sendFrame({ type: 'controls', controls: this.controls });
  }

  /** Moves to `pos` (a seek, a step, a loop's wrap-around): the state there is sent next. */
  protected async seekTo(pos: PosTarget): Promise<void> {
    await this.head.seek(pos, this.limits.stepBatchesPerYield, (message) => this.sendFrame({ type: 'info', code: 'TPD_CLAMPED', message }));
    this.pacer.reset();
    this.needState = true;
    this.reachedEnd = false;
  }

  // ---------------------------------------------------------------- frames

  private async sendState(): Promise<void> {
    this.wire.state(this.head.posUs, await this.head.cursor.stateById(), this.head.matches);
  }

  /** The gaps and outages touching [start, end] (unbounded: the whole archive). */
  private sendCoverage(): void {
    if (!this.coverage) return;
    const c = this.coverage.between(this.start.kind === 'ts' ? this.start.us : 0, this.end.kind === 'ts' ? this.end.us : Number.MAX_SAFE_INTEGER);
    this.sendFrame(coverageFrame(c, this.limits.coverageItemsMax));
  }

  /** Control-plane frames (controls, end, error, info, coverage); batches go through sendBatches. */
  protected sendFrame(frame: ValuelessFrame): void {
    this.wire.frame(frame);
  }

  private sendBatches(out: RawBatch[]): void {
    this.wrappedEmpty = false;
    this.wire.batches(out, (out[0] as RawBatch).filtered ? this.head.matches : undefined);
  }

  /** Sends an error frame (e.g. a bad control) without ending the session. */
  sendError(err: unknown): void {
    const e = isTapedeckError(err) ? err : new TapedeckError('TPD_INTERNAL', 'internal error');
    if (!isTapedeckError(err)) this.log.error({ err }, 'session failed');
    else if (e.status >= 500 || e.code === 'TPD_CORRUPT_BLOCK') this.log.warn({ code: e.code, err: e.cause ?? e }, 'session read failed');
    const control = (e.details?.control as string | undefined) ?? undefined;
    this.sendFrame({ type: 'error', code: e.code, message: e.message, ...(control ? { control } : {}) });
  }

  // ---------------------------------------------------------------- cold storage (archive hooks)

  /**
   * A read waits for a remote archive file (get hook): tell the client it is buffering and
   * when the file arrived. A failed fetch reaches the client as an error (./playback-failures.ts).
   */
  private readonly onFetchWait: FetchWait = (e) => {
    this.fetching += e.phase === 'start' ? 1 : -1;
    const frame = fetchWaitFrame(e);
    if (frame) this.sendFrame(frame);
  };
}
