/**
 * A remote-write request into its batches (server/sources/remote-write.ts records them):
 * each series' path, each sample a number (the stale marker null), one batch per timestamp
 * in the order of the series, and every refusal a retry cannot fix (labels Prometheus
 * refuses, native histograms, two different samples of a path at one time) before the
 * first append.
 *
 * Speed: the request is read into reused columns (protocol/prompb/write-request-columns.ts);
 * a known series costs one hash of its label bytes where they lie (series-key-table.ts), not
 * a string per series; a request of one timestamp (one scrape: the usual one) is one batch
 * built in series order, a path met twice found by a stamp per path id instead of a Map.
 */
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import { decodeLabels } from '../../protocol/prompb/write-request.js';
import { WriteRequestColumns } from '../../protocol/prompb/write-request-columns.js';
import { isValidPath, type Update } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import { SeriesKeyTable } from './series-key-table.js';

export interface Batch {
  tsMs: number;
  /** One update per path, in the order of the series that first carried it. */
  updates: Update[];
}

/** A known series: its path and the id of that path within the cache (refusal: the labels' error, thrown each time). */
class SeriesEntry {
  constructor(readonly path: string, readonly id: number, readonly refusal: TapedeckError | undefined) {}
}

export class RemoteWriteBatcher {
  /** The request being read, as columns (reused: one request at a time). */
  private readonly columns = new WriteRequestColumns();
  /** Raw label bytes -> the series' path and path id (or the refusal of that label set). */
  private readonly known = new SeriesKeyTable<SeriesEntry>();
  /** The same for series whose labels are not one slice (the general decoder's joined keys). */
  private readonly oddKeys = new Map<string, SeriesEntry>();
  /** Path -> its id: label sets that map to one path (another order, an empty value) share it. */
  private readonly pathIds = new Map<string, number>();
  /** Per path id, the generation of the request it was last met in, and its place in that request's batch. */
  private stamp = new Int32Array(1024);
  private stampAt = new Int32Array(1024);
  private generation = 0;

  /** `seriesCachedMax`: the cache's bound (remoteWriteSeriesCachedMax; tests set a small one). */
  constructor(private readonly seriesCachedMax: number) {}

  /**
   * The batches of a WriteRequest (its protobuf bytes), oldest first, and its columns (counts
   * of series, samples and exemplars), valid until the next call. Throws TPD_BAD_REMOTE_WRITE
   * or TPD_REMOTE_WRITE_OUT_OF_ORDER for a request a retry cannot fix.
   */
  batches(bytes: Uint8Array): { batches: Batch[]; cols: WriteRequestColumns } {
    const cols = this.columns.read(bytes, { samplesMax: SERVER_LIMITS.remoteWriteSamplesMax, labelsPerSeriesMax: SERVER_LIMITS.remoteWriteLabelsPerSeriesMax });
    // Between requests only: a request's path ids (its duplicate checks) stay valid throughout.
    if (this.known.size + this.oddKeys.size >= this.seriesCachedMax || this.known.bytes >= SERVER_LIMITS.remoteWriteSeriesCachedBytesMax) this.forgetSeries();
    // Room for every path id this request can add, before oneBatch holds the arrays.
    this.stampsFor(this.pathIds.size + cols.series);
    return { batches: cols.minTsMs === cols.maxTsMs ? this.oneBatch() : this.byTimestamp(), cols };
  }

  /**
   * The request's samples when they share one timestamp (one scrape: the usual request), in
   * the order of their series; a path met twice keeps its first place (so a repeated equal
   * sample is one update) and refuses a different value. Errors in series order, as byTimestamp().
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
  private byTimestamp(): Batch[] {
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

  /**
   * A second sample of a path at one time: the same value, bit for bit (0 is not -0, and a
   * NaN is the same NaN only with the same payload, as Prometheus' TSDB compares them), is
   * one update; another refuses the request (a NaN of another payload kept in silence
   * would be a value lost).
   */
  private sameSample(u: Update, v: number | null, tsMs: number): void {
    if (!sameSampleValue(u[1] as number | null, v)) throw new TapedeckError('TPD_REMOTE_WRITE_OUT_OF_ORDER', `series ${u[0]} has two different samples at ${new Date(tsMs).toISOString()}`);
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

  /** Stamp arrays for `ids` path ids (grown before a request is batched, never during it). */
  private stampsFor(ids: number): void {
    if (ids <= this.stamp.length) return;
    let n = this.stamp.length;
    while (n < ids) n *= 2;
    const stamp = new Int32Array(n);
    stamp.set(this.stamp);
    this.stamp = stamp;
    const at = new Int32Array(n);
    at.set(this.stampAt);
    this.stampAt = at;
  }
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

const bitsA = new Float64Array(1);
const bitsB = new Float64Array(1);
const wordsA = new Uint32Array(bitsA.buffer);
const wordsB = new Uint32Array(bitsB.buffer);

/** Two samples' values the same: both stale (null), or numbers of the same 64 bits. */
export function sameSampleValue(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  if (a !== a || b !== b) {
    // NaNs: by their bits (a Float64Array keeps a NaN's payload; an array of doubles may not).
    bitsA[0] = a;
    bitsB[0] = b;
    return wordsA[0] === wordsB[0] && wordsA[1] === wordsB[1];
  }
  return Object.is(a, b);
}
