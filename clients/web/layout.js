// The charts' layout as data, the one form the URL, named layouts on the server and
// Charts.getLayout/setLayout share:
//   { v: 1, panels: [{ paths: ["/a", "/b"] }, ...], zoom?: Zoom }
// where Zoom is { fromUs, toUs } (a fixed window) or { widthUs, at } (following the
// playhead with a window of widthUs, the playhead at fraction `at` of it); no zoom means
// following with the whole loaded range. Anything else is refused with a reason: unknown
// keys, wrong types, too many panels or paths (chart-limits.js), a path that is not a
// Tapedeck path, a path twice in one panel, a window that is empty or not integer µs.
// Pure: tested in Node.
import { CHART_LIMITS } from './chart-limits.js';

export const LAYOUT_VERSION = 1;

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const isUs = (x) => Number.isSafeInteger(x) && x >= 0;

function keysProblem(obj, allowed, where) {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) return `${where}: unknown key ${JSON.stringify(k.slice(0, 40))}`;
  return null;
}

function pathProblem(p, where) {
  if (typeof p !== 'string') return `${where}: not a string`;
  if (p.length > CHART_LIMITS.pathCharsMax) return `${where}: longer than ${CHART_LIMITS.pathCharsMax} characters`;
  if (!p.startsWith('/') || p.length < 2) return `${where}: a path starts with "/"`;
  return null;
}

function panelProblem(panel, where) {
  if (!isObject(panel)) return `${where}: not an object`;
  const keys = keysProblem(panel, ['paths'], where);
  if (keys) return keys;
  if (!Array.isArray(panel.paths)) return `${where}.paths: not an array`;
  if (panel.paths.length === 0) return `${where}.paths: empty`;
  if (panel.paths.length > CHART_LIMITS.pathsPerPanelMax) return `${where}.paths: more than ${CHART_LIMITS.pathsPerPanelMax} paths`;
  const seen = new Set();
  for (let i = 0; i < panel.paths.length; i++) {
    const problem = pathProblem(panel.paths[i], `${where}.paths[${i}]`);
    if (problem) return problem;
    if (seen.has(panel.paths[i])) return `${where}.paths[${i}]: twice in the panel`;
    seen.add(panel.paths[i]);
  }
  return null;
}

function zoomProblem(zoom) {
  if (!isObject(zoom)) return 'zoom: not an object';
  if ('fromUs' in zoom || 'toUs' in zoom) {
    const keys = keysProblem(zoom, ['fromUs', 'toUs'], 'zoom');
    if (keys) return keys;
    if (!isUs(zoom.fromUs) || !isUs(zoom.toUs)) return 'zoom: fromUs and toUs are integer epoch µs';
    if (zoom.toUs - zoom.fromUs < CHART_LIMITS.zoomWidthMinUs) return `zoom: narrower than ${CHART_LIMITS.zoomWidthMinUs} µs`;
    return null;
  }
  const keys = keysProblem(zoom, ['widthUs', 'at'], 'zoom');
  if (keys) return keys;
  if (!isUs(zoom.widthUs) || zoom.widthUs < CHART_LIMITS.zoomWidthMinUs) return `zoom.widthUs: an integer of at least ${CHART_LIMITS.zoomWidthMinUs} µs`;
  if (typeof zoom.at !== 'number' || !(zoom.at >= 0 && zoom.at <= 1)) return 'zoom.at: a number from 0 to 1';
  return null;
}

/** Why `layout` is not a layout this page takes, or null. Never throws. */
export function layoutProblem(layout) {
  try {
    return structureProblem(layout) ?? sizeProblem(layout);
  } catch {
    return 'not a plain object (a getter or proxy threw)';
  }
}

function structureProblem(layout) {
  if (!isObject(layout)) return 'not an object';
  const keys = keysProblem(layout, ['v', 'panels', 'zoom'], 'layout');
  if (keys) return keys;
  if (layout.v !== LAYOUT_VERSION) return `v: ${LAYOUT_VERSION} is the version this page reads`;
  if (!Array.isArray(layout.panels)) return 'panels: not an array';
  if (layout.panels.length > CHART_LIMITS.panelsMax) return `panels: more than ${CHART_LIMITS.panelsMax}`;
  for (let i = 0; i < layout.panels.length; i++) {
    const problem = panelProblem(layout.panels[i], `panels[${i}]`);
    if (problem) return problem;
  }
  return layout.zoom === undefined ? null : zoomProblem(layout.zoom);
}

/** Checked once the structure is: then every part is bounded, and the text is cheap to make. */
function sizeProblem(layout) {
  const chars = JSON.stringify(layout).length;
  return chars > CHART_LIMITS.layoutCharsMax ? `larger than ${CHART_LIMITS.layoutCharsMax} characters of JSON` : null;
}

/** A deep copy of a valid layout (so the caller's object is never kept or changed). */
export function copyLayout(layout) {
  const out = { v: LAYOUT_VERSION, panels: layout.panels.map((p) => ({ paths: [...p.paths] })) };
  if (layout.zoom !== undefined) out.zoom = { ...layout.zoom };
  return out;
}
