/**
 * Samples of the selected series over one time range, read from the archive in one pass
 * with a cursor (storage/cursor.ts nextRaw: views into decoded blocks, no per-update
 * objects). What is a sample (docs/prometheus.md): a number (a bigint as the nearest
 * number), a boolean as 1 or 0; null, Prometheus' stale-marker NaN and any other value
 * (text, objects) are staleness: the series has no value from then until its next number.
 * Timestamps are milliseconds (the archive's µs, floored); of two samples in one
 * millisecond the later one stands.
 */
import type { Archive } from '../../storage/index.js';
import type { Value } from '../../protocol/value.js';
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

/** Work done and allowed: samples loaded, and when to give up. */
export class Budget {
  samples = 0;
  private lastYieldMs = performance.now();

  constructor(readonly deadlineMs: number) {}

  addSamples(n: number): void {
    this.samples += n;
    if (this.samples > SERVER_LIMITS.promqlSamplesMax) {
      throw new PromError('execution', `query processing would load too many samples into memory in query execution (more than promqlSamplesMax, ${SERVER_LIMITS.promqlSamplesMax})`, 'TPD_QUERY_LIMIT');
    }
  }

  /** Lets other requests run every promqlSliceMs; throws once past the deadline. */
  async slice(): Promise<void> {
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
  return { metric, n: 0, t: new Float64Array(16), v: new Float64Array(16), stale: new Uint8Array(16) };
}

function push(s: SeriesSamples, t: number, value: number | undefined): void {
  if (s.n > 0 && s.t[s.n - 1] === t) s.n--; // same millisecond: the later one stands
  if (s.n === s.t.length) {
    const cap = s.n * 2;
    const t2 = new Float64Array(cap);
    t2.set(s.t);
    const v2 = new Float64Array(cap);
    v2.set(s.v);
    const st2 = new Uint8Array(cap);
    st2.set(s.stale);
    s.t = t2;
    s.v = v2;
    s.stale = st2;
  }
  s.t[s.n] = t;
  s.v[s.n] = value ?? NaN;
  s.stale[s.n] = value === undefined ? 1 : 0;
  s.n++;
}

/** Reads samples in [fromMs, toMs] of `series`; keyed by path id. */
export async function loadSamples(archive: Archive, series: readonly SeriesRef[], fromMs: number, toMs: number, budget: Budget): Promise<Map<number, SeriesSamples>> {
  const out = new Map<number, SeriesSamples>();
  if (series.length === 0 || toMs < fromMs) return out;
  const slots = new Int32Array(archive.paths.length).fill(-1);
  const list: SeriesSamples[] = [];
  for (const s of series) {
    if (slots[s.id] !== -1) continue;
    slots[s.id] = list.length;
    const samples = newSeries(s.metric);
    list.push(samples);
    out.set(s.id, samples);
  }
  const cursor = archive.cursor();
  await cursor.seek({ ts: fromMs * 1000 - 1 });
  const lastUs = toMs * 1000 + 999;
  let loaded = 0;
  for (let b = await cursor.nextRaw(); b && b.ts <= lastUs; b = await cursor.nextRaw()) {
    const t = Math.floor(b.ts / 1000);
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      const slot = id < slots.length ? (slots[id] as number) : -1;
      if (slot < 0) continue;
      push(list[slot] as SeriesSamples, t, sampleOf(b.values[i] as Value));
      loaded++;
    }
    if (loaded >= 65_536) {
      budget.addSamples(loaded);
      loaded = 0;
    }
    await budget.slice();
  }
  budget.addSamples(loaded);
  return out;
}

/** The samples a range selector sees (staleness left out). */
export function rangedOf(s: SeriesSamples): { n: number; t: Float64Array; v: Float64Array } {
  if (s.ranged) return s.ranged;
  let n = 0;
  for (let i = 0; i < s.n; i++) if (s.stale[i] === 0) n++;
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

