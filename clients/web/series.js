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
    /** 'number' or 'state' once a value other than null was seen; null before. */
    this.kind = null;
  }

  clear() {
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
  const total = tables.reduce((n, t) => n + t[0].length, 0);
  const xs = new Array(total);
  const cols = tables.map(() => new Array(total).fill(undefined));
  const at = tables.map(() => 0);
  for (let row = 0; row < total; row++) {
    let pick = -1;
    for (let s = 0; s < tables.length; s++) {
      const i = at[s];
      if (i < tables[s][0].length && (pick < 0 || tables[s][0][i] < tables[pick][0][at[pick]])) pick = s;
    }
    xs[row] = tables[pick][0][at[pick]];
    cols[pick][row] = tables[pick][1][at[pick]];
    at[pick]++;
  }
  return [xs, ...cols];
}
