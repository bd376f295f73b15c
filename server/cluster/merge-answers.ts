/**
 * How the shards' JSON answers merge into one (docs/cluster.md, "Merged reads"). Pure: no I/O.
 * - paths: the union, sorted.
 * - state: per path, the value with the newest update; equal times go to the shard later by
 *   the tie rule (./merge-tie.ts: the value a replay of the merged history leaves last).
 * - coverage: per shard, each item saying its shard.
 * - horizon: the minimum of the answering shards' horizons (an empty shard constrains none).
 */
import { formatTs } from '../../protocol/time.js';
import { compareTie } from './merge-tie.js';

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): boolean => v === null || Number.isSafeInteger(v);

/** The shape of a shard's /api/v1/paths answer (what mergePaths reads). */
export function isPathsAnswer(v: unknown): v is PathsAnswer {
  return isObject(v) && Array.isArray(v.paths) && v.paths.every((p) => typeof p === 'string') && Number.isSafeInteger(v.count) && typeof v.truncated === 'boolean';
}

/** The shape of a shard's /api/v1/state answer (what mergeStates reads). */
export function isStateAnswer(v: unknown): v is StateAnswer {
  return isObject(v) && isTime(v.ts) && isObject(v.values);
}

/** The shape of a shard's /api/v1/coverage answer (what mergeCoverage reads). */
export function isCoverageAnswer(v: unknown): v is CoverageAnswer {
  return isObject(v) && isTime(v.horizon_us) && [v.runs, v.gaps, v.outages].every((l) => Array.isArray(l) && l.every(isObject));
}

/** What a shard's GET /api/v1/shard answers (server/routes/shard.ts). */
export interface ShardProbe {
  horizon_us: number | null;
  recording: boolean;
}

/** The shape of a shard's GET /api/v1/shard answer. */
export function isShardProbe(v: unknown): v is ShardProbe {
  return isObject(v) && isTime(v.horizon_us) && (v.horizon_us === null || (v.horizon_us as number) >= 0) && typeof v.recording === 'boolean';
}

/** The shape of a shard's GET /api/v1/shard/before answer (a merged session's step back). */
export function isBeforeAnswer(v: unknown): v is { ts: number[]; before: number | null } {
  return isObject(v) && Array.isArray(v.ts) && v.ts.every((t) => Number.isSafeInteger(t)) && isTime(v.before);
}

/** A shard's /api/v1/state body, values in their JSON form (passed through untouched). */
export interface StateAnswer {
  ts: number | null;
  values: Record<string, unknown>;
  pending?: boolean;
}

/**
 * Per shard index, the time of the newest update at or before the answer's time of each
 * path it shares with another shard (null: none in the shard's retained archive, older than
 * any found). Asked of the shards only for such paths (./merge-state.ts).
 */
export type UpdateTimes = ReadonlyMap<number, ReadonlyMap<string, number | null>>;

/** The paths each shard's answer shares with another's, by shard index (empty: none shared). */
export function sharedPaths(answers: ReadonlyArray<Indexed<StateAnswer>>): Map<number, string[]> {
  const first = new Map<string, number>();
  const out = new Map<number, string[]>();
  const add = (index: number, p: string): void => {
    const list = out.get(index);
    if (list) list.push(p);
    else out.set(index, [p]);
  };
  for (const a of answers) {
    for (const p of Object.keys(a.value.values)) {
      const f = first.get(p);
      if (f === undefined) first.set(p, a.index);
      else {
        if (f >= 0) add(f, p);
        first.set(p, -1);
        add(a.index, p);
      }
    }
  }
  return out;
}

/**
 * Per path the value a replay of the merged history leaves: for a path one shard holds, its
 * value; for a path several hold, the one whose update is newest by `times`, equal times to
 * the shard later by the tie rule (./merge-tie.ts). Without `times` for a shared path, each
 * answer's own time stands for its update's. Paths sorted; `ts` is the newest answer's.
 */
export function mergeStates(answers: ReadonlyArray<Indexed<StateAnswer>>, times?: UpdateTimes): { ts: number | null; values: Record<string, unknown>; pending: boolean } {
  const best = new Map<string, { a: Indexed<StateAnswer>; v: unknown }>();
  let ts: number | null = null;
  let pending = false;
  const updatedUs = (a: Indexed<StateAnswer>, p: string): number => {
    const t = times?.get(a.index)?.get(p);
    return t === undefined ? a.value.ts ?? -Infinity : t ?? -Infinity;
  };
  for (const a of answers) {
    if (a.value.ts !== null && (ts === null || a.value.ts > ts)) ts = a.value.ts;
    pending ||= a.value.pending === true;
    for (const [p, v] of Object.entries(a.value.values)) {
      const b = best.get(p);
      if (!b || compareTie(updatedUs(a, p), a.index, updatedUs(b.a, p), b.a.index) > 0) best.set(p, { a, v });
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
    return out.sort((p, q) => compareTie(p.s, p.i, q.s, q.i)).map((o) => o.x);
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
