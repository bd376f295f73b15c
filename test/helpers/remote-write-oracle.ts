/**
 * The remote-write source as it was before its columnar path (server/sources/remote-write.ts
 * at 6a4bb3f, the class only, its cache bound a parameter): the oracle of
 * test/prom-remote-write-columns.test.ts, which records the same requests through both and
 * compares the archives bit for bit and the answers and errors.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { decodeLabels, decodeWriteRequest, type SeriesView, type WriteRequestView } from '../../protocol/prompb/write-request.js';
import type { Update } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../../server/limits.js';
import type { RecordOutcome, RecorderSink } from '../../server/recorder.js';
import { HealthTracker, type Source, type SourceContext, type SourceHealth } from '../../server/sources/source.js';
import type { AckLevel } from '../../server/sources/push.js';
import { seriesPath, slotUs, uncompress, type ArchiveGate, type RemoteWriteConfig, type RemoteWriteResult } from '../../server/sources/remote-write.js';

interface Batch {
  tsMs: number;
  values: Map<string, number | null>;
}

type Sink = Pick<RecorderSink, 'record' | 'durable'>;

const MS_US = 1000;

export class OracleRemoteWriteSource extends EventEmitter implements Source {
  readonly type = 'remote_write';
  readonly name: string;
  readonly defaultAck: AckLevel;
  private readonly sink: Sink;
  private readonly log: Logger;
  private readonly tracker: HealthTracker;
  /** Raw label bytes -> path (or the refusal of that label set). */
  private readonly paths = new Map<string, string | TapedeckError>();
  /** Request digest -> last ms recorded of it (Infinity: all of it). */
  private readonly recent = new Map<string, number>();
  /** Requests run one after another, so their batches never interleave. */
  private chain: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(ctx: SourceContext, cfg: RemoteWriteConfig = {}, private readonly seriesCachedMax: number = SERVER_LIMITS.remoteWriteSeriesCachedMax) {
    super();
    this.name = ctx.name;
    this.sink = ctx.sink as unknown as Sink;
    if (typeof this.sink.record !== 'function' || typeof this.sink.durable !== 'function') {
      throw new TapedeckError('TPD_INTERNAL', 'remote_write needs the recorder\'s sink (record and durable)');
    }
    this.log = ctx.log;
    this.defaultAck = cfg.ack ?? 'durable';
    this.tracker = new HealthTracker(ctx.name, 'remote_write');
  }

  start(): void {}

  async stop(): Promise<void> {
    this.stopping = true;
    await this.chain.catch(() => undefined);
    this.tracker.stopped();
  }

  health(): SourceHealth {
    return this.tracker.snapshot();
  }

  /** Records one snappy-compressed WriteRequest; throws a TapedeckError when it was not recorded whole. */
  write(body: Uint8Array, gate: ArchiveGate, ack: AckLevel = this.defaultAck): Promise<RemoteWriteResult> {
    if (this.stopping) return Promise.reject(new TapedeckError('TPD_ARCHIVE_CLOSED', 'the server is shutting down; remote write is closed'));
    const p = this.chain.then(() => this.run(body, gate, ack));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async run(body: Uint8Array, gate: ArchiveGate, ack: AckLevel): Promise<RemoteWriteResult> {
    try {
      const res = await this.record(body, gate, ack);
      this.tracker.success(res.recordedUpdates);
      this.emit('write', res);
      return res;
    } catch (err) {
      this.tracker.failure(err as Error);
      throw err;
    }
  }

  private async record(body: Uint8Array, gate: ArchiveGate, ack: AckLevel): Promise<RemoteWriteResult> {
    const view = decodeWriteRequest(uncompress(body), { samplesMax: SERVER_LIMITS.remoteWriteSamplesMax, labelsPerSeriesMax: SERVER_LIMITS.remoteWriteLabelsPerSeriesMax });
    const batches = this.batches(view);
    const exemplars = view.series.reduce((n, s) => n + s.exemplars, 0);
    const res: RemoteWriteResult = { ack, series: view.series.length, samples: view.samples, batches: 0, recordedUpdates: 0, filteredUpdates: 0, exemplarsIgnored: exemplars, replayed: false };
    const digest = createHash('sha256').update(body).digest('base64');
    const doneMs = this.recent.get(digest);
    const todo = doneMs === undefined ? batches : batches.filter((b) => b.tsMs > doneMs);
    res.replayed = doneMs !== undefined && todo.length === 0;
    if (todo.length > 0) this.checkOrder(todo[0] as Batch, gate.lastTsUs());
    let lastUs: number | undefined;
    for (const b of todo) {
      const out = await this.append(b, gate);
      if (out.ts !== undefined) lastUs = out.ts;
      this.remember(digest, b.tsMs);
      res.batches++;
      res.recordedUpdates += out.kept;
      res.filteredUpdates += out.filtered;
    }
    this.remember(digest, Infinity);
    // A retry waits too: its first try may have failed waiting for the flush.
    if (ack === 'durable' && (lastUs !== undefined || doneMs !== undefined)) await this.sink.durable(lastUs ?? gate.lastTsUs());
    return res;
  }

  /** The request's samples grouped by timestamp, oldest first; refuses what a retry cannot fix. */
  private batches(view: WriteRequestView): Batch[] {
    const byTs = new Map<number, Batch>();
    for (const s of view.series) {
      const path = this.pathOf(view.bytes, s);
      if (s.histograms > 0) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `series ${path} carries native histograms; Tapedeck records float samples only (docs/prometheus.md)`);
      for (let i = 0; i < s.tsMs.length; i++) {
        const tsMs = s.tsMs[i] as number;
        const value = s.values[i] as number | null;
        let b = byTs.get(tsMs);
        if (!b) byTs.set(tsMs, (b = { tsMs, values: new Map() }));
        const had = b.values.get(path);
        // Bit for bit (audit17: a NaN of another payload is another value, as Prometheus' TSDB has it).
        if (had !== undefined && !sameBits(had, value)) {
          throw new TapedeckError('TPD_REMOTE_WRITE_OUT_OF_ORDER', `series ${path} has two different samples at ${new Date(tsMs).toISOString()}`);
        }
        b.values.set(path, value);
      }
    }
    return [...byTs.values()].sort((a, b) => a.tsMs - b.tsMs);
  }

  /** The path of a series, from the cache when its label bytes were seen before. */
  private pathOf(bytes: Uint8Array, s: SeriesView): string {
    let p = this.paths.get(s.key);
    if (p === undefined) {
      try {
        p = seriesPath(decodeLabels(bytes, s.labelSpans));
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        p = err;
      }
      if (this.paths.size >= this.seriesCachedMax) this.paths.clear();
      this.paths.set(s.key, p);
    }
    if (typeof p !== 'string') throw p;
    return p;
  }

  /** Refuses the request when its oldest batch cannot be stamped at its own millisecond. */
  private checkOrder(first: Batch, lastUs: number): void {
    if (slotUs(first.tsMs, lastUs) !== undefined) return;
    const path = first.values.keys().next().value as string;
    throw new TapedeckError(
      'TPD_REMOTE_WRITE_OUT_OF_ORDER',
      `sample of ${path} at ${new Date(first.tsMs).toISOString()} is older than the archive's last batch (${new Date(Math.floor(lastUs / MS_US)).toISOString()}); nothing of this request was recorded (send in time order: queue_config max_shards: 1)`,
    );
  }

  private async append(b: Batch, gate: ArchiveGate): Promise<RecordOutcome> {
    // Drained first, so the recorder appends in the same tick as this check: nothing else
    // can stamp a later time in between.
    await gate.drained();
    const tsUs = slotUs(b.tsMs, gate.lastTsUs());
    if (tsUs === undefined) {
      throw new TapedeckError('TPD_REMOTE_WRITE_OUT_OF_ORDER', `another source recorded past ${new Date(b.tsMs).toISOString()} while this request was being recorded; its later samples were refused`);
    }
    const updates: Update[] = [];
    for (const [path, v] of b.values) updates.push([path, v]);
    const out = await this.sink.record(updates, tsUs);
    if (out.ts !== undefined && out.ts !== tsUs) {
      this.log.error({ wantedUs: tsUs, gotUs: out.ts }, 'remote write batch stamped at another time than its own');
      throw new TapedeckError('TPD_INTERNAL', 'a remote-write batch was stamped at another time than its own');
    }
    return out;
  }

  private remember(digest: string, tsMs: number): void {
    this.recent.delete(digest);
    if (this.recent.size >= SERVER_LIMITS.remoteWriteRequestsRememberedMax) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
    this.recent.set(digest, tsMs);
  }
}

const bitsA = new Float64Array(1);
const bitsB = new Float64Array(1);

/** Both stale (null), or numbers of the same 64 bits. */
function sameBits(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  bitsA[0] = a;
  bitsB[0] = b;
  return new BigUint64Array(bitsA.buffer)[0] === new BigUint64Array(bitsB.buffer)[0];
}
