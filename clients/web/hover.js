// The hover read-out of a panel: at the time under the pointer, for every path of the
// panel, the last recorded update at or before it (the state at that time, as
// GET /api/v1/state?at= answers) with its exact value text (values.js formatValue, the
// value table's text, never a rounded float) and its exact timestamp (formatUs); and, when
// the time lies in a recorder gap, the gap's reason and times.
import { formatValue, shownPath } from './values.js';
import { formatUs } from './time.js';

const REASONS = { 'recorder-crashed': 'recorder crashed', 'recorder-stopped': 'recorder stopped' };

/** The gap containing `tsUs`, or null. */
export function gapAt(gaps, tsUs) {
  return gaps.find((g) => g.startUs <= tsUs && (g.endUs === null || tsUs < g.endUs)) ?? null;
}

/** Fills `el` for time `tsUs`; `rows` are [{ path, color, series }]. */
export function renderReadout(el, tsUs, rows, gaps) {
  el.replaceChildren();
  el.dataset.us = String(tsUs);
  const head = document.createElement('div');
  head.className = 'hover-time';
  head.textContent = formatUs(tsUs);
  el.append(head);
  const gap = gapAt(gaps, tsUs);
  if (gap) {
    const g = document.createElement('div');
    g.className = 'hover-gap';
    g.dataset.reason = gap.reason;
    g.textContent = `gap: ${REASONS[gap.reason] ?? gap.reason}, ${formatUs(gap.startUs)} to ${gap.endUs === null ? 'now' : formatUs(gap.endUs)}; nothing recorded`;
    el.append(g);
  }
  for (const { path, color, series } of rows) {
    const row = document.createElement('div');
    row.className = 'hover-row';
    row.dataset.path = path;
    const sw = document.createElement('i');
    sw.className = 'sw';
    sw.style.background = color;
    const name = document.createElement('span');
    name.className = 'hover-path';
    name.textContent = shownPath(path);
    const value = document.createElement('span');
    value.className = 'hover-value';
    const at = document.createElement('span');
    at.className = 'hover-at';
    const i = series ? series.indexAt(tsUs) : -1;
    if (i < 0) {
      value.textContent = '—';
      row.dataset.tsUs = '';
    } else {
      value.textContent = formatValue(series.wire[i]);
      row.dataset.tsUs = String(series.tsUs[i]);
      row.dataset.json = JSON.stringify(series.wire[i]);
      at.textContent = formatUs(series.tsUs[i]);
    }
    row.append(sw, name, value, at);
    el.append(row);
  }
}
