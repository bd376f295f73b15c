// The time window every panel shows (one shared x axis, in epoch seconds as uPlot's x
// scale). Three states:
//   follow, whole:  { follow: true }                the loaded range up to the playhead
//   follow, zoomed: { follow: true, widthS, at }    widthS wide, the playhead at fraction `at`
//   fixed:          { follow: false, minS, maxS }   where the user zoomed or panned to
// A zoom or pan that leaves the playhead inside the window keeps following (the window
// slides with it as it plays); one that puts it outside fixes the window. Double-click
// (reset) follows the whole range again. Pure: tested in Node.
import { CHART_LIMITS } from './chart-limits.js';

export const FOLLOW = Object.freeze({ follow: true });
const WIDTH_MIN_S = CHART_LIMITS.zoomWidthMinUs / 1e6;

/** [minS, maxS] the view shows given the data's [firstS, lastS] (null without data) and the playhead (null if unknown). */
export function windowOf(view, extent, headS) {
  if (!view.follow) return [view.minS, view.maxS];
  if (view.widthS !== undefined && headS !== null) return [headS - view.at * view.widthS, headS + (1 - view.at) * view.widthS];
  if (extent === null) return headS === null ? null : [headS - 1, headS + 1];
  const lo = Math.min(extent[0], headS ?? extent[0]);
  const hi = Math.max(extent[1], headS ?? extent[1]);
  return hi > lo ? [lo, hi] : [lo - 1, hi + 1];
}

/** The view after the user chose the window [minS, maxS] (a drag, a pan, a wheel zoom). */
export function viewFor(minS, maxS, headS) {
  if (!(maxS - minS >= WIDTH_MIN_S)) {
    const mid = (minS + maxS) / 2;
    minS = mid - WIDTH_MIN_S / 2;
    maxS = mid + WIDTH_MIN_S / 2;
  }
  if (headS !== null && headS >= minS && headS <= maxS) return { follow: true, widthS: maxS - minS, at: (headS - minS) / (maxS - minS) };
  return { follow: false, minS, maxS };
}

/** The window moved by `fraction` of its width (positive: later). */
export function panned(win, fraction, headS) {
  const d = (win[1] - win[0]) * fraction;
  return viewFor(win[0] + d, win[1] + d, headS);
}

/** The window scaled by `factor` (below 1 zooms in) about the time `aboutS`. */
export function zoomed(win, factor, aboutS, headS) {
  return viewFor(aboutS - (aboutS - win[0]) * factor, aboutS + (win[1] - aboutS) * factor, headS);
}

/** The view as the layout's `zoom` (integer µs), or undefined when following the whole range. */
export function zoomOfView(view) {
  if (view.follow && view.widthS === undefined) return undefined;
  if (view.follow) return { widthUs: Math.round(view.widthS * 1e6), at: view.at };
  return { fromUs: Math.round(view.minS * 1e6), toUs: Math.round(view.maxS * 1e6) };
}

/** A layout's (valid) `zoom` as a view. */
export function viewOfZoom(zoom) {
  if (zoom === undefined) return FOLLOW;
  if ('widthUs' in zoom) return { follow: true, widthS: zoom.widthUs / 1e6, at: zoom.at };
  return { follow: false, minS: zoom.fromUs / 1e6, maxS: zoom.toUs / 1e6 };
}
