/**
 * When the end of a session's range is live, i.e. reaching the end of the archive turns
 * into tail rather than the end. Pure: the clock is passed in.
 *
 * An unbounded end, or one in the future, is live. A bounded end stays live for one flush
 * interval (plus a second) after it passes: a batch stamped just before it may still be on
 * its way to the disk.
 */
import type { Bound } from '../../protocol/controls.js';

const US_PER_MS = 1000;
/** Beyond the flush interval, for the commit itself. */
const COMMIT_SLACK_MS = 1000;

function commitLagUs(flushIntervalMs: number): number {
  return (flushIntervalMs + COMMIT_SLACK_MS) * US_PER_MS;
}

export function endIsLive(end: Bound, flushIntervalMs: number, nowUs: number): boolean {
  return end.kind === 'unbounded' || end.us + commitLagUs(flushIntervalMs) > nowUs;
}

/** Milliseconds until a bounded end stops being live (unbounded: Infinity, it never does). */
export function liveEndWaitMs(end: Bound, flushIntervalMs: number, nowUs: number): number {
  if (end.kind === 'unbounded') return Infinity;
  return Math.max(1, (end.us + commitLagUs(flushIntervalMs) - nowUs) / US_PER_MS + 1);
}
