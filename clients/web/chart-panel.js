// One panel of the charts: a legend of its paths (each removable), one uPlot chart that
// overlays its numeric paths with a y axis per unit (units.js), its non-numeric paths as
// state tracks under the chart (state-track.js), and the hover read-out (hover.js). The
// panel owns its DOM and its uPlot; what to show (series, time window, gaps, playhead)
// comes from the Charts that holds it.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { CHART_LIMITS } from './chart-limits.js';
import { renderReadout } from './hover.js';
import { startPan, wheel } from './pan-zoom.js';
import { renderStateTrack } from './state-track.js';
import { pathOfDrag } from './tree.js';
import { assignAxes } from './units.js';
import { alignSeries } from './series.js';
import { formatUs } from './time.js';
import { shownPath } from './values.js';

const COLORS = ['#2b7bb9', '#d9534f', '#3c9d5d', '#e3a21a', '#8e5cc4', '#1aa3a3', '#b5651d', '#5d6875'];
const GAP_FILL = { 'recorder-crashed': 'rgba(200, 56, 45, 0.14)', 'recorder-stopped': 'rgba(93, 104, 117, 0.14)' };
const PLOT_HEIGHT_PX = 170;
/** Width of a y axis (and of the state tracks' label column when a panel has no chart). */
const AXIS_PX = 56;
const FONT = '11px sans-serif';
const HEAD_COLOR = '#c8382d';

/** 24-hour UTC tick labels, as precise as the tick spacing (`incr`, seconds) needs. */
function timeLabels(_u, splits, _axis, _space, incr) {
  const [from, to] = incr >= 86400 ? [0, 10] : incr >= 60 ? [11, 16] : incr >= 1 ? [11, 19] : [14, 23];
  return splits.map((sec) => new Date(sec * 1e3).toISOString().slice(from, to));
}

const scaleKey = (unit) => `u:${unit}`;

/** Y tick labels: plain under a million, else exponent form, so a counter near 2^60 keeps the axis narrow (the read-out has the exact value). */
function valueLabels(_u, splits) {
  return splits.map((v) => (v === null ? '' : Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-4) ? v.toExponential(2) : String(+v.toPrecision(6))));
}

/** A y axis as wide as its longest tick label (11 px sans: about 6.5 px a character), at least AXIS_PX. */
function axisSize(_u, values) {
  const chars = Math.max(0, ...(values ?? []).map((v) => String(v).length));
  return Math.max(AXIS_PX, Math.ceil(chars * 6.5) + 16);
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Panel {
  constructor(charts, paths) {
    this.charts = charts;
    this.paths = [...paths];
    this.plot = null;
    this.plotShape = '';
    this.refused = [];
    this.box = el('figure', 'panel');
    this.legend = el('ul', 'legend');
    const tools = el('div', 'panel-tools');
    this.pickBtn = el('button', 'pick', '◎ pick here');
    this.pickBtn.type = 'button';
    this.pickBtn.title = 'Paths picked in the tree join this panel';
    this.pickBtn.setAttribute('aria-pressed', 'false');
    this.pickBtn.onclick = () => charts.toggleTarget(this);
    const close = el('button', 'close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', 'Close this panel');
    close.onclick = () => charts.closePanel(this);
    tools.append(this.pickBtn, close);
    const head = el('figcaption', 'panel-head');
    head.append(this.legend, tools);
    this.plotHost = el('div', 'plot-host');
    this.states = el('div', 'states');
    this.readout = el('div', 'hover');
    this.readout.hidden = true;
    this.box.append(head, this.plotHost, this.states, this.readout);
    this.listen();
  }

  listen() {
    this.box.addEventListener('dragover', (ev) => {
      if (!pathOfDrag(ev)) return;
      ev.preventDefault();
      this.box.classList.add('drop');
    });
    this.box.addEventListener('dragleave', () => this.box.classList.remove('drop'));
    this.box.addEventListener('drop', (ev) => {
      this.box.classList.remove('drop');
      const path = pathOfDrag(ev);
      if (!path) return;
      ev.preventDefault();
      ev.stopPropagation();
      this.charts.dropInto(this, path);
    });
    this.legend.addEventListener('click', (ev) => {
      const btn = ev.target instanceof HTMLElement ? ev.target.closest('button[data-remove]') : null;
      if (btn) this.charts.removeFromPanel(this, btn.dataset.remove);
    });
    this.states.addEventListener('mousemove', (ev) => this.hoverStates(ev));
    this.states.addEventListener('mouseleave', () => { this.readout.hidden = true; });
  }

  colorOf(path) {
    return COLORS[this.paths.indexOf(path) % COLORS.length];
  }

  pathsOfKind(kind) {
    return this.paths.filter((p) => this.charts.series.get(p)?.kind === kind);
  }

  /** The units of the numeric paths as y axes; paths past axesPerPanelMax are refused (shown, not drawn). */
  axes() {
    return assignAxes(this.pathsOfKind('number'), (p) => this.charts.unitFor(p), CHART_LIMITS.axesPerPanelMax);
  }

  /** Rebuilds what depends on the set of paths and their kinds: legend, uPlot, classes. */
  render() {
    const { units, scaleOf, refused } = this.axes();
    this.refused = refused;
    const numeric = [...scaleOf.keys()];
    this.box.classList.toggle('chart', numeric.length > 0);
    this.box.dataset.path = this.paths[0] ?? '';
    this.box.dataset.paths = JSON.stringify(this.paths);
    this.renderLegend(scaleOf);
    const shape = JSON.stringify([numeric, units]);
    if (shape === this.plotShape) return;
    this.plotShape = shape;
    this.plot?.destroy();
    this.plot = numeric.length > 0 ? this.makePlot(numeric, units, scaleOf) : null;
    this.numeric = numeric;
  }

  renderLegend(scaleOf) {
    this.legend.replaceChildren();
    for (const p of this.paths) {
      const s = this.charts.series.get(p);
      const li = el('li');
      li.dataset.path = p;
      const sw = el('i', 'sw');
      sw.style.background = this.colorOf(p);
      const name = el('span', 'legend-path', p);
      li.append(sw, name);
      const unit = scaleOf.get(p);
      if (unit) li.append(el('span', 'unit', unit));
      if (s?.kind === null || s === undefined) li.append(el('span', 'note', 'no value yet'));
      if (s?.kind === 'state') li.append(el('span', 'note', 'state'));
      if (this.refused.includes(p)) li.append(el('span', 'note bad', `no axis left (${CHART_LIMITS.axesPerPanelMax} units at most)`));
      const rm = el('button', 'rm', '×');
      rm.type = 'button';
      rm.dataset.remove = p;
      rm.setAttribute('aria-label', `Remove ${p} from this panel`);
      li.append(rm);
      this.legend.append(li);
    }
  }

  makePlot(numeric, units, scaleOf) {
    const scales = { x: { time: true } };
    for (const u of units) scales[scaleKey(u)] = { auto: true };
    const axes = [{ size: 30, space: 70, font: FONT, values: timeLabels }];
    units.forEach((u, i) => axes.push({
      scale: scaleKey(u), side: i % 2 === 0 ? 3 : 1, size: axisSize, values: valueLabels, font: FONT, labelFont: FONT,
      label: u === '' ? undefined : u, labelSize: u === '' ? 0 : 14, labelGap: 0, grid: { show: i === 0 },
    }));
    const series = [{}];
    for (const p of numeric) {
      series.push({ label: shownPath(p), scale: scaleKey(scaleOf.get(p)), stroke: this.colorOf(p), width: 1.5, spanGaps: false, points: { show: false } });
    }
    const charts = this.charts;
    return new uPlot({
      width: charts.panelWidth(),
      height: PLOT_HEIGHT_PX,
      legend: { show: false },
      scales,
      axes,
      series,
      tzDate: (sec) => uPlot.tzDate(new Date(sec * 1e3), 'Etc/UTC'), // UTC, as the position is shown
      cursor: {
        sync: { key: charts.syncKey },
        drag: { x: true, y: false, setScale: false },
        bind: {
          // Shift-drag pans instead of selecting a zoom; double-click follows the playhead again.
          mousedown: (_u, targ, handler) => (e) => {
            if (e.button !== 0) return;
            if (e.shiftKey) { startPan(charts, e, this.plot.over); return; }
            if (e.target === targ) handler(e);
          },
          dblclick: () => (e) => { if (e.button === 0) charts.resetView(); },
        },
      },
      hooks: {
        draw: [(u) => this.drawOverlay(u)],
        setSelect: [(u) => this.selected(u)],
        setCursor: [(u) => this.cursorMoved(u)],
        ready: [(u) => u.over.addEventListener('wheel', (ev) => wheel(charts, ev, u), { passive: false })],
      },
    }, [[], ...numeric.map(() => [])], this.plotHost);
  }

  /** A drag selected [left, left + width] px: zoom the shared window to it. */
  selected(u) {
    const { left, width } = u.select;
    if (width >= 3) this.charts.userZoom(u.posToVal(left, 'x'), u.posToVal(left + width, 'x'));
    if (width > 0) u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  }

  cursorMoved(u) {
    const left = u.cursor.left;
    if (left === undefined || left === null || left < 0 || !u.over.matches(':hover')) {
      this.readout.hidden = true;
      return;
    }
    this.showReadout(Math.round(u.posToVal(left, 'x') * 1e6), u.over.offsetLeft + left);
  }

  hoverStates(ev) {
    const win = this.charts.window;
    const area = ev.target instanceof HTMLElement ? ev.target.closest('.state-area') : null;
    if (!win || !area) { this.readout.hidden = true; return; }
    const r = area.getBoundingClientRect();
    const x = ev.clientX - r.left;
    this.showReadout(Math.round((win[0] + (x / r.width) * (win[1] - win[0])) * 1e6), area.offsetLeft + x);
  }

  /** The read-out for time `tsUs`, beside the pointer at `xPx` (from the panel's left). */
  showReadout(tsUs, xPx) {
    const rows = this.paths.map((path) => ({ path, color: this.colorOf(path), series: this.charts.series.get(path) }));
    renderReadout(this.readout, tsUs, rows, this.charts.gaps);
    this.readout.hidden = false;
    // Beside the pointer on the side with room, else against the panel's edge.
    const w = this.readout.offsetWidth;
    const room = this.box.clientWidth;
    const left = xPx + 14 + w <= room ? xPx + 14 : xPx - 14 - w >= 0 ? xPx - 14 - w : Math.max(0, room - w);
    this.readout.style.left = `${left}px`;
  }

  /** Gaps shaded (a crash apart from a clean stop) and the playhead, over the plot (canvas px). */
  drawOverlay(u) {
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    for (const g of this.charts.gaps) {
      const a = Math.max(left, u.valToPos(g.startUs / 1e6, 'x', true));
      const b = g.endUs === null ? left + width : Math.min(left + width, u.valToPos(g.endUs / 1e6, 'x', true));
      if (!(b > a)) continue;
      ctx.fillStyle = GAP_FILL[g.reason] ?? GAP_FILL['recorder-stopped'];
      ctx.fillRect(a, top, Math.max(b - a, 1), height);
    }
    const head = this.charts.headUs;
    if (head !== null) {
      const x = u.valToPos(head / 1e6, 'x', true);
      ctx.fillStyle = HEAD_COLOR;
      if (x >= left && x <= left + width) {
        ctx.fillRect(Math.round(x) - 1, top, 2, height);
      } else {
        // Out of the window: an arrow at the edge it lies beyond, so the playhead is never lost.
        const edge = x < left ? left : left + width;
        const dir = x < left ? 1 : -1;
        const s = 7 * window.devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(edge, top + s);
        ctx.lineTo(edge + dir * s, top);
        ctx.lineTo(edge + dir * s, top + 2 * s);
        ctx.closePath();
        ctx.fill();
      }
    }
    ctx.restore();
  }

  /** Draws the series for the shared window `win` ([minS, maxS] or null for uPlot's own range). */
  draw(win) {
    if (this.plot) {
      const series = this.numeric.map((p) => this.charts.series.get(p));
      // The drawn data is redone only when a series or the gaps changed (not for a zoom or a pan).
      const key = `${this.plotShape}|${this.charts.gapsVersion}|${series.map((s) => s.version)}`;
      if (key !== this.dataKey) {
        this.dataKey = key;
        this.data = alignSeries(series.map((s) => s.broken(this.charts.spans)));
      }
      const data = this.data;
      this.plot.batch(() => {
        this.plot.setData(data, win === null);
        if (win !== null) this.plot.setScale('x', { min: win[0], max: win[1] });
      });
    }
    this.drawStates(win);
  }

  drawStates(win) {
    const statePaths = this.pathsOfKind('state');
    const left = this.plot ? this.plot.over.offsetLeft : AXIS_PX;
    const width = this.plot ? this.plot.over.clientWidth : Math.max(40, this.charts.panelWidth() - AXIS_PX);
    const rows = [...this.states.children];
    for (let i = rows.length; i > statePaths.length; i--) rows[i - 1].remove();
    statePaths.forEach((p, i) => {
      let row = this.states.children[i];
      if (!row) {
        row = el('div', 'state-track');
        row.append(el('span', 'state-label'), el('div', 'state-area'));
        this.states.append(row);
      }
      row.dataset.path = p;
      const label = row.firstChild;
      label.textContent = shownPath(p.slice(p.lastIndexOf('/') + 1));
      label.title = shownPath(p);
      label.style.width = `${left}px`;
      label.style.borderColor = this.colorOf(p);
      const area = row.lastChild;
      area.style.width = `${width}px`;
      const headS = this.charts.headUs === null ? null : this.charts.headUs / 1e6;
      const series = this.charts.series.get(p);
      // Redrawn only when what it shows changed: a paused page redraws charts, not bands.
      const key = `${p}|${win}|${width}|${headS}|${series?.tsUs.length}|${series?.tsUs[0]}|${series?.tsUs.at(-1)}|${this.charts.gapsVersion}`;
      if (row.drawnKey === key) return;
      row.drawnKey = key;
      renderStateTrack(area, series, win, this.charts.spans, headS, width);
      area.dataset.window = win === null ? '' : `${formatUs(win[0] * 1e6)} – ${formatUs(win[1] * 1e6)}`;
    });
  }

  resize() {
    this.plot?.setSize({ width: this.charts.panelWidth(), height: PLOT_HEIGHT_PX });
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
    this.box.remove();
  }
}
