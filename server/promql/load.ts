/**
 * Samples of the selected series over one time range, read series by series from the
 * archive (storage/series-read.ts: only their columns, cached per committed chunk). What is a sample (docs/prometheus.md): a number (a bigint as the nearest
 * number), a boolean as 1 or 0; null, Prometheus' stale-marker NaN and any other value
 * (text, objects) are staleness: the series has no value from then until its next number.
 * Timestamps are milliseconds (the archive's µs, floored); of two samples in one
 * millisecond the later one stands.
 */
import type { Archive } from '../../storage/index.js';
import { readSeries, type SeriesPiece } from '../../storage/series-read.js';
import type { Value } from '../../protocol/value.js';
import { CANCELED } from '../client-gone.js';
import { SERVER_LIMITS } from '../limits.js';
import type { SeriesRef } from './catalog.js';
import { PromError } from './errors.js';
import type { Metric } from './labels.js';

/** One series' samples in time order; `stale[i]` marks staleness. */
export interface SeriesSamples {
  readonly metric: Metric;
  n: number;
  t: Float64Array;
  v: Float64Array;
  stale: Uint8Array;
  /** The samples without staleness (what range selectors see), built on first use. */
  ranged?: { n: number; t: Float64Array; v: Float64Array };
}

/** Work done and allowed: samples loaded, and when to give up (the deadline, or the client leaving). */
export class Budget {
  samples = 0;
  private lastYieldMs = performance.now();

  /** `signal`: the request's client leaving (server/client-gone.ts); the next slice then stops the query. */
  constructor(
    readonly deadlineMs: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** Steps its subqueries evaluate (server/promql/subquery.ts), all together. */
  subquerySteps = 0;

  addSubquerySteps(n: number): void {
    this.subquerySteps += n;
    if (this.subquerySteps > SERVER_LIMITS.promqlSubqueryStepsMax) {
      throw new PromError('execution', `query processing would evaluate its subqueries at more than promqlSubqueryStepsMax (${SERVER_LIMITS.promqlSubqueryStepsMax}) steps in query execution`, 'TPD_QUERY_LIMIT');
    }
  }

  addSamples(n: number): void {
    this.samples += n;
    if (this.samples > SERVER_LIMITS.promqlSamplesMax) {
      throw new PromError('execution', `query processing would load too many samples into memory in query execution (more than promqlSamplesMax, ${SERVER_LIMITS.promqlSamplesMax})`, 'TPD_QUERY_LIMIT');
    }
  }

  /**
   * Whether slice() would yield or stop now: a clock read, no await. Loops whose steps may
   * each cost milliseconds (a regex over long label values) ask it at every step.
   */
  due(): boolean {
    return this.signal?.aborted === true || performance.now() - this.lastYieldMs >= SERVER_LIMITS.promqlSliceMs;
  }

  /**
   * Lets other requests run every promqlSliceMs; throws once past the deadline, and
   * `canceled` once the client has left (checked at every call: a field read).
   */
  async slice(): Promise<void> {
    if (this.signal?.aborted === true) {
      CANCELED.running++;
      throw new PromError('canceled', 'query canceled: the client closed its connection');
    }
    const now = performance.now();
    if (now - this.lastYieldMs < SERVER_LIMITS.promqlSliceMs) return;
    if (now > this.deadlineMs) throw new PromError('timeout', 'query timed out in query execution');
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.lastYieldMs = performance.now();
  }
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** Prometheus' stale marker: the NaN with bits 0x7ff0000000000002. */
export function isStaleNaN(v: number): boolean {
  if (v === v) return false;
  f64[0] = v;
  return u32[0] === 2 && u32[1] === 0x7ff00000;
}

/** The sample a recorded value is, or undefined for staleness. */
export function sampleOf(v: Value): number | undefined {
  if (typeof v === 'number') return isStaleNaN(v) ? undefined : v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function newSeries(metric: Metric): SeriesSamples {
  return { metric, n: 0, t: new Float64Array(0), v: new Float64Array(0), stale: new Uint8Array(0) };
}

/** Makes room for `extra` more samples. */
function reserve(s: SeriesSamples, extra: number): void {
  if (s.n + extra > s.t.length) {
    const cap = Math.max(s.n + extra, s.t.length * 2);
    const t2 = new Float64Array(cap);
    t2.set(s.t.subarray(0, s.n));
    const v2 = new Float64Array(cap);
    v2.set(s.v.subarray(0, s.n));
    const st2 = new Uint8Array(cap);
    st2.set(s.stale.subarray(0, s.n));
    s.t = t2;
    s.v = v2;
    s.stale = st2;
  }
}

/** Appends a sample; room was reserved. */
function push(s: SeriesSamples, t: number, value: number | undefined): void {
  if (s.n > 0 && s.t[s.n - 1] === t) s.n--; // same millisecond: the later one stands
  s.t[s.n] = t;
  s.v[s.n] = value ?? NaN;
  s.stale[s.n] = value === undefined ? 1 : 0;
  s.n++;
}

/** push() of a numeric run's entries [from, to), in one loop over local arrays (the bulk of a query's loading). */
function pushNumbers(s: SeriesSamples, ts: Float64Array, num: Float64Array, from: number, to: number): void {
  const { t, v, stale } = s;
  let n = s.n;
  for (let i = from; i < to; i++) {
    const ms = Math.floor((ts[i] as number) / 1000);
    if (n > 0 && t[n - 1] === ms) n--; // same millisecond: the later one stands
    const x = num[i] as number;
    const isStale = x !== x && isStaleNaN(x);
    t[n] = ms;
    v[n] = isStale ? NaN : x;
    stale[n] = isStale ? 1 : 0;
    n++;
  }
  s.n = n;
}

/**
 * Reads samples in [fromMs, toMs] of `series`; keyed by path id. `recycle`: series no longer
 * used whose arrays the new ones take over (a streaming query's previous batch), so a
 * query that reads batch after batch allocates its arrays once. `cache`: false when the
 * reads of a query in batches would not fit the series cache anyway.
 */
export async function loadSamples(archive: Archive, series: readonly SeriesRef[], fromMs: number, toMs: number, budget: Budget, recycle: SeriesSamples[] = [], cache = true): Promise<Map<number, SeriesSamples>> {
  const out = new Map<number, SeriesSamples>();
  const pieces = new Map<number, SeriesPiece[]>();
  for (const s of series) {
    if (out.has(s.id)) continue;
    const old = recycle.pop();
    out.set(s.id, old ? { metric: s.metric, n: 0, t: old.t, v: old.v, stale: old.stale } : newSeries(s.metric));
    pieces.set(s.id, []);
  }
  // No time to read (no selector is read at a step: subquery.ts neededRange): every series empty.
  if (series.length === 0 || toMs < fromMs) return out;
  // Series by series: only the selected paths' columns are decoded, and runs of committed
  // chunks come from the archive's series cache (storage/series-read.ts). Pieces are
  // gathered first so that each series' arrays are allocated once, at their size.
  const slice = (): Promise<void> => budget.slice();
  for await (const chunk of readSeries(archive, [...out.keys()], fromMs * 1000, toMs * 1000 + 999, { slice, cacheSidecarChunks: cache })) {
    let loaded = 0;
    for (const p of chunk) {
      pieces.get(p.id)?.push(p);
      loaded += p.to - p.from;
    }
    budget.addSamples(loaded);
    await budget.slice();
  }
  for (const [id, list] of pieces) {
    const s = out.get(id) as SeriesSamples;
    let n = 0;
    for (const p of list) n += p.to - p.from;
    reserve(s, n);
    for (const { run, from, to } of list) {
      const { ts, num, values } = run;
      if (num) pushNumbers(s, ts, num, from, to);
      else for (let i = from; i < to; i++) push(s, Math.floor((ts[i] as number) / 1000), sampleOf((values as readonly Value[])[i] as Value));
    }
  }
  return out;
}

/** The samples a range selector sees (staleness left out). */
export function rangedOf(s: SeriesSamples): { n: number; t: Float64Array; v: Float64Array } {
  if (s.ranged) return s.ranged;
  let n = 0;
  for (let i = 0; i < s.n; i++) if (s.stale[i] === 0) n++;
  // No staleness: the same arrays (read only from here on), not a copy.
  if (n === s.n) return (s.ranged = { n, t: s.t, v: s.v });
  const t = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0, j = 0; i < s.n; i++) {
    if (s.stale[i] === 1) continue;
    t[j] = s.t[i] as number;
    v[j] = s.v[i] as number;
    j++;
  }
  s.ranged = { n, t, v };
  return s.ranged;
}

