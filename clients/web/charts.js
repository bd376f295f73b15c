// One small uPlot chart per selected numeric path. After a seek the charts restart from the
// state frame (plus the recorded history of the last minutes before the position, fetched
// from /api/v1/history); while playing, batches append points. Points per chart are bounded.
// Recorder gaps (the session's coverage frames) are shaded, and no line is drawn across one.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { breakAtGaps, gapSpans } from './gaps.js';
import { chartNumber, isNumeric } from './values.js';
import { formatUs } from './time.js';
import { apiFetch } from './http.js';

export const CHARTS_MAX = 12;
const POINTS_MAX = 4000;
const HISTORY_WINDOW_US = 10 * 60e6;
const COLORS = ['#2b7bb9', '#d9534f', '#3c9d5d', '#e3a21a', '#8e5cc4', '#1aa3a3'];
/** Gaps a chart keeps (the newest): a coverage frame carries at most 1000 items (coverageItemsMax). */
const GAPS_MAX = 1000;
const GAP_FILL = { 'recorder-crashed': 'rgba(200, 56, 45, 0.14)', 'recorder-stopped': 'rgba(93, 104, 117, 0.14)' };

/** 24-hour UTC tick labels, as precise as the tick spacing (`incr`, seconds) needs. */
function timeLabels(_u, splits, _axis, _space, incr) {
  const [from, to] = incr >= 86400 ? [0, 10] : incr >= 60 ? [11, 16] : incr >= 1 ? [11, 19] : [14, 23];
  return splits.map((sec) => new Date(sec * 1e3).toISOString().slice(from, to));
}

export class Charts {
  constructor(container, base) {
    this.el = container;
    this.base = base;
    this.charts = new Map(); // path -> { xs, ys, plot, box }
    this.frame = 0;
    this.generation = 0;
    this.wanted = new Set();
    this.gaps = [];       // [{ startUs, endUs, reason }] of the session's range
    this.spans = [];      // the same as sorted [startS, endS] (gaps.js)
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
  }

  /** Shows charts for the numeric paths among `paths` (at most CHARTS_MAX). */
  setPaths(paths, values, posUs) {
    this.wanted = new Set(paths);
    const want = [...paths].filter((p) => isNumeric(values.get(p))).sort().slice(0, CHARTS_MAX);
    const keep = new Set(want);
    for (const [p, c] of this.charts) if (!keep.has(p)) { c.plot.destroy(); c.box.remove(); this.charts.delete(p); }
    const added = [];
    for (const p of want) {
      if (this.charts.has(p)) continue;
      const c = this.make(p, this.charts.size);
      this.charts.set(p, c);
      if (posUs !== null) { c.xs.push(posUs / 1e6); c.ys.push(chartNumber(values.get(p))); }
      added.push(p);
    }
    for (const p of want) this.el.append(this.charts.get(p).box);
    if (added.length > 0 && posUs !== null) this.loadHistory(added, posUs, this.generation);
    this.schedule();
  }

  make(path, i) {
    const box = document.createElement('figure');
    box.className = 'chart';
    box.dataset.path = path;
    const cap = document.createElement('figcaption');
    cap.textContent = path;
    box.append(cap);
    const xs = [];
    const ys = [];
    const plot = new uPlot({
      width: this.width(),
      height: 150,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      tzDate: (sec) => uPlot.tzDate(new Date(sec * 1e3), 'Etc/UTC'), // UTC, as the position is shown
      axes: [{ size: 30, font: '11px sans-serif', values: timeLabels }, { size: 50, font: '11px sans-serif' }],
      hooks: { draw: [(u) => this.shadeGaps(u)] },
      series: [{ value: (_u, v) => (v === null ? '' : formatUs(v * 1e6)) }, { label: path, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, points: { show: false } }],
    }, [xs, ys], box);
    return { xs, ys, plot, box };
  }

  /** From a `coverage` frame: the recorder gaps of the session's range. */
  setGaps(gaps) {
    this.gaps = gaps.slice(-GAPS_MAX);
    this.spans = gapSpans(this.gaps);
    this.schedule();
  }

  /** Shades each gap over the plot area, a crash apart from a clean stop (uPlot's draw hook, canvas pixels). */
  shadeGaps(u) {
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    for (const g of this.gaps) {
      const a = Math.max(left, u.valToPos(g.startUs / 1e6, 'x', true));
      const b = g.endUs === null ? left + width : Math.min(left + width, u.valToPos(g.endUs / 1e6, 'x', true));
      if (!(b > a)) continue;
      ctx.fillStyle = GAP_FILL[g.reason] ?? GAP_FILL['recorder-stopped'];
      ctx.fillRect(a, top, Math.max(b - a, 1), height);
    }
    ctx.restore();
  }

  /** Two charts a row on a wide pane, one on a narrow one (a chart's frame adds 14 px). */
  width() {
    const w = this.el.clientWidth || 600;
    return Math.max(240, w >= 800 ? Math.floor((w - 10) / 2) - 14 : w - 14);
  }

  fit() {
    const w = this.width();
    for (const c of this.charts.values()) c.plot.setSize({ width: w, height: 150 });
  }

  /** A seek: every chart restarts from the state at `ts`, then history before it is loaded. */
  reset(ts, values) {
    this.generation++;
    for (const [p, c] of this.charts) {
      c.xs.length = 0;
      c.ys.length = 0;
      if (ts !== null) { c.xs.push(ts / 1e6); c.ys.push(chartNumber(values.get(p))); }
    }
    if (ts !== null && this.charts.size > 0) this.loadHistory([...this.charts.keys()], ts, this.generation);
    this.schedule();
  }

  append(ts, updates) {
    if (this.wanted.size === 0) return;
    let any = false;
    for (const [p, v] of updates) {
      let c = this.charts.get(p);
      if (!c) {
        // A selected path that had no value at the last seek, now numeric: chart it.
        if (!this.wanted.has(p) || !isNumeric(v) || this.charts.size >= CHARTS_MAX) continue;
        c = this.make(p, this.charts.size);
        this.charts.set(p, c);
        this.el.append(c.box);
      }
      const x = ts / 1e6;
      if (c.xs.length > 0 && x < c.xs[c.xs.length - 1]) continue;
      c.xs.push(x);
      c.ys.push(chartNumber(v));
      if (c.xs.length > POINTS_MAX * 1.25) { c.xs.splice(0, c.xs.length - POINTS_MAX); c.ys.splice(0, c.ys.length - POINTS_MAX); }
      any = true;
    }
    if (any) this.schedule();
  }

  async loadHistory(paths, ts, generation) {
    const q = new URLSearchParams({ from: String(Math.max(0, ts - HISTORY_WINDOW_US)), to: String(ts), format: 'ndjson' });
    for (const p of paths) q.append('glob', p);
    let text;
    try {
      const res = await apiFetch(`${this.base}/api/v1/history?${q}`);
      if (!res.ok) return;
      text = await res.text();
    } catch {
      return;
    }
    if (generation !== this.generation) return; // a newer seek restarted the charts
    const before = new Map(paths.map((p) => [p, { xs: [], ys: [] }]));
    for (const line of text.split('\n')) {
      if (!line) continue;
      const b = JSON.parse(line);
      if (b.ts >= ts) continue;
      for (const [p, v] of Object.entries(b.updates)) {
        const h = before.get(p);
        if (h) { h.xs.push(b.ts / 1e6); h.ys.push(chartNumber(v)); }
      }
    }
    for (const [p, h] of before) {
      const c = this.charts.get(p);
      if (!c || h.xs.length === 0) continue;
      const room = Math.max(0, POINTS_MAX - c.xs.length);
      c.xs.unshift(...h.xs.slice(-room));
      c.ys.unshift(...h.ys.slice(-room));
    }
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    for (const c of this.charts.values()) c.plot.setData(breakAtGaps(c.xs, c.ys, this.spans));
  }
}
