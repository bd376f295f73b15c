/**
 * `remote_write`: Prometheus remote write 1.0 into the archive (POST /api/v1/write,
 * server/routes/prom-write.ts; docs/prometheus.md). Config: `{ "name": "prom", "type":
 * "remote_write", "ack"?: "durable" | "memory" }`.
 *
 * One request: a snappy block holding a protobuf WriteRequest. Each series becomes its path
 * (protocol/prom-path.ts: `/prom/<name>/<label>=<value>/...`), each sample a number (the
 * stale marker null), and the samples of a request are recorded as one batch per
 * timestamp (ms -> µs), appended in timestamp order. Nothing is recorded unless the whole
 * request is valid: a body a retry cannot fix is refused with 400 before the first append.
 *
 * Time: the archive's timestamps only increase and a sample's time is never moved. A batch
 * at ms t is stamped t·1000 µs, or, when the archive's last batch is already in that
 * millisecond (the request before carried samples of the same scrape), the next free
 * microsecond of it: reading ms = floor(µs / 1000) gives every Prometheus timestamp back
 * exactly. A sample older than that (an earlier millisecond than the archive's last batch)
 * is refused with 400 TPD_REMOTE_WRITE_OUT_OF_ORDER naming its series, as Prometheus refuses
 * out-of-order samples; so the sender must send in time order (queue_config.max_shards: 1)
 * and no other source should stamp later times into the same archive.
 *
 * Retries: Prometheus retries a request answered 5xx/429 with the same bytes. Recent
 * requests are remembered by digest with the last timestamp recorded of them; a retry
 * records only the batches after it, and the retry of a request recorded whole is answered
 * 204 again instead of refused as out of order.
 *
 * A request becomes its batches in remote-write-batches.ts (columns, the cache of known
 * series); this file records them (time slots, retries, acknowledgement). The source as it
 * was before that split is the oracle of test/prom-remote-write-columns.test.ts (same
 * answers, errors and archives).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import snappy from 'snappy';
import type { Logger } from 'pino';
import { TapedeckError } from '../../protocol/errors.js';
import { TS_MAX_US, type Update, type Value } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import type { RecordOutcome, RecorderSink } from '../recorder.js';
import { HealthTracker, type Source, type SourceContext, type SourceFactory, type SourceHealth } from './source.js';
import { ACK_LEVELS, type AckLevel } from './push.js';
import { RemoteWriteBatcher, sameSampleValue, type Batch } from './remote-write-batches.js';

export { seriesPath } from './remote-write-batches.js';

export interface RemoteWriteConfig {
  /** Default acknowledgement when the request names none (`?ack=`): durable unless set. */
  ack?: AckLevel;
}

/** What the archive tells a request before each append: its last timestamp, and a wait for the write queue to drain. */
export interface ArchiveGate {
  lastTsUs(): number;
  drained(): Promise<void>;
  /**
   * What the archive holds of `paths` in [fromUs, toUs], everything appended so far included
   * (committed first), by `recordedKey(path, ms)`; undefined past `updatesMax` updates read.
   */
  recorded(fromUs: number, toUs: number, paths: ReadonlySet<string>, updatesMax: number): Promise<Map<string, Value[]> | undefined>;
}

/** The key of a path's samples at one millisecond in ArchiveGate.recorded's answer. */
export function recordedKey(path: string, ms: number): string {
  return `${ms} ${path}`;
}

export interface RemoteWriteResult {
  ack: AckLevel;
  series: number;
  samples: number;
  /** Batches appended by this request (a retry appends only what its first try did not). */
  batches: number;
  recordedUpdates: number;
  filteredUpdates: number;
  exemplarsIgnored: number;
  /** True when the request had been recorded whole before (a retry): nothing was appended. */
  replayed: boolean;
}

/** `keeps` optional: a sink without it records every path it is given. */
type Sink = Pick<RecorderSink, 'record' | 'durable'> & Partial<Pick<RecorderSink, 'keeps'>>;

const MS_US = 1000;

export class RemoteWriteSource extends EventEmitter implements Source {
  readonly type = 'remote_write';
  readonly name: string;
  readonly defaultAck: AckLevel;
  private readonly sink: Sink;
  private readonly log: Logger;
  private readonly tracker: HealthTracker;
  /** Requests into batches, with the cache of known series (requests run one at a time). */
  private readonly batcher: RemoteWriteBatcher;
  /** Request digest -> last ms recorded of it (Infinity: all of it). */
  private readonly recent = new Map<string, number>();
  /** Requests run one after another, so their batches never interleave. */
  private chain: Promise<unknown> = Promise.resolve();
  /** The time of the last batch this source appended in this process (-1: none yet). */
  private appendedLastUs = -1;
  private stopping = false;

  /** `seriesCachedMax`: the cache's bound (remoteWriteSeriesCachedMax; tests set a small one). */
  constructor(ctx: SourceContext, cfg: RemoteWriteConfig = {}, opts: { seriesCachedMax?: number } = {}) {
    super();
    this.batcher = new RemoteWriteBatcher(opts.seriesCachedMax ?? SERVER_LIMITS.remoteWriteSeriesCachedMax);
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
    const { batches, cols } = this.batcher.batches(uncompress(body));
    const res: RemoteWriteResult = { ack, series: cols.series, samples: cols.samples, batches: 0, recordedUpdates: 0, filteredUpdates: 0, exemplarsIgnored: cols.exemplars, replayed: false };
    const digest = createHash('sha256').update(body).digest('base64');
    const doneMs = this.recent.get(digest);
    let todo = doneMs === undefined ? batches : batches.filter((b) => b.tsMs > doneMs);
    checkRange(batches[batches.length - 1]);
    if (doneMs === undefined && todo.length > 0 && gate.lastTsUs() !== this.appendedLastUs) todo = await this.notRecorded(todo, gate, res);
    res.replayed = todo.length === 0 && (doneMs !== undefined || batches.length > 0);
    if (todo.length > 0) this.checkOrder(todo[0] as Batch, gate.lastTsUs());
    let lastUs: number | undefined;
    for (const b of todo) {
      const out = await this.append(b, gate);
      if (out.ts !== undefined) lastUs = this.appendedLastUs = out.ts;
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

  /**
   * The request's batches less what the archive already holds, for a request that starts at
   * or before the archive's last millisecond when this source did not record that last batch
   * in this process (after a restart its memory of requests is gone; or another source
   * recorded last). A crash between a request's commit and its answer, or amid its batches
   * (a timed flush commits part of it), leaves it recorded whole or in part, and Prometheus
   * sends it again: its samples found with the same value are dropped, the rest recorded,
   * so the retry neither records a sample twice nor is refused (Prometheus drops what gets
   * a 400). A sample found with another value refuses the request (400), as two samples of
   * one series at one time do. Bounded: read back at most remoteWriteReadBackSpanMsMax
   * before the last batch and remoteWriteReadBackUpdatesMax updates; past the updates, the
   * batches are left as they are (and checkOrder refuses what is older than the last
   * millisecond). A request reaching further back than the span (Prometheus catching up
   * with few series) is judged by its first batch within the span: its batches were
   * appended in time order, each whole, and committed in that order, so when that one is
   * found recorded (a sample of it found, none missing), every batch before it was recorded
   * before it and is dropped too; otherwise the batches are left as they are.
   * A sample of a series the record spec leaves out was never appended and never will be:
   * it is neither found nor fresh (counted as filtered when its batch is dropped), so that a
   * retry of a request holding such series is not taken for one older than the archive.
   */
  private async notRecorded(todo: readonly Batch[], gate: ArchiveGate, res: RemoteWriteResult): Promise<Batch[]> {
    const lastUs = gate.lastTsUs();
    const lastMs = Math.floor(lastUs / MS_US);
    const overlap = todo.filter((b) => b.tsMs <= lastMs); // a prefix: batches are in time order
    // The batches within the span read back; those before it (`older` of them) are judged by the first within it.
    const older = overlap.findIndex((b) => lastMs - b.tsMs <= SERVER_LIMITS.remoteWriteReadBackSpanMsMax);
    const first = overlap[older];
    if (first === undefined) return [...todo];
    const within = overlap.slice(older);
    const keeps = this.sink.keeps?.bind(this.sink) ?? ((): boolean => true);
    const paths = new Set(within.flatMap((b) => b.updates.map((u) => u[0]).filter(keeps)));
    const held = await gate.recorded(first.tsMs * MS_US, (lastMs + 1) * MS_US - 1, paths, SERVER_LIMITS.remoteWriteReadBackUpdatesMax);
    if (held === undefined) return [...todo];
    const out: Batch[] = [];
    let firstFound = 0;
    for (const b of within) {
      let fresh = 0;
      const rest = b.updates.filter(([path, v]) => {
        if (!paths.has(path)) return true; // left out by the spec: the recorder filters it again
        const had = held.get(recordedKey(path, b.tsMs));
        if (had === undefined) {
          fresh++;
          return true;
        }
        if (had.some((h) => (h === null || typeof h === 'number') && sameSampleValue(h, v as number | null))) return false;
        throw new TapedeckError('TPD_REMOTE_WRITE_OUT_OF_ORDER', `series ${path} already has another sample at ${new Date(b.tsMs).toISOString()}; nothing of this request was recorded`);
      });
      if (b === first) firstFound = fresh === 0 ? b.updates.length - rest.length : 0;
      if (fresh > 0) out.push({ tsMs: b.tsMs, updates: rest });
      else res.filteredUpdates += rest.length;
    }
    if (older > 0) {
      if (firstFound === 0) return [...todo];
      for (const b of overlap.slice(0, older)) res.filteredUpdates += b.updates.filter((u) => !keeps(u[0])).length;
    }
    return [...out, ...todo.slice(overlap.length)];
  }

  /** Refuses the request when its oldest batch cannot be stamped at its own millisecond. */
  private checkOrder(first: Batch, lastUs: number): void {
    if (slotUs(first.tsMs, lastUs) !== undefined) return;
    const path = (first.updates[0] as Update)[0];
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
    const out = await this.sink.record(b.updates, tsUs);
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

/**
 * Refuses the request when its latest batch (batches are in time order) is past the largest
 * timestamp the archive keeps: found before the first append, so nothing of it is recorded.
 */
function checkRange(latest: Batch | undefined): void {
  if (latest === undefined || latest.tsMs * MS_US <= TS_MAX_US) return;
  const path = (latest.updates[0] as Update)[0];
  throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `sample of ${path} at ${latest.tsMs} ms is past the largest timestamp the archive keeps (${TS_MAX_US} µs, in 2255); nothing of this request was recorded`);
}

/**
 * The µs to stamp a batch of ms `tsMs` at, after the archive's last batch at `lastUs`:
 * its own millisecond's first µs, or the next free µs within it; undefined when the
 * millisecond is over (the sample is older than the archive's end).
 */
export function slotUs(tsMs: number, lastUs: number): number | undefined {
  const start = tsMs * MS_US;
  if (start > lastUs) return start;
  const next = lastUs + 1;
  return next < start + MS_US && next <= TS_MAX_US ? next : undefined;
}

/** The WriteRequest bytes of a snappy block; its declared length is checked before anything is decompressed. */
export function uncompress(body: Uint8Array): Buffer {
  const declared = snappyLength(body);
  if (declared > SERVER_LIMITS.remoteWriteDecodedBytesMax) {
    throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `the snappy block declares ${declared} bytes; the limit is ${SERVER_LIMITS.remoteWriteDecodedBytesMax} (remoteWriteDecodedBytesMax)`);
  }
  try {
    return snappy.uncompressSync(Buffer.from(body.buffer, body.byteOffset, body.byteLength)) as Buffer;
  } catch (err) {
    throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `the body is not a snappy block: ${(err as Error).message}`);
  }
}

/** The uncompressed length a snappy block starts with (a varint of at most 5 bytes). */
function snappyLength(body: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < 5 && i < body.length; i++) {
    const b = body[i] as number;
    v += (b & 0x7f) * 128 ** i;
    if (b < 0x80) return v;
  }
  throw new TapedeckError('TPD_BAD_REMOTE_WRITE', 'the body is not a snappy block (no length preamble)');
}

export const remoteWriteSource: SourceFactory = {
  type: 'remote_write',
  schema: { type: 'object', additionalProperties: false, properties: { ack: { enum: [...ACK_LEVELS] } } },
  create: (config, ctx) => new RemoteWriteSource(ctx, config as RemoteWriteConfig),
};
