/**
 * `push`: batches posted to the server instead of polled. The ingest routes
 * (POST /api/v1/ingest, WebSocket /api/v1/ingest/ws) hand their NDJSON text here. Each line
 * is one batch: `{ "ts"?: <time>, "updates": { "/path": value, ... } }`, where `ts` is an
 * epoch number (seconds, milliseconds or microseconds by magnitude, as everywhere in
 * Tapedeck) or an RFC 3339 string; without it the batch is stamped on arrival. A bad line is
 * rejected with its line number and code; the good lines around it are kept.
 */
import { EventEmitter } from 'node:events';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { TapedeckError, isTapedeckError, type ErrorCode } from '../../protocol/errors.js';
import { parseTs } from '../../protocol/time.js';
import { isValidPath, type Update, type Value } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import { HealthTracker, type Source, type SourceContext, type SourceFactory, type SourceHealth } from './source.js';

export interface LineRejection {
  line: number;
  code: ErrorCode;
  message: string;
}

export interface IngestResult {
  acceptedLines: number;
  acceptedUpdates: number;
  rejectedLines: number;
  /** The first ingestRejectionsListedMax rejections. */
  rejected: LineRejection[];
}

/** Epoch number (s, ms or µs by magnitude) or RFC 3339 text to µs. */
export function tsFromJson(ts: unknown): number {
  if (typeof ts === 'number') {
    if (!Number.isFinite(ts) || ts < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `ts must be a non-negative epoch number, got ${String(ts)}`);
    return Math.round(ts < 1e11 ? ts * 1e6 : ts < 1e14 ? ts * 1e3 : ts);
  }
  if (typeof ts === 'string') return parseTs(ts);
  throw new TapedeckError('TPD_BAD_ARGUMENT', 'ts must be an epoch number or an RFC 3339 string');
}

/** One NDJSON line to a batch; throws a TapedeckError saying what is wrong. */
export function parseLine(text: string): { updates: Update[]; tsUs: number | undefined } {
  if (text.length > SERVER_LIMITS.ingestLineBytesMax) {
    throw new TapedeckError('TPD_BATCH_TOO_LARGE', `line is ${text.length} bytes; the limit is ${SERVER_LIMITS.ingestLineBytesMax} (ingestLineBytesMax)`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TapedeckError('TPD_BAD_INGEST_LINE', `not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TapedeckError('TPD_BAD_INGEST_LINE', 'a line must be a JSON object { "ts"?, "updates" }');
  const o = doc as Record<string, unknown>;
  for (const k in o) if (k !== 'ts' && k !== 'updates') throw new TapedeckError('TPD_BAD_INGEST_LINE', `unknown key ${JSON.stringify(k)}; a line holds only "ts" and "updates"`);
  const u = o.updates;
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new TapedeckError('TPD_BAD_INGEST_LINE', '"updates" must be an object of path: value');
  const updates: Update[] = [];
  for (const path in u) {
    if (!isValidPath(path)) throw new TapedeckError('TPD_BAD_PATH', `invalid path ${JSON.stringify(path).slice(0, 200)}: a path starts with "/"`);
    updates.push([path, (u as Record<string, Value>)[path] as Value]);
  }
  return { updates, tsUs: o.ts === undefined ? undefined : tsFromJson(o.ts) };
}

export class PushSource extends EventEmitter implements Source {
  readonly type = 'push';
  readonly name: string;
  private readonly ctx: SourceContext;
  private readonly log: Logger;
  private readonly tracker: HealthTracker;
  private inFlight = new Set<Promise<IngestResult>>();
  private stopping = false;

  constructor(ctx: SourceContext) {
    super();
    this.name = ctx.name;
    this.ctx = ctx;
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

  /** Records every good line of an NDJSON text (lines numbered from 1). */
  ingest(text: string): Promise<IngestResult> {
    if (this.stopping) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'the server is shutting down; ingest is closed'));
    const p = this.run(text);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  private async run(text: string): Promise<IngestResult> {
    const res: IngestResult = { acceptedLines: 0, acceptedUpdates: 0, rejectedLines: 0, rejected: [] };
    let lineNo = 0;
    let start = 0;
    let sinceYield = 0;
    while (start <= text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      lineNo++;
      const line = text.slice(start, end).trim();
      start = end + 1;
      if (line.length === 0) continue;
      try {
        const { updates, tsUs } = parseLine(line);
        await this.ctx.sink.write(updates, tsUs);
        res.acceptedLines++;
        res.acceptedUpdates += updates.length;
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        res.rejectedLines++;
        if (res.rejected.length < SERVER_LIMITS.ingestRejectionsListedMax) res.rejected.push({ line: lineNo, code: err.code, message: err.message });
      }
      if (++sinceYield >= SERVER_LIMITS.ingestSliceLines) {
        sinceYield = 0;
        await yieldLoop();
      }
    }
    if (res.acceptedLines > 0) this.tracker.success(res.acceptedUpdates);
    if (res.rejectedLines > 0) {
      const first = res.rejected[0] as LineRejection;
      this.tracker.failure(new Error(`${res.rejectedLines} line(s) rejected; line ${first.line}: ${first.code}: ${first.message}`));
      this.log.debug({ rejectedLines: res.rejectedLines, first }, 'ingest lines rejected');
    }
    this.emit('ingest', res);
    return res;
  }
}

export const pushSource: SourceFactory = {
  type: 'push',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: (_config, ctx) => new PushSource(ctx),
};
