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
 * (a control change, a state frame, one frame of batches, or a loop's wrap-around) and
 * every loopStepsPerTurnMax turns it yields with setImmediate, whatever it awaited in
 * between (an await on a settled promise is no yield: a loop over one spins the process,
 * deaf to sockets and signals). A turn that slept until a timer fired has yielded already:
 * the next turn (the batch now due) goes at once, not after the sockets' turn. Where no
 * turn can make progress (no client, a client whose socket no longer drains, a loop over a
 * range holding no batch) the loop parks until something wakes it: a control change, a
 * client attaching or leaving, new data, close. Frames are encoded by ./wire.ts.
 */
import { randomBytes } from 'node:crypto';
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { formatBound, parseControls, type Bound, type ControlsInput, type ControlsView, type ParsedControls, type PlayState, type Speed } from '../../protocol/controls.js';
import type { Coverage } from '../../protocol/coverage.js';
import { coverageFrame, type ServerFrame } from '../../protocol/frames.js';
import { clampMessage, formatTs, stepOutcome } from '../../protocol/time.js';
import type { RawBatch } from '../../storage/cursor.js';
import { wallClockUs, type Archive, type Cursor, type FetchWait } from '../../storage/index.js';
import { Pacer } from './pacer.js';
import { stepBack, stepForward } from './steps.js';
import { SessionWire, type SessionSink } from './wire.js';

export type { FrameFormat, SessionSink } from './wire.js';

export interface SessionLimits {
  wsBufferHighBytes: number;
  frameBatchesMax: number;
  frameUpdatesMax: number;
  loopStepsPerTurnMax: number;
  coverageItemsMax: number;
}

/** Where the record is blind (server/coverage.ts CoverageLog): read, and told of changes. */
export interface CoverageSource {
  between(startUs: number, endUs: number): Coverage;
  on(event: 'change', fn: () => void): unknown;
  off(event: 'change', fn: () => void): unknown;
}

/** The slice of pino a session logs through (a child logger bound to the session id). */
export interface SessionLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SessionEvents {
  pacingErrorMs(ms: number): void;
  framesSent(n: number, bytes: number): void;
}

/** How early a paced batch may go out (ms): timers only ever fire late. */
const PACING_EARLY_MS = 1;


interface Command {
  set: ParsedControls;
  resolve: (v: ControlsView) => void;
  reject: (err: unknown) => void;
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
  private wakeFn: (() => void) | undefined;
  /** Holds the speed (and when each batch is due). */
  private readonly pacer = new Pacer(1);
  /** The last sleep ended by its timer (a real yield to the event loop). */
  private timerFired = false;
  private pending: RawBatch | null = null;
  private needState = true;
  /** A coverage frame is due: after every state frame, and when coverage changes while tailing. */
  private needCoverage = false;
  private readonly coverage: CoverageSource | undefined;
  private reachedEnd = false;
  /** Position shown to clients: the last batch delivered, or the time sought. */
  private posUs: number | null = null;
  private loopDone: Promise<void> | undefined;
  /** Loop turns since the last yield to the event loop. */
  private stepsThisTurn = 0;
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
    this.limits = limits;
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
    await this.apply(parsed);
    this.loopDone = this.run().catch((err: unknown) => this.fatal(err));
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
    for (const c of this.commands.splice(0)) c.reject(new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${this.id} was ${reason}`));
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
    const w = this.wakeFn;
    this.wakeFn = undefined;
    w?.();
  }

  // ---------------------------------------------------------------- the loop

  private sleep(ms: number): Promise<void> {
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

  private async run(): Promise<void> {
    while (!this.closed) {
      this.timerFired = false;
      await this.turn();
      if (this.timerFired) {
        this.stepsThisTurn = 0;
        continue;
      }
      if (++this.stepsThisTurn >= this.limits.loopStepsPerTurnMax) {
        this.stepsThisTurn = 0;
        // Let sockets, timers, signals and other sessions run: a session playing at
        // unlimited speed from cached blocks would otherwise never leave the microtask queue.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /** One bounded piece of work, or a wait for whatever lets the next one make progress. */
  private async turn(): Promise<void> {
    if (this.commands.length > 0) return this.applyCommands();
    const sink = this.wire.sink;
    if (!sink) return this.sleep(Infinity);
    if (this.needState) {
      this.needState = false;
      await this.sendState();
      this.sendFrame({ type: 'controls', controls: this.controls });
      this.needCoverage = this.coverage !== undefined;
      return;
    }
    if (this.needCoverage) {
      this.needCoverage = false;
      this.sendCoverage();
      return;
    }
    if (this.state === 'pause' || this.reachedEnd) return this.sleep(Infinity);
    if (sink.bufferedBytes() > this.limits.wsBufferHighBytes) {
      await Promise.race([sink.drained(), this.sleep(Infinity)]);
      // Drained yet still full: the socket is gone (ws counts what is sent after its close
      // as buffered, forever). Park until the close event detaches it, rather than re-poll.
      if (this.wire.sink === sink && sink.bufferedBytes() > this.limits.wsBufferHighBytes) await this.sleep(Infinity);
      return;
    }
    await this.step();
  }

  /** Sends the next frame of batches, or waits for data / the due time. */
  private async step(): Promise<void> {
    const first = this.pending ?? (await this.cursor.nextRaw());
    this.pending = null;
    if (!first) {
      if (this.endIsLive()) {
        if (this.state === 'play') {
          this.state = 'tail';
          this.sendFrame({ type: 'controls', controls: this.controls });
        }
        this.waitingForData = true;
        // A bounded end in the future: wake when it has passed (and batches stamped before
        // it have had a flush interval to be committed), then end if nothing came.
        await this.sleep(this.end.kind === 'ts' ? this.liveEndWaitMs() : Infinity);
        this.waitingForData = false;
      } else {
        await this.endReached();
      }
      return;
    }
    if (this.end.kind === 'ts' && first.ts > this.end.us) {
      this.pending = first;
      await this.endReached();
      return;
    }
    const paced = this.state === 'play' && this.speed !== 'unlimited';
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
    const out: RawBatch[] = [first];
    let updates = first.to - first.from;
    const batchesMax = this.wire.sink?.coalesce === true ? this.limits.frameBatchesMax : 1;
    while (out.length < batchesMax && updates < this.limits.frameUpdatesMax && this.commands.length === 0) {
      // Only coalesce what is due now; a paced session at real time sends one batch per frame.
      if (paced && (this.speed as number) <= 1) break;
      const nb = await this.cursor.nextRaw();
      if (!nb) break;
      const waitMs = paced ? this.pacer.waitMs(nb.ts) : 0;
      if ((this.end.kind === 'ts' && nb.ts > this.end.us) || waitMs > PACING_EARLY_MS) {
        this.pending = nb;
        break;
      }
      if (paced) this.events.pacingErrorMs(Math.abs(waitMs));
      out.push(nb);
      updates += nb.to - nb.from;
    }
    this.sendBatches(out);
    this.posUs = (out[out.length - 1] as RawBatch).ts;
  }

  /**
   * An unbounded end, or one in the future, turns the end of the archive into tail. A
   * bounded end stays live for one flush interval (plus a second) after it passes: a batch
   * stamped just before it may still be on its way to the disk.
   */
  private endIsLive(): boolean {
    return this.end.kind === 'unbounded' || this.end.us + this.commitLagUs() > wallClockUs();
  }

  private commitLagUs(): number {
    return (this.a.options.flushIntervalMs + 1000) * 1000;
  }

  /** Time until a bounded end stops being live (see endIsLive). */
  private liveEndWaitMs(): number {
    const end = this.end as { kind: 'ts'; us: number };
    return Math.max(1, (end.us + this.commitLagUs() - wallClockUs()) / 1000 + 1);
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
    for (const c of cmds) {
      try {
        await this.apply(c.set);
        c.resolve(this.controls);
      } catch (err) {
        c.reject(err);
      }
    }
    if (cmds.length > 0) this.sendFrame({ type: 'controls', controls: this.controls });
  }

  private async apply(set: ParsedControls): Promise<void> {
    // A new range, position or state may hold batches: the loop may wrap again. (Speed
    // alone changes nothing there.)
    if (set.start || set.end || set.pos !== undefined || set.state !== undefined || set.loop !== undefined) this.wrappedEmpty = false;
    if (set.start) this.start = set.start;
    if (set.end) this.end = set.end;
    if (set.loop !== undefined) this.loop = set.loop;
    if (set.speed !== undefined) this.pacer.setSpeed(set.speed);
    if (set.start && set.end && set.start.kind === 'ts' && set.end.kind === 'ts' && set.end.us < set.start.us) {
      throw new TapedeckError('TPD_BAD_CONTROL', 'end: is before start', { control: 'end' });
    }
    if (set.state !== undefined) {
      this.state = set.state;
      if (set.state === 'pause') this.pacer.pause();
      else if (set.state === 'play') this.pacer.resume();
      else this.pacer.reset();
      if (set.state === 'tail' && set.pos === undefined) await this.seekTo({ kind: 'end' });
      if (set.state !== 'pause') this.reachedEnd = false;
    }
    if (set.pos !== undefined) await this.seekTo(set.pos);
    if (set.end) this.reachedEnd = false;
  }

  private async seekTo(pos: NonNullable<ParsedControls['pos']>): Promise<void> {
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
        // Steps count from the last batch delivered. A batch read but held back (pacing,
        // end) moved the cursor one further: put the cursor back first.
        if (this.pending && this.posUs !== null) await this.cursor.seek({ ts: this.posUs });
        else if (this.pending) await this.cursor.seek('beginning');
        const moved = pos.n > 0 ? await stepForward(this.cursor, pos.n) : await stepBack(this.cursor, -pos.n);
        // A step that ran into the start or the end says so rather than stopping silently.
        const message = clampMessage(pos.n, stepOutcome(pos.n, moved, this.cursor.pos));
        if (message !== null) this.sendFrame({ type: 'info', code: 'TPD_CLAMPED', message });
        break;
      }
    }
    this.posUs = this.cursor.pos;
    this.pending = null;
    this.pacer.reset();
    this.needState = true;
    this.reachedEnd = false;
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
    if (e.phase === 'start') this.sendFrame({ type: 'info', code: 'TPD_BUFFERING', message: `buffering: fetching archive file ${e.name} from cold storage` });
    else if (e.phase === 'done') this.sendFrame({ type: 'info', code: 'TPD_BUFFERED', message: `archive file ${e.name} fetched; playback goes on` });
  };

  private fatal(err: unknown): void {
    // A read error (corrupt block, file unavailable): tell the client, pause, stay alive so
    // it can seek elsewhere.
    this.sendError(err);
    this.state = 'pause';
    this.pacer.reset();
    this.sendFrame({ type: 'controls', controls: this.controls });
    if (!this.closed) this.loopDone = this.run().catch((e: unknown) => this.fatal(e));
  }
}
