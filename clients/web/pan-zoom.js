// The wheel and Shift-drag on a chart: they move the charts' shared time window (view.js)
// while the gesture runs, and say 'layoutchange' once it ends (the wheel: when it rests).
import { panned, zoomed } from './view.js';

/** Wheel pixels that pan the window by its whole width; Ctrl+wheel zooms by this factor per 100 px. */
const WHEEL_PAN_PX = 1000;
const WHEEL_ZOOM_FACTOR = 1.25;
/** A wheel gesture ends after this long without a wheel event. */
const WHEEL_SETTLE_MS = 300;

/** The wheel pans the window (Ctrl: zooms about the pointer); `u` is the uPlot under it. */
export function wheel(charts, ev, u) {
  if (!charts.window) return;
  ev.preventDefault();
  const delta = ev.deltaX !== 0 ? ev.deltaX : ev.deltaY;
  charts.view = ev.ctrlKey
    ? zoomed(charts.window, WHEEL_ZOOM_FACTOR ** (delta / 100), u.posToVal(ev.offsetX, 'x'), charts.headS())
    : panned(charts.window, delta / WHEEL_PAN_PX, charts.headS());
  charts.draw();
  clearTimeout(charts.wheelTimer);
  charts.wheelTimer = setTimeout(() => charts.changed(), WHEEL_SETTLE_MS);
}

/** Shift-drag from the mousedown `down` over the plot area `over`: the window follows the pointer until release. */
export function startPan(charts, down, over) {
  if (!charts.window) return;
  const from = charts.window;
  const widthPx = over.clientWidth;
  const move = (ev) => {
    charts.view = panned(from, -(ev.clientX - down.clientX) / widthPx, charts.headS());
    charts.draw();
  };
  const up = () => {
    window.removeEventListener('mousemove', move);
    window.removeEventListener('mouseup', up);
    charts.changed();
  };
  window.addEventListener('mousemove', move);
  window.addEventListener('mouseup', up);
}
