/**
 * One playback session: a cursor over the archive, the controls, and a loop that paces
 * recorded batches to the attached client.
 *
 * Only the session's own loop touches the cursor. Control changes are queued and applied
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
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { burstClampMessage, formatBound, parseControls, type Bound, type ControlsInput, type ControlsView, type ParsedControls, type PlayState, type Speed } from '../../protocol/controls.js';
import { coverageFrame, type ServerFrame } from '../../protocol/frames.js';
import { formatTs } from '../../protocol/time.js';
import type { ColumnBatches, RawBatch } from '../../storage/cursor.js';
import { wallClockUs, type Archive, type Cursor, type FetchWait } from '../../storage/index.js';
import { Burst } from './burst.js';
import { Pacer } from './pacer.js';
import type { CoverageSource, SessionEvents, SessionLimits, SessionLog } from './ports.js';
import { endIsLive, liveEndWaitMs } from './live-end.js';
import { stepFrom } from './steps.js';
import { Turns, yieldToEventLoop } from './turns.js';
import { gatherFrame } from './gather.js';
import { HeldColumns } from './columns.js';
import { fetchWaitFrame, SessionWire, type SessionSink } from './wire.js';
import { coverInSlices } from '../routes/queries.js';

export type { FrameFormat, SessionSink } from './wire.js';
export type { CoverageSource, SessionEvents, SessionLimits, SessionLog } from './ports.js';

/** How early a paced batch may go out (ms): timers only ever fire late. */
const PACING_EARLY_MS = 1;


interface Command {
  set: ParsedControls;
  resolve: (v: ControlsView) => void;
  reject: (err: unknown) => void;
}

/** A range whose end is before its start is refused, naming the control that made it so. */
function checkRange(start: Bound, end: Bound, control: 'start' | 'end'): void {
  if (start.kind !== 'ts' || end.kind !== 'ts' || end.us >= start.us) return;
  throw new TapedeckError('TPD_BAD_CONTROL', control === 'end' ? `end: is before start (${formatBound(start)})` : `start: is after end (${formatBound(end)})`, { control });
}

export class Session {
  readonly id = randomBytes(16).toString('hex');
  readonly createdAt = Date.now();
  readonly filter: readonly string[];
  readonly clientKey: string;
  start: Bound = { kind: 'unbounded' };
  end: Bound = { kind: 'unbounded' };
  state: PlayState = 'play';
  loop = false;
  /** When the last client went away (or creation); drives garbage collection. */
  detachedAt = Date.now();
  closed = false;
  /** True while the loop waits for newly committed data. */
  waitingForData = false;

  private readonly a: Archive;
  private readonly cursor: Cursor;
  private readonly limits: SessionLimits;
  private readonly events: SessionEvents;
  private readonly wire: SessionWire;
  private readonly commands: Command[] = [];
  private readonly turns: Turns;
  /** Holds the speed (and when each batch is due). */
  private readonly pacer = new Pacer(1);
  /** A burst being sent (`burst: N`, `next: true`), if any. */
  private burst: Burst | undefined;
  private pending: RawBatch | null = null;
  /** Unpaced play reads whole blocks as columns (./columns.ts); batches read and not yet sent. */
  private readonly held = new HeldColumns();
  /**
   * The cursor reads columns: an archive's does; a merged session's (server/cluster) reads
   * batch by batch only, and its positions are not times alone (equal times on two shards).
   */
  private readonly readsColumns: boolean;
  /**
   * The cursor that reads columns while playing at unlimited speed: a second cursor, made
   * at the main one's position and dropped (with its block scratch and read-ahead, about
   * 1 MB) when unlimited play stops, so paused, paced and idle sessions hold none of it.
   */
  private columnCursor: Cursor | undefined;
  private needState = true;
  /** A coverage frame is due: after every state frame, and when coverage changes while tailing. */
  private needCoverage = false;
  private readonly coverage: CoverageSource | undefined;
  private reachedEnd = false;
  /** Position shown to clients: the last batch delivered, or the time sought. */
  private posUs: number | null = null;
  private loopDone: Promise<void> | undefined;
  /** The loop wrapped to `start` and has sent no batch since: the range is empty. */
  private wrappedEmpty = false;

  readonly log: SessionLog;

  constructor(archive: Archive, clientKey: string, filter: readonly string[], limits: SessionLimits, events: SessionEvents, log: (id: string) => SessionLog, coverage?: CoverageSource) {
    this.a = archive;
    this.coverage = coverage;
    this.log = log(this.id);
    this.clientKey = clientKey;
    this.filter = filter;
    this.cursor = archive.cursor({ ...(filter.length > 0 ? { filter } : {}), onFetchWait: this.onFetchWait });
    this.readsColumns = typeof (this.cursor as Partial<Cursor>).nextColumns === 'function';
    this.limits = limits;
    this.turns = new Turns(limits.loopStepsPerTurnMax);
    this.events = events;
    this.wire = new SessionWire(() => archive.paths, events.framesSent);
  }

  /** Applies the creation controls (including the initial seek) and starts the loop. */
  async init(input: ControlsInput): Promise<void> {
    const parsed = parseControls(input, wallClockUs());
    if (parsed.pos === undefined && parsed.state === 'tail') {
      parsed.pos = { kind: 'end' };
    } else if (parsed.pos === undefined) {
      const start = parsed.start ?? this.start;
      parsed.pos = start.kind === 'unbounded' ? { kind: 'beginning' } : { kind: 'ts', us: start.us };
    }
    // The state frame asks the filter of every path id at once: decided here first, in slices.
    if (this.filter.length > 0) await coverInSlices(this.cursor, this.a.paths.length);
    await this.apply(parsed);
    this.loopDone = this.run();
  }

  get controls(): ControlsView {
    const pos = this.posUs;
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

  get attached(): boolean {
    return this.wire.sink !== undefined;
  }

  /** Validates, then queues a control change for the loop; resolves with the new controls. */
  setControls(input: ControlsInput): Promise<ControlsView> {
    if (this.closed) return Promise.reject(new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} is closed`));
    let set: ParsedControls;
    try {
      // `pos-5m` counts from the position the client was shown when it asked.
      set = parseControls(input, wallClockUs(), this.posUs);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.commands.push({ set, resolve, reject });
      this.wake();
    });
  }

  /** Attaches a client stream; a second stream replaces the first (reconnect). */
  attach(sink: SessionSink): void {
    const previous = this.wire.sink;
    this.log.info({ format: sink.format, replaced: previous !== undefined }, 'client attached');
    previous?.close(CLOSE_CODES.replaced, 'replaced by a newer connection');
    this.wire.connect(sink);
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
    // Nobody receives the rest of a burst: it ends where it is, in the state it leads to.
    this.finishBurst(null);
    this.detachedAt = Date.now();
    this.wake();
  }

  async close(reason: 'closed' | 'deleted'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.log.info({ reason }, 'session closed');
    const sink = this.wire.sink;
    if (sink) {
      this.sendFrame({ type: 'end', reason });
      sink.close(CLOSE_CODES.normal, reason);
    }
    this.wire.connect(undefined);
    const gone = (): TapedeckError => new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} was ${reason}`);
    for (const c of this.commands.splice(0)) c.reject(gone());
    this.burst?.fail(gone());
    this.burst = undefined;
    this.wake();
    await this.loopDone;
  }

  /** The coverage journal changed: a tailing session sends the new coverage. */
  coverageChanged(): void {
    if (this.coverage === undefined || this.state !== 'tail') return;
    this.needCoverage = true;
    this.wake();
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

  private run(): Promise<void> {
    return this.turns.run(() => this.turn(), () => this.closed).catch((err: unknown) => this.fatal(err));
  }

  /** One bounded piece of work, or a wait for whatever lets the next one make progress. */
  private async turn(): Promise<void> {
    if (this.commands.length > 0) {
      await this.releaseColumns();
      return this.applyCommands();
    }
    const sink = this.wire.sink;
    if (!sink) return this.sleep(Infinity);
    // State and coverage frames wait for the socket like batches: a client that seeks and
    // does not read gets one state frame when it reads again, not one a seek.
    if ((this.needState || this.needCoverage) && sink.bufferedBytes() > this.limits.wsBufferHighBytes) return this.drain(sink);
    if (this.needState) {
      await this.releaseColumns();
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
    await Promise.race([sink.drained().then(() => (drained = true)), this.sleep(Infinity)]);
    // Drained yet still full: the socket is gone (ws counts what is sent after its close
    // as buffered, forever). Park until the close event detaches it, rather than re-poll.
    // Not after a wake-up: that sleep would swallow the control change that woke it (a
    // PATCH to a session whose client was slow never answered).
    if (drained && this.commands.length === 0 && this.wire.sink === sink && sink.bufferedBytes() > this.limits.wsBufferHighBytes) await this.sleep(Infinity);
  }

  /** Sends the next frame of batches, or waits for data / the due time. */
  private async step(): Promise<void> {
    const burst = this.burst;
    // Unpaced play (no burst, nothing held back) reads whole blocks as columns.
    if (this.readsColumns && !burst && this.pending === null && this.state === 'play' && this.speed === 'unlimited') return this.stepColumns();
    await this.releaseColumns();
    const first = this.pending ?? (await this.cursor.nextRaw());
    this.pending = null;
    // A burst takes what is there now: it never waits for live data, nor wraps a loop.
    if (!first && burst) return this.finishBurst(this.endIsLive() ? 'live' : 'end');
    if (!first) return this.noMoreData();
    if (this.end.kind === 'ts' && first.ts > this.end.us) {
      this.pending = first;
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
        this.pending = first;
        await this.sleep(waitMs - PACING_EARLY_MS);
        return;
      }
      this.events.pacingErrorMs(Math.abs(waitMs));
    }
    // Only coalesce what is due now; a paced session at real time sends one batch per frame.
    const coalesce = this.wire.sink?.coalesce === true && !(paced && (this.speed as number) <= 1);
    const { out, held, failed } = await gatherFrame(this.cursor, first, {
      batchesMax: Math.min(coalesce ? this.limits.frameBatchesMax : 1, burst?.left ?? Infinity),
      updatesMax: this.limits.frameUpdatesMax,
      endUs: this.end.kind === 'ts' ? this.end.us : null,
      waitMs: paced ? (ts) => this.pacer.waitMs(ts) : undefined,
      earlyMs: PACING_EARLY_MS,
      interrupted: () => this.commands.length > 0,
      onTime: (ms) => this.events.pacingErrorMs(ms),
    });
    if (burst && this.burst !== burst) {
      // The burst ended while this frame was read (the client left, or the session closed):
      // nothing goes out, and the position stays at the last batch sent, as answered.
      await this.cursor.seek(this.posUs !== null ? { ts: this.posUs } : 'beginning');
      this.pending = null;
      return;
    }
    this.pending = held;
    this.sendBatches(out);
    this.posUs = (out[out.length - 1] as RawBatch).ts;
    if (burst) {
      burst.sent += out.length;
      if (burst.left === 0) this.finishBurst(null);
    }
    // The batches before a failed read have gone out; the failure reaches the client now.
    if (failed !== undefined) throw failed;
  }

  /** Committed data ran out (not in a burst): tail a live end, or end (or wrap) here. */
  private async noMoreData(): Promise<void> {
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
    if (!this.held.unsent) {
      const view = await (await this.columnCursorAt()).nextColumns();
      if (!view) {
        this.held.clear();
        return this.noMoreData();
      }
      this.held.hold(view);
    }
    const view = this.held.view as ColumnBatches;
    const k0 = this.held.next;
    const k1 = this.held.frameEnd({
      batchesMax: this.wire.sink?.coalesce === true ? this.limits.frameBatchesMax : 1,
      updatesMax: this.limits.frameUpdatesMax,
      endUs: this.end.kind === 'ts' ? this.end.us : null,
    });
    if (k1 === k0) {
      // The next batch is past the end: the cursor goes back after the last batch sent.
      await this.releaseColumns();
      return this.endReached();
    }
    this.wrappedEmpty = false;
    this.wire.columnBatches(view, k0, k1);
    this.held.next = k1;
    this.posUs = view.ts[k1 - 1] as number;
  }

  /** The column cursor, made at the position shown (where the main cursor stands) when there is none. */
  private async columnCursorAt(): Promise<Cursor> {
    if (this.columnCursor) return this.columnCursor;
    const c = this.a.cursor({ ...(this.filter.length > 0 ? { filter: this.filter } : {}), onFetchWait: this.onFetchWait });
    if (this.filter.length > 0) await coverInSlices(c, this.a.paths.length);
    await c.seek(this.posUs !== null ? { ts: this.posUs } : 'beginning');
    this.columnCursor = c;
    return c;
  }

  /**
   * Leaves unlimited play: drops the column cursor and the block it holds, and moves the
   * main cursor to just after the last batch sent (or where the session was sought): a
   * seek to that time, exact since an archive's batch times only grow.
   */
  private async releaseColumns(): Promise<void> {
    this.held.clear();
    if (!this.columnCursor) return;
    this.columnCursor = undefined;
    await this.cursor.seek(this.posUs !== null ? { ts: this.posUs } : 'beginning');
  }

  /**
   * Ends the burst: `where` it stopped short (an info frame TPD_CLAMPED says so), null when
   * all of it went or it was cut short. Playing goes on paced from the burst's last batch;
   * the controls frame that follows marks the end for clients.
   */
  private finishBurst(where: 'end' | 'live' | 'bound' | null): void {
    const b = this.burst;
    if (!b) return;
    this.burst = undefined;
    if (where !== null) this.sendFrame({ type: 'info', code: 'TPD_CLAMPED', message: burstClampMessage(b.asked, b.sent, where, this.posUs) });
    this.pacer.reset();
    if (this.state === 'play' && this.posUs !== null) this.pacer.dueMs(this.posUs);
    this.sendFrame({ type: 'controls', controls: this.controls });
    b.settle(this.controls);
  }

  private endIsLive(): boolean {
    return endIsLive(this.end, this.a.options.flushIntervalMs, wallClockUs());
  }

  private async endReached(): Promise<void> {
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

  // ---------------------------------------------------------------- controls

  private async applyCommands(): Promise<void> {
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
        await this.apply(c.set);
        // A burst answers when it is over (its controls frame marks the end); a speed change
        // during one answers at once.
        if (c.set.burst !== undefined && this.burst) this.burst.waitFor(c);
        else c.resolve(this.controls);
      } catch (err) {
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

  private async seekTo(pos: NonNullable<ParsedControls['pos']>): Promise<void> {
    try {
      await this.moveCursor(pos);
    } catch (err) {
      // Nothing moved: the cursor goes back after the last batch shown (a step or a fetch
      // that failed half-way left it elsewhere), and what it read ahead is read again.
      await this.cursor.seek(this.posUs !== null ? { ts: this.posUs } : 'beginning').catch((again: unknown) => this.log.warn({ err: again }, 'session cursor not put back'));
      this.pending = null;
      throw err;
    }
    this.posUs = this.cursor.pos;
    this.pending = null;
    this.held.clear();
    this.columnCursor = undefined;
    this.pacer.reset();
    this.needState = true;
    this.reachedEnd = false;
  }

  private async moveCursor(pos: NonNullable<ParsedControls['pos']>): Promise<void> {
    switch (pos.kind) {
      case 'beginning':
        await this.cursor.seek('beginning');
        break;
      case 'end':
        await this.cursor.seek('end');
        break;
      case 'ts':
        await this.cursor.seek({ ts: pos.us });
        break;
      case 'steps': {
        // A step that ran into the start or the end says so rather than stopping silently.
        const message = await stepFrom(this.cursor, pos.n, this.pending !== null, this.posUs, this.limits.stepBatchesPerYield);
        if (message !== null) this.sendFrame({ type: 'info', code: 'TPD_CLAMPED', message });
        break;
      }
    }
  }

  // ---------------------------------------------------------------- frames

  private async sendState(): Promise<void> {
    this.wire.state(this.posUs, await this.cursor.stateById(), this.matchFn);
  }

  /** The gaps and outages touching [start, end] (unbounded: the whole archive). */
  private sendCoverage(): void {
    if (!this.coverage) return;
    const c = this.coverage.between(this.start.kind === 'ts' ? this.start.us : 0, this.end.kind === 'ts' ? this.end.us : Number.MAX_SAFE_INTEGER);
    this.sendFrame(coverageFrame(c, this.limits.coverageItemsMax));
  }

  /** Control-plane frames (controls, end, error, info, coverage); batches go through sendBatches. */
  private sendFrame(frame: ServerFrame): void {
    this.wire.frame(frame);
  }

  private sendBatches(out: RawBatch[]): void {
    this.wrappedEmpty = false;
    this.wire.batches(out, (out[0] as RawBatch).filtered ? this.matchFn : undefined);
  }

  private readonly matchFn = (id: number): boolean => this.cursor.matches(id);

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
   * when the file arrived. A failed fetch reaches the client through fatal() as an error.
   */
  private readonly onFetchWait: FetchWait = (e) => {
    const frame = fetchWaitFrame(e);
    if (frame) this.sendFrame(frame);
  };

  private fatal(err: unknown): void {
    // A read error (corrupt block, file unavailable): tell the client, pause, stay alive so
    // it can seek elsewhere.
    this.sendError(err);
    this.state = 'pause';
    this.pacer.reset();
    // A burst cut by the failure ends here; its waiters get the controls after it.
    const b = this.burst;
    this.burst = undefined;
    this.sendFrame({ type: 'controls', controls: this.controls });
    b?.settle(this.controls);
    if (!this.closed) this.loopDone = this.run();
  }
}
