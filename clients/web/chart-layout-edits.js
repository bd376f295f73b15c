// The charts' layout edits (a mixin of Charts, charts.js): where a picked path goes
// (placement.js: the panel marked "pick here", a panel of its own, the shared state
// tracks), the series every panel's paths need, and the user's changes (a path dropped
// onto a panel or removed, a panel closed, the zoom), each said once as 'layoutchange'.
// Methods run with `this` a Charts.
import { CHART_LIMITS } from './chart-limits.js';
import { Panel } from './chart-panel.js';
import { fits, placeFor } from './placement.js';
import { kindOf, Series } from './series.js';
import { FOLLOW, viewFor } from './view.js';

export const layoutEdits = {
  // ---------------------------------------------------------------- placing paths

  inAnyPanel(path) {
    return this.panels.some((panel) => panel.paths.includes(path));
  },

  placePending(values, posUs) {
    for (const p of [...this.pending].sort()) if (kindOf(values.get(p)) !== null) this.placePath(p, values.get(p), posUs);
    this.syncSeries(posUs);
    this.renderPanels();
  },

  /** A picked path with its first known value (placement.js); past panelsMax it shows in the value table only. */
  placePath(path, wire, posUs = null) {
    this.pending.delete(path);
    const kind = kindOf(wire);
    const where = placeFor(this.panels.map((p) => p.paths), this.panels.indexOf(this.target), path, kind, this.kindOfPath, this.unitFor);
    if (where === null) return;
    this.ensureSeries(path, wire, posUs);
    if ('join' in where) this.panels[where.join].paths.push(path);
    else this.panels.splice(where.insertAt, 0, new Panel(this, [path]));
  },

  /** A series for `path`, seeded with `wire` at the position; its history is asked with the others new in this turn. */
  ensureSeries(path, wire, posUs = null) {
    if (this.series.has(path)) return;
    const s = new Series(path);
    s.kind = kindOf(wire);
    const at = posUs ?? this.headUs;
    if (at !== null && wire !== undefined) s.push(at, wire);
    this.series.set(path, s);
    this.unloaded.add(path);
  },

  /** Series for every path of a panel, none for a path of no panel. */
  syncSeries(posUs = null) {
    const wanted = new Set(this.panels.flatMap((panel) => panel.paths));
    for (const p of wanted) this.ensureSeries(p, this.values.get(p), posUs);
    for (const p of [...this.series.keys()]) if (!wanted.has(p)) this.series.delete(p);
  },

  // ---------------------------------------------------------------- the user's changes

  /** A path dropped on `panel` (null: a new panel). */
  dropInto(panel, path) {
    this.pending.delete(path);
    const wire = this.values.get(path);
    const kind = this.series.get(path)?.kind ?? kindOf(wire);
    if (panel === null && this.panels.length < CHART_LIMITS.panelsMax) {
      this.panels.push(new Panel(this, [path]));
    } else if (panel !== null && fits(panel.paths, path, kind, this.kindOfPath, this.unitFor)) {
      panel.paths.push(path);
    } else {
      return this.note(panel ?? this.dropZone, `${path}: not added (${panel ? 'the panel is full or has no axis left for its unit' : `${CHART_LIMITS.panelsMax} panels at most`})`);
    }
    this.ensureSeries(path, wire);
    this.renderPanels();
    this.changed();
  },

  removeFromPanel(panel, path) {
    this.dropPath(panel, path);
    this.syncSeries();
    this.renderPanels();
    this.changed();
  },

  dropPath(panel, path) {
    panel.paths = panel.paths.filter((p) => p !== path);
    if (panel.paths.length === 0) this.closePanel(panel, false);
  },

  closePanel(panel, fromUser = true) {
    panel.destroy();
    this.panels = this.panels.filter((p) => p !== panel);
    if (this.target === panel) this.target = null;
    if (!fromUser) return;
    this.syncSeries();
    this.renderPanels();
    this.changed();
  },

  toggleTarget(panel) {
    this.target = this.target === panel ? null : panel;
    for (const p of this.panels) p.pickBtn.setAttribute('aria-pressed', String(p === this.target));
  },

  /** Says on a panel (or the drop zone) why a drop was refused, until the layout next changes. */
  note(target, text) {
    const el = target.box ?? target;
    el.dataset.note = text;
    el.title = text;
  },

  clearNotes() {
    for (const el of [this.dropZone, ...this.panels.map((p) => p.box)]) {
      if (el.dataset.note === undefined) continue;
      delete el.dataset.note;
      el.removeAttribute('title');
    }
  },

  userZoom(minS, maxS) {
    this.setView(viewFor(Math.min(minS, maxS), Math.max(minS, maxS), this.headS()));
  },

  resetView() {
    this.setView(FOLLOW);
  },

  setView(view) {
    this.view = view;
    this.draw();
    this.changed();
  },

  headS() {
    return this.headUs === null ? null : this.headUs / 1e6;
  },

  /** Says 'layoutchange' when the layout differs from what was last said or set. */
  changed() {
    const text = JSON.stringify(this.getLayout());
    if (text === this.shownLayout) return;
    this.layoutNote.hidden = true;
    this.clearNotes();
    this.shownLayout = text;
    this.el.dispatchEvent(new CustomEvent('layoutchange', { detail: JSON.parse(text) }));
  },
};
