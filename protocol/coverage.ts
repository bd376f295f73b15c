/**
 * Coverage: where the record is blind. A recorder writes an event when a recording run
 * starts, when its first batch is recorded, when it stops cleanly, and when a source goes
 * down or comes back. From those events (pure function below) follow the runs, the gaps
 * between them (recorder stopped or crashed) and each source's outages, so players and
 * charts can draw holes instead of bridging them.
 *
 * Times: `atUs` is the wall clock when the event happened; batch times (`lastTsUs`,
 * `tsUs`) are the archive's own timestamps. A gap is drawn in batch time: from the last
 * batch the previous run committed to the first batch of the next run.
 */

export type CoverageEvent =
  /** A run opened the archive; `lastTsUs` is the last committed batch before it (null: empty archive). */
  | { kind: 'run-start'; run: string; atUs: number; lastTsUs: number | null }
  /** The run's first recorded batch. */
  | { kind: 'run-first-batch'; run: string; atUs: number; tsUs: number }
  /** The run stopped cleanly, everything flushed; `lastTsUs` is its last committed batch. */
  | { kind: 'run-stop'; run: string; atUs: number; lastTsUs: number | null }
  | { kind: 'source-down'; run: string; atUs: number; source: string; reason: string }
  | { kind: 'source-up'; run: string; atUs: number; source: string };

export type GapReason = 'recorder-stopped' | 'recorder-crashed';

export interface CoverageRun {
  run: string;
  /** Wall clock of the start; first and last batch of the run (null while it has none). */
  startedAtUs: number;
  firstTsUs: number | null;
  lastTsUs: number | null;
  /** How the run ended: still running (the newest run), stopped cleanly, or crashed (no stop event before the next start). */
  ended: 'running' | 'stopped' | 'crashed';
}

export interface CoverageGap {
  /** Batch time of the last batch before the hole (exclusive start of the hole). */
  startUs: number;
  /** Batch time of the first batch after it; null while the next run has recorded nothing. */
  endUs: number | null;
  reason: GapReason;
  /** On a clustered node's merged answers and frames: the shard whose hole it is (docs/cluster.md). */
  shard?: string;
}

export interface SourceOutage {
  source: string;
  startUs: number;
  /** Null while the source is still down. */
  endUs: number | null;
  reason: string;
  /** On a clustered node's merged answers and frames: the shard whose outage it is. */
  shard?: string;
}

export interface Coverage {
  runs: CoverageRun[];
  gaps: CoverageGap[];
  outages: SourceOutage[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isUs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isUsOrNull = (v: unknown): v is number | null => v === null || isUs(v);

/** Checks one decoded journal record; anything else is damage. */
export function isCoverageEvent(v: unknown): v is CoverageEvent {
  if (!isObject(v) || typeof v.run !== 'string' || !isUs(v.atUs)) return false;
  switch (v.kind) {
    case 'run-start':
    case 'run-stop':
      return isUsOrNull(v.lastTsUs);
    case 'run-first-batch':
      return isUs(v.tsUs);
    case 'source-down':
      return typeof v.source === 'string' && typeof v.reason === 'string';
    case 'source-up':
      return typeof v.source === 'string';
    default:
      return false;
  }
}

/** Runs, gaps and outages from the journal's events (in journal order), all of them. */
export function coverageOf(events: readonly CoverageEvent[]): Coverage {
  const runs: CoverageRun[] = [];
  const gaps: CoverageGap[] = [];
  const outages: SourceOutage[] = [];
  const open = new Map<string, SourceOutage>();
  let run: CoverageRun | undefined;
  const closeOutages = (atUs: number): void => {
    for (const o of open.values()) o.endUs = atUs;
    open.clear();
  };
  for (const e of events) {
    if (e.kind === 'run-start') {
      if (run?.ended === 'running') {
        // No stop event: the previous run crashed; what it committed ends where this run found the archive.
        run.ended = 'crashed';
        run.lastTsUs = e.lastTsUs ?? run.lastTsUs;
        closeOutages(e.atUs);
      }
      const previous = run;
      run = { run: e.run, startedAtUs: e.atUs, firstTsUs: null, lastTsUs: null, ended: 'running' };
      runs.push(run);
      if (previous && e.lastTsUs !== null) {
        gaps.push({ startUs: e.lastTsUs, endUs: null, reason: previous.ended === 'stopped' ? 'recorder-stopped' : 'recorder-crashed' });
      }
      continue;
    }
    if (!run || e.run !== run.run) continue; // an event of a run whose start was lost: ignored
    if (e.kind === 'run-first-batch') {
      run.firstTsUs ??= e.tsUs;
      const gap = gaps.at(-1);
      if (gap && gap.endUs === null && runs.length >= 2) gap.endUs = e.tsUs;
    } else if (e.kind === 'run-stop') {
      run.ended = 'stopped';
      run.lastTsUs = e.lastTsUs;
      closeOutages(e.atUs);
      // The next run-start's gap reason reads run.ended.
    } else if (e.kind === 'source-down') {
      if (open.has(e.source)) continue;
      const o: SourceOutage = { source: e.source, startUs: e.atUs, endUs: null, reason: e.reason };
      open.set(e.source, o);
      outages.push(o);
    } else {
      const o = open.get(e.source);
      if (o) {
        o.endUs = e.atUs;
        open.delete(e.source);
      }
    }
  }
  return { runs, gaps, outages };
}

/** The part of a coverage that touches [startUs, endUs] (inclusive). */
export function coverageBetween(c: Coverage, startUs: number, endUs: number): Coverage {
  const touches = (a: number | null, b: number | null): boolean => (a ?? 0) <= endUs && (b ?? Number.MAX_SAFE_INTEGER) >= startUs;
  return {
    runs: c.runs.filter((r) => touches(r.firstTsUs ?? r.startedAtUs, r.ended === 'running' ? null : r.lastTsUs ?? r.startedAtUs)),
    gaps: c.gaps.filter((g) => touches(g.startUs, g.endUs)),
    outages: c.outages.filter((o) => touches(o.startUs, o.endUs)),
  };
}
