/**
 * Loops over the archive's paths that test globs, in slices: a yield to the event loop every
 * specPathsPerYield paths or specSliceMs, whichever comes first (one path against a spec of
 * many globs may cost milliseconds), and a stop at a yield once the asking client has left
 * (server/client-gone.ts). Used by /paths, /state, /diff, /history and sessions.
 */
import { setImmediate } from 'node:timers/promises';
import { stopIfGone } from './client-gone.js';
import { SERVER_LIMITS } from './limits.js';

/**
 * When a loop over paths yields: after specPathsPerYield paths or specSliceMs, whichever
 * comes first (a clock read at every path: one may cost milliseconds of glob matching).
 */
class PathSlices {
  private n = 0;
  private since = performance.now();

  constructor(private readonly signal: AbortSignal | undefined) {}

  /** Whether to yield before the next path (no await: most paths do not). */
  due(): boolean {
    return ++this.n >= SERVER_LIMITS.specPathsPerYield || performance.now() - this.since >= SERVER_LIMITS.specSliceMs;
  }

  /** Yields; then throws TPD_CANCELED once `signal` is aborted. */
  async pause(): Promise<void> {
    await setImmediate();
    stopIfGone(this.signal);
    this.n = 0;
    this.since = performance.now();
  }
}

/**
 * Calls `each` with every path `match` takes, in order, yielding to the event loop every
 * specPathsPerYield paths or specSliceMs; stops early when `each` returns false, and throws
 * TPD_CANCELED at a yield once `signal` (the client leaving, server/client-gone.ts) is aborted.
 */
export async function forMatchingPaths(match: (p: string) => boolean, paths: Iterable<string>, each: (p: string) => boolean | void, signal?: AbortSignal): Promise<void> {
  const slices = new PathSlices(signal);
  for (const p of paths) {
    if (slices.due()) await slices.pause();
    if (match(p) && each(p) === false) return;
  }
}

/**
 * Decides a cursor's filter for every recorded path in slices (specPathsPerYield paths or
 * specSliceMs; the cursor keeps each decision), so the reads after it, which ask it of every path id in one
 * piece, test no glob. True when some path matches. Throws TPD_CANCELED at a slice once
 * `signal` is aborted.
 */
export async function coverInSlices(c: { matches(id: number): boolean }, pathCount: number, signal?: AbortSignal): Promise<boolean> {
  let any = false;
  const slices = new PathSlices(signal);
  for (let id = 0; id < pathCount; id++) {
    if (slices.due()) await slices.pause();
    if (c.matches(id)) any = true;
  }
  return any;
}

