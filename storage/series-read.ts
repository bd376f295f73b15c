/**
 * Reads of a few paths out of an archive organised by time: the samples of a set of path
 * ids over a time range, series by series, without building every update of every block.
 *
 * A file's delta blocks are cut into chunks of STORAGE_LIMITS.seriesChunkBlocks blocks.
 * Committed blocks never change, so each wanted path's updates in a chunk are cached as one
 * run (storage/series-cache.ts, per archive, bounded in bytes): a query repeated over the
 * same range reads no block, and in a chunk still filling (the tail of `current`) only the
 * blocks committed since. On a miss the chunk's committed blocks are read once for every
 * missing path together, decoding only their columns (readBlockSelected); a range that
 * starts or ends inside a chunk reads the rest of it too, which the next query uses.
 *
 * Sealed files with a usable per-series sidecar (storage/series-index/) are read through it
 * instead: one series costs its own chunks, not every block of the range.
 *
 * No per-block path summary skips blocks before they are read: series recorded by scrape
 * or remote write land in every block (one batch per scrape holds every series), so such
 * a summary would never skip one there; a block without any wanted path costs its read,
 * check and column table, not its values.
 */
import type { Value } from '../protocol/value.js';
import type { Archive, FetchWait } from './archive.js';
import type { BlockRow } from './catalog.js';
import type { DecodedBatches } from './codec/payload.js';
import { throwHoleIn } from './cursor-gap.js';
import { isIndexed, type BlockTable, type FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';
import { EMPTY_RUN, SeriesCache, type ChunkRun, type SeriesRun } from './series-cache.js';
import { seriesIndexOf } from './series-index/store.js';

/** Whether a global path id is wanted. */
export type KeepPath = (id: number) => boolean;

/**
 * One block with only the updates of kept paths; every batch stays listed (count 0 when
 * none of its updates is kept) so that timestamps stay aligned.
 */
export async function readBlockSelected(a: Archive, entry: FileEntry, row: BlockRow, keep: KeepPath, wait?: FetchWait): Promise<DecodedBatches> {
  return a.readBlockSelected(entry, row, keep, wait);
}

/** The updates of kept paths of a decoded block, batches kept in place. */
export function filterDecoded(d: DecodedBatches, keep: KeepPath): DecodedBatches {
  let kept = 0;
  for (let i = 0; i < d.ids.length; i++) if (keep(d.ids[i] as number)) kept++;
  if (kept === d.ids.length) return d;
  const counts = new Uint32Array(d.counts.length);
  const ids = new Uint32Array(kept);
  // Filled with null first: an array that only ever held numbers becomes a double array, which canonicalises NaNs.
  const values: Value[] = new Array<Value>(kept).fill(null);
  let at = 0;
  let j = 0;
  for (let k = 0; k < d.counts.length; k++) {
    const end = at + (d.counts[k] as number);
    let n = 0;
    for (; at < end; at++) {
      const id = d.ids[at] as number;
      if (!keep(id)) continue;
      ids[j] = id;
      values[j] = d.values[at] as Value;
      j++;
      n++;
    }
    counts[k] = n;
  }
  return { ts: d.ts, counts, ids, values };
}

const caches = new WeakMap<Archive, SeriesCache>();

/** The archive's cache of per-series chunk runs (created on first use). */
export function seriesCacheOf(a: Archive): SeriesCache {
  let c = caches.get(a);
  if (!c) caches.set(a, (c = new SeriesCache(STORAGE_LIMITS.seriesCacheBytesMax)));
  return c;
}

/** A wanted path's updates in range within one chunk: run entries [from, to). */
export interface SeriesPiece {
  id: number;
  run: SeriesRun;
  from: number;
  to: number;
}

export interface SeriesReadOptions {
  /** Told when a read waits for a remote file to be fetched. */
  onFetchWait?: FetchWait;
  /** Awaited after each block read: lets the caller yield to the event loop or give up. */
  slice?: () => Promise<void>;
  /** false: read sealed files from their blocks even where a sidecar is usable (tests, benchmarks). */
  sidecars?: boolean;
  /** false: chunks read through sidecars bypass the series cache (a wide query read in batches would only push out what others reuse). */
  cacheSidecarChunks?: boolean;
}

/** Scratch of one readSeries call: the ids wanted, and (set while a chunk is read) which of them it misses. */
interface Wanted {
  ids: readonly number[];
  miss: Uint8Array;
}

/**
 * The updates of `ids` with time in [fromUs, toUs], committed data only. Yields one array
 * per chunk, in time order; within it a piece per wanted path that has updates there.
 */
export async function* readSeries(a: Archive, ids: readonly number[], fromUs: number, toUs: number, opts: SeriesReadOptions = {}): AsyncGenerator<SeriesPiece[]> {
  const known = a.paths.length;
  const miss = new Uint8Array(known);
  const list: number[] = [];
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= known || miss[id] === 1) continue;
    miss[id] = 1;
    list.push(id);
  }
  miss.fill(0);
  if (list.length === 0 || toUs < fromUs) return;
  const w: Wanted = { ids: list, miss };
  let f: FileEntry | undefined;
  for (f = a.fileList.first(); f; f = a.fileList.after(f.seq)) {
    throwHoleIn(a, a.fileList.before(f.seq), fromUs, toUs);
    // A file's lastTs is known before it is indexed (a rotated file is named by it).
    if (f.lastTs !== null && f.lastTs < fromUs) continue;
    if (!isIndexed(f)) {
      if (f.firstTs !== null && f.firstTs > toUs) break;
      await a.prepare(f, opts.onFetchWait);
      f = a.fileList.bySeq(f.seq) ?? f;
    }
    if (f.firstTs === null) continue;
    if (f.firstTs > toUs) break;
    // A file is read within one read operation (storage/read-gate.ts): it is not replaced
    // (compacted) between two of its chunks, whose places come from one block table.
    const wait = a.gate.enter();
    if (wait !== undefined) await wait;
    try {
      yield* fileSeries(a, f, w, fromUs, toUs, opts);
    } finally {
      a.gate.leave();
    }
    await opts.slice?.();
  }
  // Past the last file: a damaged last file's tail.
  if (f === undefined) throwHoleIn(a, a.fileList.last(), fromUs, toUs);
}

/** One file's part of readSeries. */
async function* fileSeries(a: Archive, f: FileEntry, w: Wanted, fromUs: number, toUs: number, opts: SeriesReadOptions): AsyncGenerator<SeriesPiece[]> {
  // Sealed files through their per-series sidecar when it is there and sound; the open
  // file, paths it does not cover, and files without a usable one, from the blocks.
  const viaSidecar = f.sealed && f.location === 'local' && opts.sidecars !== false ? await seriesIndexOf(a).read(f, w.ids, fromUs, toUs, seriesCacheOf(a), opts.cacheSidecarChunks !== false) : undefined;
  if (!viaSidecar) {
    yield* fileChunks(a, f, w, fromUs, toUs, opts);
    return;
  }
  const pieces = piecesInRange(viaSidecar.runs, fromUs, toUs);
  if (pieces.length > 0) yield pieces;
  if (viaSidecar.notCovered.length > 0) yield* fileChunks(a, f, { ids: viaSidecar.notCovered, miss: w.miss }, fromUs, toUs, opts);
}

/**
 * Whether every file with data in [fromUs, toUs] is read through a usable sidecar: then a
 * read of a few series costs their own chunks, and reading many series in several batches
 * costs no more than in one. A file read from its blocks (the open one, one without a
 * sidecar yet) is read whole by each batch.
 */
export async function sidecarsCover(a: Archive, fromUs: number, toUs: number): Promise<boolean> {
  for (let f = a.fileList.first(); f; f = a.fileList.after(f.seq)) {
    if (f.lastTs !== null && f.lastTs < fromUs) continue;
    if (f.firstTs === null) {
      if (isIndexed(f)) continue;
      return false;
    }
    if (f.firstTs > toUs) break;
    if (!f.sealed || f.location !== 'local' || !(await seriesIndexOf(a).indexOf(f))) return false;
  }
  return true;
}

/** Each run's entries within [fromUs, toUs], as pieces (runs of one path in time order). */
function piecesInRange(runs: ReadonlyArray<{ id: number; run: SeriesRun }>, fromUs: number, toUs: number): SeriesPiece[] {
  const pieces: SeriesPiece[] = [];
  for (const { id, run } of runs) {
    const from = firstAtOrAfter(run.ts, 0, run.n, fromUs);
    const to = firstAtOrAfter(run.ts, from, run.n, toUs + 1);
    if (to > from) pieces.push({ id, run, from, to });
  }
  return pieces;
}

/** Delta blocks [lo, hi] of a table that may hold updates in [fromUs, toUs]. */
function blockSpan(t: BlockTable, fromUs: number, toUs: number): { lo: number; hi: number } {
  let lo = 0;
  let hi = t.deltas.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t.lastTs(t.deltas[mid] as number) < fromUs) lo = mid + 1;
    else hi = mid;
  }
  const first = lo;
  hi = t.deltas.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t.firstTs(t.deltas[mid] as number) <= toUs) lo = mid + 1;
    else hi = mid;
  }
  return { lo: first, hi: lo - 1 };
}

async function* fileChunks(a: Archive, f: FileEntry, w: Wanted, fromUs: number, toUs: number, opts: SeriesReadOptions): AsyncGenerator<SeriesPiece[]> {
  const t = a.table(f);
  const { lo, hi } = blockSpan(t, fromUs, toUs);
  const size = STORAGE_LIMITS.seriesChunkBlocks;
  for (let c = Math.floor(lo / size); lo <= hi && c <= Math.floor(hi / size); c++) {
    const runs = await chunkRuns(a, f, t, c, w, opts);
    const pieces: SeriesPiece[] = [];
    for (const id of w.ids) {
      const run = runs.get(id);
      if (!run || run.n === 0) continue;
      const from = firstAtOrAfter(run.ts, 0, run.n, fromUs);
      const to = firstAtOrAfter(run.ts, from, run.n, toUs + 1);
      if (to > from) pieces.push({ id, run, from, to });
    }
    if (pieces.length > 0) yield pieces;
  }
}

/**
 * Each wanted path's run over the committed blocks of chunk c, from the cache where it
 * holds them all. A cached run of a chunk still filling covers the blocks committed when it
 * was read: only the blocks committed since are read, and the run is extended.
 */
async function chunkRuns(a: Archive, f: FileEntry, t: BlockTable, c: number, w: Wanted, opts: SeriesReadOptions): Promise<Map<number, SeriesRun>> {
  const cache = seriesCacheOf(a);
  const size = STORAGE_LIMITS.seriesChunkBlocks;
  const start = c * size;
  const blocks = Math.min(size, t.deltas.length - start);
  const runs = new Map<number, SeriesRun>();
  const behind: Array<{ id: number; prior: ChunkRun | undefined }> = [];
  for (const id of w.ids) {
    const hit = cache.get(`${f.seq}.${f.gen}:${c}:${id}`);
    if (hit?.blocks === blocks) runs.set(id, hit.run);
    else behind.push({ id, prior: hit && hit.blocks < blocks ? hit : undefined });
  }
  if (behind.length === 0) return runs;
  const read = await readRuns(a, f, t, start, start + blocks, behind.map(({ id, prior }) => ({ id, fromBlock: start + (prior?.blocks ?? 0) })), w, opts);
  for (const { id, prior } of behind) {
    const added = read.get(id) ?? EMPTY_RUN;
    const run = prior ? concatRuns(prior.run, added) : added;
    cache.put(`${f.seq}.${f.gen}:${c}:${id}`, { run, blocks });
    runs.set(id, run);
  }
  return runs;
}

function firstAtOrAfter(ts: Float64Array, lo: number, hi: number, t: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ts[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Largest first allocation of a run's arrays (values); past it they grow by doubling. */
const RUN_CAPACITY_MAX = 65_536;

/**
 * One path's updates as they are read, straight into typed arrays: a JS array of numbers
 * would canonicalise NaNs, and a NaN's bits are data (Prometheus' stale marker).
 */
class RunBuilder {
  n = 0;
  ts: Float64Array;
  num: Float64Array;
  /** Set once a value is not a number: from then on every value is kept as it is. */
  values: Value[] | undefined;

  /** `capacity`: the batches read, so a path in every batch (a scrape's series) never grows its arrays. */
  constructor(capacity: number) {
    this.ts = new Float64Array(Math.max(1, capacity));
    this.num = new Float64Array(Math.max(1, capacity));
  }

  push(t: number, v: Value): void {
    if (this.n === this.ts.length) this.grow();
    this.ts[this.n] = t;
    if (this.values) this.values.push(v);
    else if (typeof v === 'number') this.num[this.n] = v;
    else this.values = this.mixed(v);
    this.n++;
  }

  /** The numbers so far, then v, in an array that holds any value (filled with null first, so it never turns into a double array). */
  private mixed(v: Value): Value[] {
    const values = new Array<Value>(this.n + 1).fill(null);
    for (let i = 0; i < this.n; i++) values[i] = this.num[i] as number;
    values[this.n] = v;
    return values;
  }

  private grow(): void {
    const ts = new Float64Array(this.n * 2);
    ts.set(this.ts);
    this.ts = ts;
    if (this.values) return;
    const num = new Float64Array(this.n * 2);
    num.set(this.num);
    this.num = num;
  }

  build(): SeriesRun {
    if (this.n === 0) return EMPTY_RUN;
    const full = this.n === this.ts.length;
    const ts = full ? this.ts : this.ts.slice(0, this.n);
    if (this.values) return { n: this.n, ts, num: undefined, values: this.values };
    return { n: this.n, ts, num: full && this.n === this.num.length ? this.num : this.num.slice(0, this.n), values: undefined };
  }
}

/**
 * The updates of each path in delta blocks [from, to) of a file, from its own first block
 * on: one run per path (empty when it has none there).
 */
async function readRuns(a: Archive, f: FileEntry, t: BlockTable, from: number, to: number, wanted: ReadonlyArray<{ id: number; fromBlock: number }>, w: Wanted, opts: SeriesReadOptions): Promise<Map<number, SeriesRun>> {
  let batches = 0;
  for (let di = from; di < to; di++) batches += t.batches(t.deltas[di] as number);
  const builders = new Map<number, RunBuilder>();
  for (const { id } of wanted) builders.set(id, new RunBuilder(Math.min(batches, RUN_CAPACITY_MAX)));
  // A path is kept from its first block on: its bit is set as the read reaches it.
  const order = [...wanted].sort((x, y) => x.fromBlock - y.fromBlock);
  let next = 0;
  const keep: KeepPath = (id) => id < w.miss.length && w.miss[id] === 1;
  try {
    for (let di = Math.max(from, order[0]?.fromBlock ?? to); di < to; di++) {
      while (next < order.length && (order[next] as { fromBlock: number }).fromBlock <= di) w.miss[(order[next++] as { id: number }).id] = 1;
      const d = await readBlockSelected(a, f, t.delta(di), keep, opts.onFetchWait);
      seriesCacheOf(a).blocksRead++;
      let at = 0;
      for (let k = 0; k < d.counts.length; k++) {
        const time = d.ts[k] as number;
        for (const end = at + (d.counts[k] as number); at < end; at++) (builders.get(d.ids[at] as number) as RunBuilder).push(time, d.values[at] as Value);
      }
      await opts.slice?.();
    }
  } finally {
    for (const { id } of wanted) w.miss[id] = 0;
  }
  const out = new Map<number, SeriesRun>();
  for (const [id, b] of builders) out.set(id, b.build());
  return out;
}

/** a's updates then b's. */
function concatRuns(a: SeriesRun, b: SeriesRun): SeriesRun {
  if (b.n === 0) return a;
  if (a.n === 0) return b;
  const n = a.n + b.n;
  const ts = new Float64Array(n);
  ts.set(a.ts.subarray(0, a.n));
  ts.set(b.ts.subarray(0, b.n), a.n);
  if (a.num && b.num) {
    const num = new Float64Array(n);
    num.set(a.num.subarray(0, a.n));
    num.set(b.num.subarray(0, b.n), a.n);
    return { n, ts, num, values: undefined };
  }
  // Filled with null first so that it never becomes a double array (which canonicalises NaNs).
  const values = new Array<Value>(n).fill(null);
  for (let i = 0; i < a.n; i++) values[i] = a.num ? (a.num[i] as number) : (a.values?.[i] as Value);
  for (let i = 0; i < b.n; i++) values[a.n + i] = b.num ? (b.num[i] as number) : (b.values?.[i] as Value);
  return { n, ts, num: undefined, values };
}
