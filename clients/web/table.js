// The values of the selected paths, one row each, updated in place: a changed cell flashes.
// Updates are collected and written once per animation frame, so playing at unlimited speed
// costs one DOM pass per frame however many batches arrive.
import { formatClock } from './time.js';
import { formatValue, shownPath } from './values.js';

export class ValueTable {
  constructor(tbody, emptyEl) {
    this.tbody = tbody;
    this.emptyEl = emptyEl;
    this.rows = new Map();  // path -> { tr, valueTd, changedTd, json }
    this.dirty = new Map(); // path -> { value, ts }
    this.frame = 0;
  }

  setPaths(paths, values) {
    const keep = new Set(paths);
    for (const [p, row] of this.rows) if (!keep.has(p)) { row.tr.remove(); this.rows.delete(p); }
    for (const p of [...paths].sort()) {
      let row = this.rows.get(p);
      if (!row) {
        const tr = document.createElement('tr');
        tr.dataset.path = p;
        const th = document.createElement('th');
        th.scope = 'row';
        th.textContent = shownPath(p);
        const valueTd = document.createElement('td');
        valueTd.className = 'v';
        const changedTd = document.createElement('td');
        changedTd.className = 't';
        tr.append(th, valueTd, changedTd);
        row = { tr, valueTd, changedTd, json: undefined };
        this.rows.set(p, row);
        this.write(row, values.has(p) ? values.get(p) : null, null, false);
      }
      this.tbody.append(row.tr);
    }
    this.emptyEl.hidden = this.rows.size > 0;
  }

  /** A value arrived; `ts` is the batch time (null for a state frame). */
  update(path, value, ts) {
    if (this.rows.has(path)) {
      this.dirty.set(path, { value, ts });
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frame = 0;
    const flashed = [];
    for (const [p, { value, ts }] of this.dirty) {
      const row = this.rows.get(p);
      if (row && this.write(row, value, ts, true)) flashed.push(row.valueTd);
    }
    this.dirty.clear();
    if (flashed.length === 0) return;
    for (const td of flashed) td.classList.remove('flash');
    void this.tbody.offsetWidth; // restart the animation on cells that were still flashing
    for (const td of flashed) td.classList.add('flash');
  }

  write(row, value, ts, flash) {
    const json = JSON.stringify(value ?? null);
    if (ts !== null) row.changedTd.textContent = formatClock(ts);
    if (json === row.json) return false;
    const first = row.json === undefined;
    row.json = json;
    row.valueTd.dataset.json = json;
    row.valueTd.textContent = formatValue(value);
    row.valueTd.classList.toggle('null', value === null || value === undefined);
    if (ts === null) row.changedTd.textContent = '';
    return flash && !first;
  }
}
