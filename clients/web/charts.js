// The charts: a layout of panels (chart-panel.js) on one shared time axis. Paths picked in
// the tree join the panel marked "pick here", else each numeric one gets a panel of its own
// and the non-numeric ones share a panel of state tracks; a path dragged from the tree onto
// a panel joins that panel, onto the drop zone after the panels a new one. After a seek the
// series restart from the state frame plus the recorded history of the ten minutes before
// the position (GET /api/v1/history); while playing, batches append. Recorder gaps (the
// session's coverage frames) are shaded and never bridged. Drag zooms the time axis, the
// wheel or Shift-drag pans it, Ctrl+wheel zooms about the pointer, double-click follows the
// playhead again (view.js). The layout is data (layout.js): getLayout/setLayout, and a
// 'layoutchange' event on the container whenever the user changes it.
import { CHART_LIMITS } from './chart-limits.js';
import { layoutEdits } from './chart-layout-edits.js';
import { Panel } from './chart-panel.js';
import { gapSpans } from './gaps.js';
import { copyLayout, layoutProblem, LAYOUT_VERSION } from './layout.js';
import { loadHistory } from './history.js';
import { kindOf } from './series.js';
import { pathOfDrag } from './tree.js';
import { unitOf } from './units.js';
import { FOLLOW, viewOfZoom, windowOf, zoomOfView } from './view.js';

export const CHARTS_MAX = CHART_LIMITS.panelsMax;

export class Charts {
  constructor(container, base) {
    this.el = container;
    this.base = base;
    this.panels = [];
    this.series = new Map();   // path -> Series, for every path of any panel
    this.unloaded = new Set(); // paths whose series is new: their history is asked at the next render
    this.units = new Map();    // path -> unit from metadata (setUnits)
    this.selected = new Set(); // the tree's selection as last given to setPaths
    this.pending = new Set();  // picked paths without a value yet: placed once one arrives
    this.values = new Map();   // the latest values map the app gave (seeds new series)
    this.target = null;        // the panel picked paths join
    this.view = FOLLOW;
    this.window = null;        // [minS, maxS] drawn last
    this.headUs = null;
    this.gaps = [];
    this.spans = [];
    this.gapsVersion = 0;      // counts setGaps calls (what is drawn of the gaps may have changed)
    this.generation = 0;
    this.frame = 0;
    this.syncKey = `tapedeck-charts-${Math.random().toString(36).slice(2)}`;
    this.shownLayout = JSON.stringify(this.getLayout());
    this.layoutNote = document.createElement('p');
    this.layoutNote.className = 'layout-note';
    this.layoutNote.setAttribute('role', 'status');
    this.layoutNote.hidden = true;
    this.dropZone = document.createElement('div');
    this.dropZone.className = 'panel-drop';
    this.dropZone.textContent = 'Drop a path here for a new panel';
    this.listen();
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
  }

  listen() {
    this.dropZone.addEventListener('dragover', (ev) => { if (pathOfDrag(ev)) ev.preventDefault(); });
    this.dropZone.addEventListener('drop', (ev) => {
      const path = pathOfDrag(ev);
      if (!path) return;
      ev.preventDefault();
      this.dropInto(null, path);
    });
    // The drop zone shows only while a path is dragged (over the page).
    document.addEventListener('dragstart', (ev) => { if (pathOfDrag(ev)) this.el.classList.add('dragging'); });
    document.addEventListener('dragend', () => this.el.classList.remove('dragging'));
  }

  // ---------------------------------------------------------------- the app's API

  /**
   * The tree's selection: newly picked paths are placed, unpicked ones leave every panel.
   * A selection given in the same turn as setLayout is taken as it is (a page opened from
   * a link sets the layout, then the selection: the layout says what is charted, exactly).
   */
  setPaths(paths, values, posUs) {
    this.values = values;
    const now = new Set(paths);
    const added = this.layoutJustSet ? [] : [...now].filter((p) => !this.selected.has(p)).sort();
    this.layoutJustSet = false;
    const removed = [...this.selected].filter((p) => !now.has(p));
    this.selected = now;
    for (const p of removed) {
      this.pending.delete(p);
      for (const panel of [...this.panels]) if (panel.paths.includes(p)) this.dropPath(panel, p);
    }
    for (const p of added) if (!this.inAnyPanel(p)) this.pending.add(p);
    this.placePending(values, posUs);
    this.changed();
  }

  /** A seek: every series restarts from the state at `ts`, then history before it is loaded. */
  reset(ts, values) {
    this.generation++;
    this.values = values;
    this.headUs = ts;
    this.placePending(values, null);
    for (const [p, s] of this.series) {
      s.clear();
      if (ts !== null && values.has(p)) s.push(ts, values.get(p));
    }
    if (ts !== null && this.series.size > 0) this.history([...this.series.keys()], ts);
    this.unloaded.clear();
    this.renderPanels();
    this.changed();
  }

  append(ts, updates) {
    this.headUs = ts;
    let placed = false;
    for (const [p, v] of updates) {
      if (this.pending.has(p) && kindOf(v) !== null) {
        this.placePath(p, v); // its series (if it found a panel) starts with this update
        placed = true;
        continue;
      }
      const s = this.series.get(p);
      if (!s) continue;
      const kind = s.kind;
      s.push(ts, v);
      if (s.kind !== kind) placed = true; // its first value other than null: its panel draws it now
    }
    if (placed) { this.renderPanels(); this.changed(); }
    this.schedule();
  }

  /** From a `coverage` frame: the recorder gaps of the session's range. */
  setGaps(gaps) {
    this.gaps = gaps.slice(-CHART_LIMITS.gapsMax);
    this.spans = gapSpans(this.gaps);
    this.gapsVersion++;
    this.schedule();
  }

  /** The playhead when it moved without a batch (a `controls` frame); optional. */
  setPosition(us) {
    if (us === null || us === this.headUs) return;
    this.headUs = us;
    this.schedule();
  }

  /** Units from path metadata (path -> unit), when the archive carries them; they win over the suffix rule. */
  setUnits(units) {
    this.units = new Map(units);
    this.renderPanels();
  }

  /** The layout as JSON-able data (layout.js). */
  getLayout() {
    const layout = { v: LAYOUT_VERSION, panels: this.panels.map((p) => ({ paths: [...p.paths] })) };
    const zoom = zoomOfView(this.view);
    if (zoom !== undefined) layout.zoom = zoom;
    return layout;
  }

  /**
   * Replaces the layout and returns null; a layout that layout.js refuses changes nothing
   * and its reason is returned and shown over the charts (never thrown: a bad layout in a
   * URL must not stop the page). No 'layoutchange'.
   */
  setLayout(layout) {
    const problem = layoutProblem(layout);
    this.layoutNote.hidden = problem === null;
    this.layoutNote.textContent = problem === null ? '' : `Layout not applied: ${problem}`;
    if (problem !== null) return problem;
    const next = copyLayout(layout);
    for (const panel of this.panels) panel.destroy();
    this.panels = [];
    this.target = null;
    for (const { paths } of next.panels) {
      for (const p of paths) this.pending.delete(p);
      this.panels.push(new Panel(this, paths));
    }
    this.view = viewOfZoom(next.zoom);
    this.syncSeries();
    this.renderPanels();
    this.shownLayout = JSON.stringify(this.getLayout());
    // Only a selection given in the same turn (the page's start) is taken as it is.
    this.layoutJustSet = true;
    Promise.resolve().then(() => { this.layoutJustSet = false; });
    return null;
  }

  kindOfPath = (path) => this.series.get(path)?.kind ?? null;

  unitFor = (path) => unitOf(path, this.units.get(path));

  // ---------------------------------------------------------------- drawing

  /** Loads the history of `paths` before `ts` (historyWindowUs, or from `fromUs`) into their series. */
  history(paths, ts, fromUs = ts - CHART_LIMITS.historyWindowUs) {
    const generation = this.generation;
    loadHistory(this.base, paths, fromUs, ts).then((got) => {
      if (got === null || generation !== this.generation) return; // a newer seek restarted the series
      for (const [p, h] of got) {
        const s = this.series.get(p);
        if (s) s.prepend(h.tsUs, h.wire);
      }
      this.renderPanels();
    }).catch((err) => {
      // An error answer (its code) or a malformed one: the charts keep what they have and say so.
      if (generation !== this.generation) return;
      this.layoutNote.hidden = false;
      this.layoutNote.textContent = `History not loaded: ${err.message}`;
    });
  }

  /** Puts the panels in the container in layout order and rebuilds what changed. */
  renderPanels() {
    if (this.unloaded.size > 0) {
      if (this.headUs !== null) this.history([...this.unloaded], this.headUs);
      this.unloaded.clear();
    }
    this.el.append(this.layoutNote);
    for (const panel of this.panels) {
      panel.render();
      this.el.append(panel.box);
    }
    this.el.append(this.dropZone);
    this.schedule();
  }

  panelWidth() {
    const w = this.el.clientWidth || 600;
    return Math.max(240, w >= 800 ? Math.floor((w - 10) / 2) - 14 : w - 14);
  }

  fit() {
    for (const panel of this.panels) panel.resize();
    this.schedule();
  }

  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series.values()) {
      if (s.xs.length === 0) continue;
      lo = Math.min(lo, s.xs[0]);
      hi = Math.max(hi, s.xs[s.xs.length - 1]);
    }
    return lo <= hi ? [lo, hi] : null;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const extent = this.extent();
    this.window = windowOf(this.view, extent, this.headS());
    for (const panel of this.panels) panel.draw(this.window);
    if (extent !== null && this.window !== null && this.window[0] < extent[0]) this.loadBefore();
  }

  /**
   * The window starts before the loaded points (panned or zoomed back): load the history
   * up to windowFetchSpanMaxUs before them, once per start and seek (a series keeps at most
   * pointsPerSeriesMax, so this reaches back as far as that leaves room for).
   */
  loadBefore() {
    // Up to the latest first point of a series: each series keeps only what is older than its own.
    let firstUs = -Infinity;
    for (const s of this.series.values()) if (s.tsUs.length > 0) firstUs = Math.max(firstUs, s.tsUs[0]);
    const fromUs = Math.max(Math.round(this.window[0] * 1e6), firstUs - CHART_LIMITS.windowFetchSpanMaxUs);
    if (this.askedBefore?.generation === this.generation && this.askedBefore.firstUs <= firstUs) return;
    this.askedBefore = { generation: this.generation, firstUs };
    this.history([...this.series.keys()], firstUs, fromUs);
  }

  /**
   * path -> { plot: { data: [xs, ys] } }: each numeric series as drawn (broken at gaps),
   * the shape the page's tests read (web.test.ts, web-coverage.test.ts).
   */
  get charts() {
    const out = new Map();
    for (const panel of this.panels) {
      for (const p of panel.pathsOfKind('number')) out.set(p, { plot: { data: this.series.get(p).broken(this.spans) } });
    }
    return out;
  }
}

Object.assign(Charts.prototype, layoutEdits);
