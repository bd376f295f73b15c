/**
 * The coverage of a cluster, for the `coverage` frames of merged sessions (docs/cluster.md,
 * "Merged sessions"): the union of every shard's gaps and outages, each naming its
 * `shard`. A session reads coverage synchronously (CoverageSource), so this keeps the
 * shards' last answers of `GET /api/v1/coverage?scope=local` and refreshes them every
 * clusterCoveragePollMs while sessions are open, telling them ('change') when the union
 * changed. A shard that does not answer keeps its last known coverage: its holes do not
 * vanish because it is down (the session's info frames say it is missing).
 */
import { EventEmitter } from 'node:events';
import { coverageBetween, type Coverage, type CoverageGap, type GapReason, type SourceOutage } from '../../protocol/coverage.js';
import { SERVER_LIMITS } from '../limits.js';
import type { CoverageSource } from '../sessions/ports.js';
import type { ShardDirectory } from './directory.js';
import { fanoutJson } from './fanout.js';

/** A gap or an outage of one shard, as a coverage frame carries it. */
export type ShardGap = CoverageGap & { shard: string };
export type ShardOutage = SourceOutage & { shard: string };

/** The part of a shard's local /api/v1/coverage answer used here. */
interface LocalCoverage {
  gaps?: Array<{ start_us?: unknown; end_us?: unknown; reason?: unknown }>;
  outages?: Array<{ source?: unknown; start_us?: unknown; end_us?: unknown; reason?: unknown }>;
}

const isUs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const usOrNull = (v: unknown): number | null | undefined => (v === null ? null : isUs(v) ? v : undefined);

/** An object: its lists are read item by item (shardCoverage). */
const isLocalCoverage = (v: unknown): v is LocalCoverage => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The items of a list that are objects; anything else (not a list, null items) gives none. */
function objects<T extends object>(v: unknown): Partial<T>[] {
  return Array.isArray(v) ? (v.filter((x) => typeof x === 'object' && x !== null && !Array.isArray(x)) as Partial<T>[]) : [];
}

/**
 * A shard's answer as frame items; malformed items are dropped (a shard of another version,
 * or a hostile one: it must not stop the other shards' coverage from being read).
 */
export function shardCoverage(shard: string, a: LocalCoverage): { gaps: ShardGap[]; outages: ShardOutage[] } {
  const gaps: ShardGap[] = [];
  for (const g of objects<NonNullable<LocalCoverage['gaps']>[number]>(a.gaps)) {
    const end = usOrNull(g.end_us);
    if (isUs(g.start_us) && end !== undefined && typeof g.reason === 'string') gaps.push({ shard, startUs: g.start_us, endUs: end, reason: g.reason as GapReason });
  }
  const outages: ShardOutage[] = [];
  for (const o of objects<NonNullable<LocalCoverage['outages']>[number]>(a.outages)) {
    const end = usOrNull(o.end_us);
    if (isUs(o.start_us) && end !== undefined && typeof o.source === 'string' && typeof o.reason === 'string') outages.push({ shard, source: o.source, startUs: o.start_us, endUs: end, reason: o.reason });
  }
  return { gaps, outages };
}

/** Ordered by start, then shard id (byte order), as GET /api/v1/coverage merges them. */
function byStartThenShard(a: { startUs: number; shard: string }, b: { startUs: number; shard: string }): number {
  return a.startUs - b.startUs || (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0);
}

export class MergedCoverage extends EventEmitter implements CoverageSource {
  private readonly dir: ShardDirectory;
  private readonly active: () => boolean;
  private readonly perShard = new Map<string, { gaps: ShardGap[]; outages: ShardOutage[] }>();
  private union: Coverage = { runs: [], gaps: [], outages: [] };
  private text = '';
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  /** `active`: whether sessions are open (no polling otherwise). */
  constructor(dir: ShardDirectory, active: () => boolean) {
    super();
    this.dir = dir;
    this.active = active;
    this.timer = setInterval(() => {
      if (this.active()) void this.refresh();
    }, SERVER_LIMITS.clusterCoveragePollMs);
    this.timer.unref();
  }

  between(startUs: number, endUs: number): Coverage {
    return coverageBetween(this.union, startUs, endUs);
  }

  /** Asks every live shard once (concurrent callers share the request); never throws. */
  refresh(): Promise<void> {
    this.inFlight ??= this.ask().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.removeAllListeners();
  }

  private async ask(): Promise<void> {
    try {
      const f = await fanoutJson<LocalCoverage>(this.dir, '/api/v1/coverage', isLocalCoverage);
      for (const a of f.answers) this.perShard.set(a.shard.id, shardCoverage(a.shard.id, a.value));
    } catch {
      // No shard answered, or membership unreadable: the last known coverage stays.
      return;
    }
    const all = [...this.perShard.values()];
    const union: Coverage = {
      runs: [],
      gaps: all.flatMap((s) => s.gaps).sort(byStartThenShard),
      outages: all.flatMap((s) => s.outages).sort(byStartThenShard),
    };
    const text = JSON.stringify(union);
    if (text === this.text) return;
    this.union = union;
    this.text = text;
    this.emit('change');
  }
}
