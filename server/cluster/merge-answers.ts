/**
 * How the shards' JSON answers merge into one (docs/cluster.md, "Merged reads"). Pure: no I/O.
 * - paths: the union, sorted.
 * - state: per path, the value with the latest timestamp; equal timestamps go to the shard
 *   later in id order (the value a replay of the merged history would leave last).
 * - coverage: per shard, each item saying its shard.
 * - horizon: the minimum of the answering shards' horizons (an empty shard constrains none).
 */
import { formatTs } from '../../protocol/time.js';

/** A shard's answer as merged: its index in shard-id order and its JSON body. */
export interface Indexed<T> {
  index: number;
  shard: string;
  value: T;
  horizonUs: number | null;
}

/** The merged horizon: the slowest answering shard's (null when every shard is empty). */
export function mergedHorizon(horizons: ReadonlyArray<number | null>): number | null {
  let min: number | null = null;
  for (const h of horizons) if (h !== null && (min === null || h < min)) min = h;
  return min;
}

export interface PathsAnswer {
  paths: string[];
  count: number;
  truncated: boolean;
}

/**
 * The sorted union of the shards' paths, at most `max`. `count` is exact unless a shard's
 * own list was truncated; then it is the sum of the shards' counts (an upper bound: a path
 * is normally owned by one shard).
 */
export function mergePaths(answers: ReadonlyArray<PathsAnswer>, max: number): PathsAnswer {
  const all = new Set<string>();
  let anyTruncated = false;
  let sum = 0;
  for (const a of answers) {
    for (const p of a.paths) all.add(p);
    anyTruncated ||= a.truncated;
    sum += a.count;
  }
  const sorted = [...all].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const count = anyTruncated ? Math.max(sum, sorted.length) : sorted.length;
  return { paths: sorted.slice(0, max), count, truncated: anyTruncated || sorted.length > max };
}

/** A shard's /api/v1/state body, values in their JSON form (passed through untouched). */
export interface StateAnswer {
  ts: number | null;
  values: Record<string, unknown>;
  pending?: boolean;
}

/**
 * Per path the value of the shard whose answer is newest (its `ts`), ties to the shard later
 * in id order. Paths sorted. `ts` is the newest answer's.
 */
export function mergeStates(answers: ReadonlyArray<Indexed<StateAnswer>>): { ts: number | null; values: Record<string, unknown>; pending: boolean } {
  const best = new Map<string, { ts: number; index: number; v: unknown }>();
  let ts: number | null = null;
  let pending = false;
  for (const a of answers) {
    const t = a.value.ts ?? -1;
    if (a.value.ts !== null && (ts === null || a.value.ts > ts)) ts = a.value.ts;
    pending ||= a.value.pending === true;
    for (const [p, v] of Object.entries(a.value.values)) {
      const b = best.get(p);
      if (!b || t > b.ts || (t === b.ts && a.index > b.index)) best.set(p, { ts: t, index: a.index, v });
    }
  }
  const values: Record<string, unknown> = {};
  for (const p of [...best.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) {
    Object.defineProperty(values, p, { value: (best.get(p) as { v: unknown }).v, enumerable: true, writable: true, configurable: true });
  }
  return { ts, values, pending };
}

interface CoverageItem {
  start_us?: number | null;
  started_at?: string;
  first_us?: number | null;
  [k: string]: unknown;
}

export interface CoverageAnswer {
  horizon_us: number | null;
  runs: CoverageItem[];
  gaps: CoverageItem[];
  outages: CoverageItem[];
}

/** Every shard's runs, gaps and outages, each naming its shard, ordered by start then shard. */
export function mergeCoverage(answers: ReadonlyArray<Indexed<CoverageAnswer>>): object {
  const tag = (pick: (a: CoverageAnswer) => CoverageItem[], start: (x: CoverageItem) => number): CoverageItem[] => {
    const out: Array<{ s: number; i: number; x: CoverageItem }> = [];
    for (const a of answers) for (const x of pick(a.value)) out.push({ s: start(x), i: a.index, x: { shard: a.shard, ...x } });
    return out.sort((p, q) => p.s - q.s || p.i - q.i).map((o) => o.x);
  };
  const horizon = mergedHorizon(answers.map((a) => a.value.horizon_us));
  return {
    horizon: horizon === null ? null : formatTs(horizon),
    horizon_us: horizon,
    shards: answers.map((a) => ({ shard: a.shard, horizon_us: a.value.horizon_us, horizon: a.value.horizon_us === null ? null : formatTs(a.value.horizon_us) })),
    runs: tag((a) => a.runs, (x) => x.first_us ?? 0),
    gaps: tag((a) => a.gaps, (x) => x.start_us ?? 0),
    outages: tag((a) => a.outages, (x) => x.start_us ?? 0),
  };
}
