/**
 * Owns every playback session: creation under the max_sessions / max_sessions_per_client
 * limits, lookup, deletion, garbage collection of sessions whose clients are gone (after
 * sessionGraceMs), and the wake-up of tailing sessions when new batches are committed.
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { ControlsInput } from '../../protocol/controls.js';
import type { Archive } from '../../storage/index.js';
import { Session, type CoverageSource, type SessionLimits, type SessionLog } from './session.js';

export interface PlaybackOptions extends SessionLimits {
  /** Sessions at once, all clients (seed 003 default: 512). */
  maxSessions: number;
  /** Sessions at once per client address (seed 003 default: 64). */
  maxSessionsPerClient: number;
  /** A session with no client attached for this long is collected. */
  sessionGraceMs: number;
}

export const PLAYBACK_DEFAULTS: PlaybackOptions = {
  maxSessions: 512,
  maxSessionsPerClient: 64,
  sessionGraceMs: 30_000,
  /** Above this many bytes sent and not known to be read (past the last answered ping) the session waits for the client to read. */
  wsBufferHighBytes: 1024 * 1024,
  /** A `batches` frame carries at most this many batches ... */
  frameBatchesMax: 256,
  /** ... and at most about this many updates ... */
  frameUpdatesMax: 16_384,
  /**
   * ... and at most this many bytes (estimated at least the encoded size, either format:
   * server/sessions/frame-bytes.ts): a batch that would take a frame past it waits for the
   * next frame. Numbers seldom reach it (frameUpdatesMax of them with paths of 30
   * characters take about 1 MiB of JSON); large strings and bytes do. A batch is never
   * split: one larger than this goes alone in its own frame, at most
   * PROTOCOL_LIMITS.streamFrameBytesMax. msgpack `paths` frames are cut at about it too.
   * Four times wsBufferHighBytes: a frame goes whole, so the server may run this far past
   * the mark.
   */
  frameBytesMax: 4 * 1024 * 1024,
  /**
   * Turns of a session's loop (each one frame at most: a control change, a state frame, a
   * frame of batches as bounded above, a loop's wrap-around) between two yields to the
   * event loop. One keeps /health and other sessions within a frame's work of their turn.
   */
  loopStepsPerTurnMax: 1,
  /**
   * Batches a step (`pos: "+N"` / `"-N"`, up to seekStepsMax) passes between two yields to
   * the event loop; queued control changes are applied one per turn as well. A step of
   * 100 000 batches over cached blocks held the server about 0.1 s in one piece, and the
   * fifty such control frames a stream may send in a second held it for seconds.
   */
  stepBatchesPerYield: 4096,
  /**
   * Gaps and outages in one `coverage` frame, together; past it the newest are sent with
   * `truncated` (a source flapping for months would otherwise make a frame of megabytes).
   */
  coverageItemsMax: 1000,
};

/** Pacing errors kept for statistics (a ring; the newest replace the oldest). */
const PACING_SAMPLES_MAX = 100_000;

export interface PlaybackStats {
  created: number;
  collected: number;
  framesSent: number;
  bytesSent: number;
}

/** The slice of pino the manager uses; each session logs through a child of it. */
export interface Log extends SessionLog {
  child(bindings: Record<string, unknown>): SessionLog;
}

export class SessionManager {
  readonly options: PlaybackOptions;
  readonly stats: PlaybackStats = { created: 0, collected: 0, framesSent: 0, bytesSent: 0 };
  private readonly sessions = new Map<string, Session>();
  private readonly a: Archive;
  private readonly log: Log;
  private readonly gcTimer: NodeJS.Timeout;
  private readonly pacing = new Float64Array(PACING_SAMPLES_MAX);
  private pacingCount = 0;
  /** Called with every pacing error (ms); metrics hang a histogram here. */
  pacingObserver: ((ms: number) => void) | undefined;
  private readonly onCommit = (): void => {
    for (const s of this.sessions.values()) if (s.waitingForData) s.wake();
  };
  private readonly coverage: CoverageSource | undefined;
  private readonly onCoverage = (): void => {
    for (const s of this.sessions.values()) s.coverageChanged();
  };

  /** `coverage`: the recording's coverage journal; without it sessions send no coverage frames. */
  constructor(archive: Archive, opts: Partial<PlaybackOptions>, log: Log, coverage?: CoverageSource) {
    this.a = archive;
    this.log = log;
    this.coverage = coverage;
    coverage?.on('change', this.onCoverage);
    this.options = { ...PLAYBACK_DEFAULTS, ...opts };
    for (const [k, v] of Object.entries(this.options)) {
      if (!Number.isFinite(v) || v <= 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `playback option ${k} must be a positive number, got ${String(v)}`);
    }
    archive.on('commit', this.onCommit);
    this.gcTimer = setInterval(() => this.collect(), Math.max(10, Math.min(1000, this.options.sessionGraceMs / 2)));
    this.gcTimer.unref();
  }

  /** `asker`: aborted when who asked leaves (the POST's client): the creation stops, its slot freed. */
  async create(clientKey: string, controls: ControlsInput, filter: readonly string[] = [], asker?: AbortSignal): Promise<Session> {
    if (this.sessions.size >= this.options.maxSessions) {
      throw new TapedeckError('TPD_SESSION_LIMIT', `max_sessions (${this.options.maxSessions}) sessions are open`);
    }
    let mine = 0;
    for (const s of this.sessions.values()) if (s.clientKey === clientKey) mine++;
    if (mine >= this.options.maxSessionsPerClient) {
      throw new TapedeckError('TPD_SESSION_LIMIT', `max_sessions_per_client (${this.options.maxSessionsPerClient}) sessions are open for ${clientKey}`);
    }
    const s = new Session(this.a, clientKey, filter, this.options, {
      pacingErrorMs: (ms) => {
        this.pacing[this.pacingCount % PACING_SAMPLES_MAX] = ms;
        this.pacingCount++;
        this.pacingObserver?.(ms);
      },
      framesSent: (n, bytes) => {
        this.stats.framesSent += n;
        this.stats.bytesSent += bytes;
      },
    }, (id) => this.log.child({ session: id, client: clientKey }), this.coverage);
    // Reserve the slot before the first await so concurrent creations respect the limits.
    this.sessions.set(s.id, s);
    try {
      await s.init(controls, asker);
    } catch (err) {
      this.sessions.delete(s.id);
      throw err;
    }
    // Deleted (it was listed) or the server closing while its creation waited (a cold fetch).
    if (s.closed) throw new TapedeckError('TPD_SESSION_NOT_FOUND', `session ${s.id} was closed while it was being created`);
    this.stats.created++;
    return s;
  }

  get(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new TapedeckError('TPD_SESSION_NOT_FOUND', `no session ${id}`);
    return s;
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  get size(): number {
    return this.sessions.size;
  }

  async delete(id: string): Promise<void> {
    const s = this.get(id);
    this.sessions.delete(id);
    await s.close('deleted');
  }

  /** Recent pacing errors (ms late against schedule), newest last. */
  pacingErrors(): Float64Array {
    const n = Math.min(this.pacingCount, PACING_SAMPLES_MAX);
    return this.pacing.slice(0, n);
  }

  resetPacing(): void {
    this.pacingCount = 0;
  }

  private collect(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (!s.collectable(now, this.options.sessionGraceMs)) continue;
      this.sessions.delete(s.id);
      this.stats.collected++;
      s.log.info({}, 'session collected: no client for the grace period');
      void s.close('closed');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.gcTimer);
    this.a.off('commit', this.onCommit);
    this.coverage?.off('change', this.onCoverage);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close('closed')));
  }
}
