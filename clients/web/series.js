// What the charts keep of one path: its recorded updates as exact epoch µs and wire values
// (for the hover read-out, which shows them as recorded), and the same as chart numbers
// (epoch seconds, chartNumber) for uPlot. At most pointsPerSeriesMax, the newest.
// Pure apart from values.js; tested in Node.
import { CHART_LIMITS } from './chart-limits.js';
import { breakAtGaps } from './gaps.js';
import { chartNumber, isNumeric } from './values.js';

const POINTS_MAX = CHART_LIMITS.pointsPerSeriesMax;

/** How a wire value is drawn: 'number' (a series), 'state' (a state track), or null for null (no value says nothing). */
export function kindOf(wire) {
  if (wire === null || wire === undefined) return null;
  return isNumeric(wire) ? 'number' : 'state';
}

export class Series {
  constructor(path) {
    this.path = path;
    this.tsUs = [];
    this.wire = [];
    this.xs = [];
    this.ys = [];
    /** Bumped by every change of the points (the panels redo their drawn data only then). */
    this.version = 0;
    /** 'number' or 'state' once a value other than null was seen; null before. */
    this.kind = null;
  }

  clear() {
    this.version++;
    this.tsUs.length = 0;
    this.wire.length = 0;
    this.xs.length = 0;
    this.ys.length = 0;
  }

  /** An update at `tsUs` (not older than the last: an older one is dropped). */
  push(tsUs, wire) {
    const n = this.tsUs.length;
    if (n > 0 && tsUs < this.tsUs[n - 1]) return false;
    this.kind ??= kindOf(wire);
    this.version++;
    this.tsUs.push(tsUs);
    this.wire.push(wire);
    this.xs.push(tsUs / 1e6);
    this.ys.push(chartNumber(wire));
    // Trim in steps of a quarter so that playing does not shift the arrays on every batch.
    if (n + 1 > POINTS_MAX * 1.25) this.dropOldest(n + 1 - POINTS_MAX);
    return true;
  }

  /** Updates recorded before the first kept one (history), oldest first; as many as there is room for. */
  prepend(tsUs, wire) {
    const first = this.tsUs.length > 0 ? this.tsUs[0] : Infinity;
    let end = tsUs.length;
    while (end > 0 && tsUs[end - 1] >= first) end--;
    const start = Math.max(0, end - Math.max(0, POINTS_MAX - this.tsUs.length));
    if (end <= start) return;
    this.version++;
    const ts = tsUs.slice(start, end);
    const ws = wire.slice(start, end);
    for (let k = ws.length - 1; k >= 0 && this.kind === null; k--) this.kind = kindOf(ws[k]);
    this.tsUs.unshift(...ts);
    this.wire.unshift(...ws);
    this.xs.unshift(...ts.map((t) => t / 1e6));
    this.ys.unshift(...ws.map(chartNumber));
  }

  dropOldest(n) {
    this.tsUs.splice(0, n);
    this.wire.splice(0, n);
    this.xs.splice(0, n);
    this.ys.splice(0, n);
  }

  /** Index of the last update at or before `tsUs`, or -1. */
  indexAt(tsUs) {
    let lo = 0;
    let hi = this.tsUs.length; // first index with ts > tsUs
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tsUs[mid] <= tsUs) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** [xs, ys] with nulls where the line must break (gaps.js). */
  broken(spans) {
    return breakAtGaps(this.xs, this.ys, spans);
  }
}

/**
 * Several broken series as uPlot's aligned data: one x column (every series' xs merged,
 * duplicates kept, so a gap's null never overwrites a point at the same x) and one y
 * column per series, `undefined` where that series has no point (uPlot spans it) and null
 * where it breaks (uPlot does not).
 */
export function alignSeries(tables) {
  if (tables.length === 1) return [tables[0][0], tables[0][1]];
  if (tables.every((t) => sameXs(t[0], tables[0][0]))) return [tables[0][0], ...tables.map((t) => t[1])];
  const total = tables.reduce((n, t) => n + t[0].length, 0);
  const xs = new Array(total);
  const cols = tables.map(() => new Array(total)); // holes read as undefined: uPlot spans them
  const at = tables.map(() => 0);
  for (let row = 0; row < total; row++) {
    let pick = -1;
    let best = Infinity;
    for (let s = 0; s < tables.length; s++) {
      const x = tables[s][0][at[s]]; // undefined past the end: never below best
      if (x < best) { best = x; pick = s; }
    }
    xs[row] = best;
    cols[pick][row] = tables[pick][1][at[pick]];
    at[pick]++;
  }
  return [xs, ...cols];
}

/** Paths written by the same batches share their x values: then the columns line up as they are. */
function sameXs(a, b) {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
