// "What changed" between two moments: GET /api/v1/diff for the selected range (the start
// and end markers; an unset start is the archive's beginning, an unset end the position),
// shown as one row per changed path: value at start and at end, changes, first and last
// change, min and max, and whether the path appeared or disappeared. Every column sorts
// (click its header; again to reverse); a click on a row jumps to the path's first change.
import { apiFetch } from './http.js';
import { errorText } from './bookmarks.js';
import { formatClock, formatUs } from './time.js';
import { formatValue, shownPath } from './values.js';

/** Rows drawn at once; the answer may list 10 000 (diffPathsListedMax): sort to see others. */
export const DIFF_ROWS_SHOWN_MAX = 1000;

const COLUMNS = [
  { key: 'path', label: 'Path' },
  { key: 'start', label: 'At start' },
  { key: 'end', label: 'At end' },
  { key: 'changes', label: 'Changes' },
  { key: 'firstTs', label: 'First change' },
  { key: 'lastTs', label: 'Last change' },
  { key: 'min', label: 'Min' },
  { key: 'max', label: 'Max' },
  { key: 'presence', label: 'Presence' },
];

/** Sort key of a wire value: numbers as numbers, anything else by its JSON text; no value sorts first. */
function valueKey(v) {
  if (v === undefined) return [0, 0];
  if (typeof v === 'number') return [1, v];
  return [2, JSON.stringify(v)];
}

function compare(a, b, key) {
  if (key === 'path' || key === 'presence') return a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0;
  if (key === 'changes' || key === 'firstTs' || key === 'lastTs') return a[key] - b[key];
  const [ka, va] = valueKey(a[key]);
  const [kb, vb] = valueKey(b[key]);
  if (ka !== kb) return ka - kb;
  return va < vb ? -1 : va > vb ? 1 : 0;
}

export class DiffPanel {
  /** els: { table, summary, run, range }; hooks: { range() -> { startUs, endUs } | null, globs() -> string[], jump(us), error(text) }. */
  constructor(base, els, hooks) {
    this.base = base;
    this.els = els;
    this.hooks = hooks;
    this.rows = [];
    this.sort = { key: 'path', dir: 1 };
    this.asked = 0;
    els.run.onclick = () => this.run();
    const tr = document.createElement('tr');
    for (const c of COLUMNS) {
      const th = document.createElement('th');
      th.scope = 'col';
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = c.label;
      b.dataset.key = c.key;
      b.onclick = () => this.sortBy(c.key);
      th.append(b);
      tr.append(th);
    }
    els.table.tHead.replaceChildren(tr);
  }

  /** The diff URL for a range, or null without one. */
  url(r) {
    if (r === null) return null;
    const q = new URLSearchParams({ start: String(r.startUs), end: String(r.endUs) });
    for (const g of this.hooks.globs()) q.append('glob', g);
    return `${this.base}/api/v1/diff?${q}`;
  }

  /** Asks for `r` ({ startUs, endUs }; default the range selected now) and shows the answer. */
  async run(r = this.hooks.range()) {
    const url = this.url(r);
    if (url === null) return this.hooks.error('what changed: set a start marker, or wait for a position');
    this.els.range.textContent = `${formatUs(r.startUs)} → ${formatUs(r.endUs)}`;
    this.els.summary.textContent = 'asking…';
    const asked = ++this.asked;
    try {
      const res = await apiFetch(url);
      if (!res.ok) throw new Error(await errorText(res));
      const answer = await res.json();
      if (asked !== this.asked) return; // a newer question is on its way
      this.show(answer);
    } catch (err) {
      if (asked !== this.asked) return;
      this.els.summary.textContent = '';
      this.hooks.error(`what changed: ${err.message}`);
    }
  }

  show(answer) {
    const appeared = new Set(answer.appeared);
    const disappeared = new Set(answer.disappeared);
    this.rows = answer.paths.map((p) => ({ ...p, presence: appeared.has(p.path) ? 'appeared' : disappeared.has(p.path) ? 'disappeared' : '' }));
    const c = answer.counts;
    this.els.summary.textContent = `${c.changed} changed (${c.appeared} appeared, ${c.disappeared} disappeared), ${c.unchanged} unchanged`
      + (answer.truncated ? `; lists cut at ${answer.paths.length}: narrow the filter` : '')
      + (answer.warning ? `; ${answer.warning.message}` : '');
    this.render();
  }

  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.render();
  }

  render() {
    const { key, dir } = this.sort;
    // Ties by path, so the order is total and the same in every browser.
    const sorted = [...this.rows].sort((a, b) => dir * compare(a, b, key) || compare(a, b, 'path'));
    for (const b of this.els.table.tHead.querySelectorAll('button')) {
      const th = b.parentElement;
      th.setAttribute('aria-sort', b.dataset.key === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    const shown = sorted.slice(0, DIFF_ROWS_SHOWN_MAX);
    this.els.table.tBodies[0].replaceChildren(...shown.map((r) => this.row(r)));
    this.els.table.hidden = this.rows.length === 0;
    if (sorted.length > shown.length) this.els.summary.textContent += ` · showing ${shown.length} of ${sorted.length}`;
  }

  row(r) {
    const tr = document.createElement('tr');
    tr.dataset.path = r.path;
    tr.dataset.firstTs = String(r.firstTs);
    tr.tabIndex = 0;
    tr.title = `Jump to the first change of ${shownPath(r.path)} (${formatUs(r.firstTs)})`;
    const cell = (text, cls, json) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      if (json !== undefined) td.dataset.json = json;
      tr.append(td);
    };
    const value = (v) => cell(v === undefined ? '—' : formatValue(v), v === undefined ? 'v none' : 'v', v === undefined ? '' : JSON.stringify(v));
    cell(shownPath(r.path), 'p');
    value(r.start);
    value(r.end);
    cell(String(r.changes), 'n');
    // Clock times keep the rows narrow; the whole time is on hover.
    cell(formatClock(r.firstTs), 't');
    tr.lastChild.title = formatUs(r.firstTs);
    cell(formatClock(r.lastTs), 't');
    tr.lastChild.title = formatUs(r.lastTs);
    value(r.min);
    value(r.max);
    cell(r.presence, `presence ${r.presence}`);
    const jump = () => this.hooks.jump(r.firstTs);
    tr.onclick = jump;
    tr.onkeydown = (ev) => { if (ev.key === 'Enter') jump(); };
    return tr;
  }
}
