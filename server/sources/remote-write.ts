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
 * Speed: the request is read into reused columns (protocol/prompb/write-request-columns.ts),
 * a known series costs one hash of its label bytes where they lie (series-key-table.ts), and
 * a request of one timestamp (one scrape) is one batch built in series order, its duplicate
 * paths found by a per-path-id stamp instead of a Map. The source as it was is the oracle of
 * test/prom-remote-write-columns.test.ts (same answers, errors and archives).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import snappy from 'snappy';
import type { Logger } from 'pino';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import { decodeLabels } from '../../protocol/prompb/write-request.js';
import { WriteRequestColumns } from '../../protocol/prompb/write-request-columns.js';
import { isValidPath, type Update } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import type { RecordOutcome, RecorderSink } from '../recorder.js';
import { HealthTracker, type Source, type SourceContext, type SourceFactory, type SourceHealth } from './source.js';
import { ACK_LEVELS, type AckLevel } from './push.js';
import { SeriesKeyTable } from './series-key-table.js';

export interface RemoteWriteConfig {
  /** Default acknowledgement when the request names none (`?ack=`): durable unless set. */
  ack?: AckLevel;
}

/** What the archive tells a request before each append: its last timestamp, and a wait for the write queue to drain. */
export interface ArchiveGate {
  lastTsUs(): number;
  drained(): Promise<void>;
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

interface Batch {
  tsMs: number;
  /** One update per path, in the order of the series that first carried it. */
  updates: Update[];
}

/** A known series: its path and the id of that path within the cache (refusal: the labels' error, thrown each time). */
class SeriesEntry {
  constructor(readonly path: string, readonly id: number, readonly refusal: TapedeckError | undefined) {}
}

type Sink = Pick<RecorderSink, 'record' | 'durable'>;

const MS_US = 1000;

export class RemoteWriteSource extends EventEmitter implements Source {
  readonly type = 'remote_write';
  readonly name: string;
  readonly defaultAck: AckLevel;
  private readonly sink: Sink;
  private readonly log: Logger;
  private readonly tracker: HealthTracker;
  /** The request being recorded, as columns (reused: requests run one at a time). */
  private readonly columns = new WriteRequestColumns();
  /** Raw label bytes -> the series' path and path id (or the refusal of that label set). */
  private readonly known = new SeriesKeyTable<SeriesEntry>();
  /** The same for series whose labels are not one slice (the general decoder's joined keys). */
  private readonly oddKeys = new Map<string, SeriesEntry>();
  /** Path -> its id: label sets that map to one path (another order, an empty value) share it. */
  private readonly pathIds = new Map<string, number>();
  /** Per path id, the generation of the request batch it was last met in, and its place there. */
  private stamp = new Int32Array(1024);
  private stampAt = new Int32Array(1024);
  private generation = 0;
  private readonly seriesCachedMax: number;
  /** Request digest -> last ms recorded of it (Infinity: all of it). */
  private readonly recent = new Map<string, number>();
  /** Requests run one after another, so their batches never interleave. */
  private chain: Promise<unknown> = Promise.resolve();
  private stopping = false;

  /** `seriesCachedMax`: the cache's bound (remoteWriteSeriesCachedMax; tests set a small one). */
  constructor(ctx: SourceContext, cfg: RemoteWriteConfig = {}, opts: { seriesCachedMax?: number } = {}) {
    super();
    this.seriesCachedMax = opts.seriesCachedMax ?? SERVER_LIMITS.remoteWriteSeriesCachedMax;
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
    const cols = this.columns.read(uncompress(body), { samplesMax: SERVER_LIMITS.remoteWriteSamplesMax, labelsPerSeriesMax: SERVER_LIMITS.remoteWriteLabelsPerSeriesMax });
    // Between requests only: a request's path ids (its duplicate checks) stay valid throughout.
    if (this.known.size + this.oddKeys.size >= this.seriesCachedMax || this.known.bytes >= SERVER_LIMITS.remoteWriteSeriesCachedBytesMax) this.forgetSeries();
    // Room for every path id this request can add, before oneBatch holds the arrays.
    this.stampsFor(this.pathIds.size + cols.series);
    const batches = cols.minTsMs === cols.maxTsMs ? this.oneBatch() : this.batches();
    const res: RemoteWriteResult = { ack, series: cols.series, samples: cols.samples, batches: 0, recordedUpdates: 0, filteredUpdates: 0, exemplarsIgnored: cols.exemplars, replayed: false };
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

  /**
   * The request's samples when they share one timestamp (one scrape: the usual request), in
   * the order of their series; a path met twice keeps its first place (so a repeated equal
   * sample is one update) and refuses a different value. Errors in series order, as batches().
   */
  private oneBatch(): Batch[] {
    const cols = this.columns;
    const gen = this.nextGeneration();
    const stamp = this.stamp;
    const at = this.stampAt;
    const stale = cols.stale;
    const values = cols.values;
    const updates: Update[] = [];
    for (let i = 0; i < cols.series; i++) {
      const e = this.entryOf(i);
      const end = cols.sampleEnd[i] as number;
      const id = e.id;
      for (let k = cols.sampleStart(i); k < end; k++) {
        const v = stale[k] === 1 ? null : (values[k] as number);
        if (stamp[id] === gen) {
          this.sameSample(updates[at[id] as number] as Update, v, cols.minTsMs);
          continue;
        }
        stamp[id] = gen;
        at[id] = updates.length;
        updates.push([e.path, v]);
      }
    }
    return updates.length === 0 ? [] : [{ tsMs: cols.minTsMs, updates }];
  }

  /** The request's samples grouped by timestamp, oldest first, each batch in the order of its series; refuses what a retry cannot fix. */
  private batches(): Batch[] {
    const cols = this.columns;
    const byTs = new Map<number, Batch & { at: Map<number, number> }>();
    for (let i = 0; i < cols.series; i++) {
      const e = this.entryOf(i);
      const end = cols.sampleEnd[i] as number;
      for (let k = cols.sampleStart(i); k < end; k++) {
        const tsMs = cols.tsMs[k] as number;
        const v = cols.stale[k] === 1 ? null : (cols.values[k] as number);
        let b = byTs.get(tsMs);
        if (!b) byTs.set(tsMs, (b = { tsMs, updates: [], at: new Map() }));
        const had = b.at.get(e.id);
        if (had !== undefined) {
          this.sameSample(b.updates[had] as Update, v, tsMs);
          continue;
        }
        b.at.set(e.id, b.updates.length);
        b.updates.push([e.path, v]);
      }
    }
    return [...byTs.values()].map(({ tsMs, updates }) => ({ tsMs, updates })).sort((a, b) => a.tsMs - b.tsMs);
  }

  /** A second sample of a path at one time: the same value (Object.is: NaN is NaN, 0 is not -0) is one update, the later one kept; another refuses the request. */
  private sameSample(u: Update, v: number | null, tsMs: number): void {
    if (!Object.is(u[1], v)) throw new TapedeckError('TPD_REMOTE_WRITE_OUT_OF_ORDER', `series ${u[0]} has two different samples at ${new Date(tsMs).toISOString()}`);
    u[1] = v;
  }

  /**
   * Series i's path and id: one lookup of its label bytes when seen before; else its labels
   * decoded and mapped (a refusal is kept too). Throws the refusal, and for native histograms.
   */
  private entryOf(i: number): SeriesEntry {
    const cols = this.columns;
    const start = cols.keyStart[i] as number;
    let e: SeriesEntry | undefined;
    if (start >= 0) {
      const end = cols.keyEnd[i] as number;
      e = this.known.get(cols.bytes, cols.dv, start, end);
      if (e === undefined) {
        e = this.newEntry(cols.spansOf(i));
        this.known.add(cols.bytes, start, end, e);
      }
    } else {
      const key = cols.keys[i] as string;
      e = this.oddKeys.get(key);
      if (e === undefined) {
        e = this.newEntry(cols.spansOf(i));
        this.oddKeys.set(key, e);
      }
    }
    if (e.refusal) throw e.refusal;
    if ((cols.histograms[i] as number) > 0) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `series ${e.path} carries native histograms; Tapedeck records float samples only (docs/prometheus.md)`);
    return e;
  }

  private newEntry(spans: number[]): SeriesEntry {
    let path: string;
    try {
      path = seriesPath(decodeLabels(this.columns.bytes, spans));
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
      return new SeriesEntry('', -1, err);
    }
    let id = this.pathIds.get(path);
    if (id === undefined) {
      id = this.pathIds.size;
      this.pathIds.set(path, id);
    }
    return new SeriesEntry(path, id, undefined);
  }

  private forgetSeries(): void {
    this.known.clear();
    this.oddKeys.clear();
    this.pathIds.clear();
    this.stamp.fill(0);
    this.generation = 0;
  }

  private nextGeneration(): number {
    if (this.generation === 0x7fff_ffff) {
      this.stamp.fill(0);
      this.generation = 0;
    }
    return ++this.generation;
  }

  private stampsFor(ids: number): void {
    if (ids <= this.stamp.length) return;
    let n = this.stamp.length;
    while (n < ids) n *= 2;
    const stamp = new Int32Array(n);
    stamp.set(this.stamp);
    this.stamp = stamp;
    // Copied too: a path met earlier in this request keeps its place.
    const at = new Int32Array(n);
    at.set(this.stampAt);
    this.stampAt = at;
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
 * The µs to stamp a batch of ms `tsMs` at, after the archive's last batch at `lastUs`:
 * its own millisecond's first µs, or the next free µs within it; undefined when the
 * millisecond is over (the sample is older than the archive's end).
 */
export function slotUs(tsMs: number, lastUs: number): number | undefined {
  const start = tsMs * MS_US;
  if (start > lastUs) return start;
  const next = lastUs + 1;
  return next < start + MS_US ? next : undefined;
}

/** A series' labels (wire order) to its path; refuses what Prometheus refuses. */
export function seriesPath(labels: ReadonlyArray<readonly [string, string]>): string {
  let name: string | undefined;
  const rest: Record<string, string> = Object.create(null) as Record<string, string>;
  const seen = new Set<string>();
  for (const [k, v] of labels) {
    if (k === '') throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `a series has a label with an empty name (value ${JSON.stringify(v).slice(0, 100)})`);
    if (seen.has(k)) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `a series has the label ${JSON.stringify(k).slice(0, 100)} twice`);
    seen.add(k);
    if (k === '__name__') name = v;
    else rest[k] = v;
  }
  if (name === undefined || name === '') throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `a series has no __name__ (labels ${JSON.stringify(Object.fromEntries(labels)).slice(0, 200)})`);
  const path = seriesToPath({ name, labels: { ...rest } });
  if (!isValidPath(path)) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `series ${path.slice(0, 200)}… maps to a path longer than pathCharsMax`);
  return path;
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
