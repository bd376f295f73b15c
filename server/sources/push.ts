/**
 * `push`: batches posted to the server instead of polled. The ingest routes
 * (POST /api/v1/ingest, WebSocket /api/v1/ingest/ws) hand their NDJSON text, or a WebSocket's
 * binary message (the same batches in msgpack, push-lines.ts), here. Each line is one batch: `{ "ts"?: <time>, "updates": { "/path": value, ... } }`, where `ts` is an
 * epoch number (seconds, milliseconds or microseconds by magnitude, as everywhere in
 * Tapedeck) or an RFC 3339 string; without it the batch is stamped on arrival. A bad line is
 * rejected with its line number and code; the good lines around it are kept, and past
 * ingestBadLinesMax bad lines reading stops (TPD_TOO_MANY_BAD_LINES). An empty batch
 * (`"updates": {}`) is a bad line: it would record nothing. An error of the archive rather
 * than of a line (backpressure, full disk, closed, I/O) ends the request with that error
 * and the counts of what was recorded before it.
 *
 * In a cluster (docs/cluster.md), a request with a path another shard owns is refused whole
 * before anything of it is recorded (421 TPD_NOT_OWNER naming the owner and its URL): its
 * lines are all read and checked first, then recorded.
 *
 * Config: `refuse_filtered: true` refuses a push none of whose updates the record spec
 * keeps (TPD_INGEST_FILTERED) instead of answering it as accepted; a push of which some
 * updates are kept is recorded and answered with the count left out (`filtered_updates`).
 */
import { EventEmitter } from 'node:events';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { TapedeckError, isTapedeckError, type ErrorCode } from '../../protocol/errors.js';
import type { Update } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import { ndjsonLines, parseMsgpackMessage, type PushedLine } from './push-lines.js';
import type { RecordOutcome, RecorderSink } from '../recorder.js';
import { HealthTracker, type BatchSink, type Source, type SourceContext, type SourceFactory, type SourceHealth } from './source.js';

export interface LineRejection {
  line: number;
  code: ErrorCode;
  message: string;
}

/** `memory`: answered once the lines are in the archive writer; `durable`: once they are in a committed, fsynced flush. */
export type AckLevel = 'memory' | 'durable';
export const ACK_LEVELS: readonly AckLevel[] = ['memory', 'durable'];

export interface IngestOptions {
  ack?: AckLevel;
}

export interface IngestResult {
  ack: AckLevel;
  /** Lines read, empty ones included (all of them unless reading stopped early). */
  linesRead: number;
  /** Good lines: handed to the recorder (their updates recorded or left out by the spec). */
  acceptedLines: number;
  /** Updates of the good lines: recordedUpdates + filteredUpdates. */
  acceptedUpdates: number;
  /** Updates appended to the archive. */
  recordedUpdates: number;
  /** Updates the record spec left out. */
  filteredUpdates: number;
  rejectedLines: number;
  /**
   * Good lines with a `ts` of their own that were recorded later than it (at or before the
   * previous batch: moved 1 µs after it, the archive's order), so no move goes unsaid.
   */
  restampedLines: number;
  /** The first ingestRejectionsListedMax rejections. */
  rejected: LineRejection[];
  /**
   * What ended the request short of a clean answer, when something did: too many bad lines,
   * an error of the archive that is not about a line (backpressure, full disk, closed, I/O;
   * the lines before it are counted above), or a push left out whole by the spec under
   * refuse_filtered.
   */
  stoppedBy: TapedeckError | undefined;
}

/**
 * Codes that are about one line (its syntax, a path, a timestamp, its size): the line is
 * rejected and reading goes on. Any other error from the archive is about the archive and
 * ends the request.
 */
const LINE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TPD_BAD_INGEST_LINE', 'TPD_BAD_PATH', 'TPD_BAD_ARGUMENT', 'TPD_BATCH_TOO_LARGE']);

export interface PushSourceConfig {
  /** Refuse (422 TPD_INGEST_FILTERED) a push whose every update falls outside the record spec. */
  refuse_filtered?: boolean;
}

/** The recorder's sink as push uses it; a plain BatchSink is adapted (no counts of filtered updates, flush for durability). */
interface PushSink {
  record(updates: Update[], tsUs?: number): Promise<RecordOutcome>;
  durable(ts: number): Promise<void>;
}

function pushSink(sink: BatchSink): PushSink {
  const s = sink as Partial<RecorderSink>;
  if (typeof s.record === 'function' && typeof s.durable === 'function') return s as RecorderSink;
  return {
    record: async (updates, tsUs) => {
      const ts = await sink.write(updates, tsUs);
      return ts === undefined ? { ts, kept: 0, filtered: updates.length } : { ts, kept: updates.length, filtered: 0 };
    },
    durable: () => (s.flush ? s.flush() : Promise.reject(new TapedeckError('TPD_INTERNAL', 'this sink cannot make batches durable'))),
  };
}

/** Refuses paths another shard of the cluster owns (server/cluster/ownership.ts): throws TPD_NOT_OWNER. */
export interface OwnershipCheck {
  check(paths: Iterable<string>): void;
}

/** The paths of one line (none for a bad one). */
function* pathsOf(line: PushedLine): Generator<string> {
  if (line === null || 'error' in line) return;
  for (const u of line.updates) yield u[0];
}

/**
 * The lines of a request, read and checked for ownership before any is recorded (all or
 * nothing): refused at the first line with a path another shard owns. Bounded by the body
 * (ingestBodyBytesMax); reading stops where appendLines would, at ingestBadLinesMax bad
 * lines, and yields to the event loop every ingestSliceLines lines, as appendLines does.
 */
async function readAhead(lines: Iterable<PushedLine>, ownership: OwnershipCheck): Promise<PushedLine[]> {
  const all: PushedLine[] = [];
  let bad = 0;
  for (const line of lines) {
    ownership.check(pathsOf(line));
    all.push(line);
    if (line !== null && 'error' in line && ++bad >= SERVER_LIMITS.ingestBadLinesMax) break;
    if (all.length % SERVER_LIMITS.ingestSliceLines === 0) await yieldLoop();
  }
  return all;
}

export class PushSource extends EventEmitter implements Source {
  readonly type = 'push';
  readonly name: string;
  private readonly sink: PushSink;
  private readonly cfg: PushSourceConfig;
  private readonly log: Logger;
  private readonly tracker: HealthTracker;
  private inFlight = new Set<Promise<IngestResult>>();
  private stopping = false;
  /** Set in a cluster: pushes of paths another shard owns are refused whole. */
  ownership: OwnershipCheck | undefined;

  constructor(ctx: SourceContext, cfg: PushSourceConfig = {}) {
    super();
    this.name = ctx.name;
    this.sink = pushSink(ctx.sink);
    this.cfg = cfg;
    this.log = ctx.log;
    this.tracker = new HealthTracker(ctx.name, 'push');
  }

  start(): void {}

  /** Refuses new ingest, then waits for the bodies already being appended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.inFlight]);
    this.tracker.stopped();
  }

  health(): SourceHealth {
    return this.tracker.snapshot();
  }

  /**
   * Records every good line of an NDJSON text (lines numbered from 1), up to
   * ingestBadLinesMax bad ones; with `ack: 'durable'` resolves only once the recorded lines
   * are in a committed, fsynced flush.
   */
  ingest(text: string, opts: IngestOptions = {}): Promise<IngestResult> {
    return this.ingestLines(ndjsonLines(text), opts);
  }

  /**
   * The same for a binary message: one msgpack batch map, or an array of them numbered as
   * lines from 1 (push-lines.ts parseMsgpackMessage). Counted, filtered, acknowledged and
   * refused exactly as NDJSON lines are.
   */
  ingestMsgpack(bytes: Uint8Array, opts: IngestOptions = {}): Promise<IngestResult> {
    return this.ingestLines(parseMsgpackMessage(bytes), opts);
  }

  private ingestLines(lines: Iterable<PushedLine>, opts: IngestOptions): Promise<IngestResult> {
    if (this.stopping) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'the server is shutting down; ingest is closed'));
    const ownership = this.ownership;
    const p = ownership ? readAhead(lines, ownership).then((all) => this.run(all, opts.ack ?? 'memory')) : this.run(lines, opts.ack ?? 'memory');
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  private async run(lines: Iterable<PushedLine>, ack: AckLevel): Promise<IngestResult> {
    const res: IngestResult = { ack, linesRead: 0, acceptedLines: 0, acceptedUpdates: 0, recordedUpdates: 0, filteredUpdates: 0, rejectedLines: 0, restampedLines: 0, rejected: [], stoppedBy: undefined };
    const lastTs = await this.appendLines(lines, res);
    if (ack === 'durable' && lastTs !== undefined && !isArchiveError(res.stoppedBy)) {
      try {
        await this.sink.durable(lastTs);
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        res.stoppedBy = err;
      }
    }
    if (this.cfg.refuse_filtered && res.stoppedBy === undefined && res.recordedUpdates === 0 && res.filteredUpdates > 0) {
      res.stoppedBy = new TapedeckError('TPD_INGEST_FILTERED', `all ${res.filteredUpdates} update(s) fall outside the record spec; nothing was recorded`);
    }
    this.account(res);
    this.emit('ingest', res);
    return res;
  }

  /** Appends the good lines, decoded as they are read; returns the timestamp of the last batch recorded. */
  private async appendLines(lines: Iterable<PushedLine>, res: IngestResult): Promise<number | undefined> {
    let lastTs: number | undefined;
    let sinceYield = 0;
    for (const line of lines) {
      const lineNo = ++res.linesRead;
      if (line === null) continue;
      try {
        if ('error' in line) throw line.error;
        const out = await this.sink.record(line.updates, line.tsUs);
        if (out.ts !== undefined) lastTs = out.ts;
        if (line.tsUs !== undefined && out.ts !== undefined && out.ts !== line.tsUs) res.restampedLines++;
        res.acceptedLines++;
        res.acceptedUpdates += line.updates.length;
        res.recordedUpdates += out.kept;
        res.filteredUpdates += out.filtered;
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        if (!LINE_CODES.has(err.code)) {
          res.stoppedBy = err;
          break;
        }
        res.rejectedLines++;
        if (res.rejected.length < SERVER_LIMITS.ingestRejectionsListedMax) res.rejected.push({ line: lineNo, code: err.code, message: err.message });
        // A body of garbage is refused after a bounded amount of work, not read to the end.
        if (res.rejectedLines >= SERVER_LIMITS.ingestBadLinesMax) {
          res.stoppedBy = new TapedeckError('TPD_TOO_MANY_BAD_LINES', `${res.rejectedLines} bad lines (ingestBadLinesMax); reading stopped at line ${lineNo}`);
          break;
        }
      }
      if (++sinceYield >= SERVER_LIMITS.ingestSliceLines) {
        sinceYield = 0;
        await yieldLoop();
      }
    }
    return lastTs;
  }

  private account(res: IngestResult): void {
    if (res.acceptedLines > 0) this.tracker.success(res.recordedUpdates);
    const why = res.stoppedBy ?? (res.rejected[0] ? `${res.rejectedLines} line(s) rejected; line ${res.rejected[0].line}: ${res.rejected[0].code}: ${res.rejected[0].message}` : undefined);
    if (why === undefined) return;
    this.tracker.failure(why instanceof Error ? why : new Error(why));
    this.log.debug({ rejectedLines: res.rejectedLines, first: res.rejected[0], stoppedBy: res.stoppedBy?.code }, 'ingest not wholly recorded');
  }
}

/** True for an error that stopped ingest because of the archive (not a line, not the spec). */
function isArchiveError(err: TapedeckError | undefined): boolean {
  return err !== undefined && err.code !== 'TPD_TOO_MANY_BAD_LINES' && err.code !== 'TPD_INGEST_FILTERED';
}

export const pushSource: SourceFactory = {
  type: 'push',
  schema: { type: 'object', additionalProperties: false, properties: { refuse_filtered: { type: 'boolean' } } },
  create: (config, ctx) => new PushSource(ctx, config as PushSourceConfig),
};
