// A non-numeric path (string, boolean, object, bytes) as a state track: one coloured band
// per run of the same recorded value, the value's text inside when it fits, under the
// panel's numeric chart and on its time axis. A band ends at the next change, at the start
// of a recorder gap it runs into (nothing is known inside), or at the playhead for the last
// value. Bands narrower than a pixel are merged into their neighbour so a flapping value
// costs at most a band per pixel (and stateBandsMax in all).
import { CHART_LIMITS } from './chart-limits.js';
import { formatValue, shownPath } from './values.js';
import { formatUs } from './time.js';

/** A stable colour for a value's text: the same value is the same colour in every track. */
export function bandColor(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return `hsl(${(h >>> 0) % 360} 55% 78%)`;
}

/**
 * The runs of `series` inside [minS, maxS]: [{ fromS, toS, i }] with `i` the index of the
 * update that starts the run. `spans` are the gaps [startS, endS], sorted; `headS` ends the last run.
 */
export function stateRuns(series, spans, minS, maxS, headS) {
  const runs = [];
  const n = series.tsUs.length;
  const gapFrom = (a, b) => spans.find(([s]) => s >= a && s < b); // the first gap starting in [a, b)
  for (let i = 0; i < n; i++) {
    const start = i;
    const fromS = series.xs[i];
    const text = JSON.stringify(series.wire[i]);
    // A run goes on over equal values, but not across a gap: after one, the value is new evidence.
    let j = i + 1;
    while (j < n && JSON.stringify(series.wire[j]) === text && !gapFrom(series.xs[j - 1], series.xs[j])) j++;
    let toS = j < n ? series.xs[j] : Math.max(headS ?? fromS, fromS);
    const cut = gapFrom(fromS, toS);
    if (cut) toS = cut[0];
    if (spans.some(([s, e]) => s < fromS && e > fromS)) toS = fromS; // the update itself lies in a gap
    i = j - 1;
    if (toS < minS || fromS > maxS) continue;
    runs.push({ fromS, toS, i: start });
  }
  return runs;
}

/** Renders the bands of `series` into `el` for the window `win` ([minS, maxS]) over `widthPx`. */
export function renderStateTrack(el, series, win, spans, headS, widthPx) {
  el.replaceChildren();
  if (win === null || !series) return;
  const [minS, maxS] = win;
  const scale = widthPx / (maxS - minS);
  let drawnToPx = -Infinity;
  let drawn = 0;
  for (const run of stateRuns(series, spans, minS, maxS, headS)) {
    const left = (Math.max(run.fromS, minS) - minS) * scale;
    const right = (Math.min(run.toS, maxS) - minS) * scale;
    if (right < drawnToPx + 1) continue; // adds less than a pixel to the band before: merged into it
    if (drawn >= CHART_LIMITS.stateBandsMax) break;
    const wire = series.wire[run.i];
    const text = formatValue(wire);
    const band = document.createElement('div');
    band.className = 'band';
    band.style.left = `${left}px`;
    band.style.width = `${Math.max(right - left, 1)}px`;
    band.style.background = bandColor(text);
    band.dataset.tsUs = String(series.tsUs[run.i]);
    band.dataset.json = JSON.stringify(wire);
    band.title = `${shownPath(series.path)} = ${text}\nfrom ${formatUs(series.tsUs[run.i])}`;
    band.textContent = text;
    el.append(band);
    drawnToPx = Math.max(right, left + 1);
    drawn++;
  }
}
