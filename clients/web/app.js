// The web player: wires the session (session.js), the timeline, the transport, the path
// tree, the value table, the charts and the workspace (bookmarks, named layouts, "what
// changed"). The URL follows what is on screen and reopens it (url-state.js); the keys and
// their help come from one table (keys.js).
import { PlayerSession } from './session.js';
import { Timeline } from './timeline.js';
import { PathTree } from './tree.js';
import { ValueTable } from './table.js';
import { Charts } from './charts.js';
import { MINUTE_US, HOUR_US } from './time.js';
import { initToken } from './http.js';
import { filterGlob } from './values.js';
import { readUrlState, urlQuery, UrlWriter, boundUs } from './url-state.js';
import { bindKeys, keyTable, renderHelp } from './keys.js';
import { Bookmarks } from './bookmarks.js';
import { NamedLayouts } from './named-layouts.js';
import { DiffPanel } from './diff-panel.js';
import { Exporter } from './export.js';
import { renderStatus as drawStatus, showBanner, hideBanner } from './status.js';
import { followSession } from './frame-apply.js';
import { ArchiveInfo } from './archive-info.js';
import { GapNotice } from './gap-notice.js';
import { initTopology } from './topology.js';

const ARCHIVE_REFRESH_MS = 5000;
const SELECTED_MAX = 500;
/** Batches one burst (key b) plays at once. */
const BURST_BATCHES = 10;
const SELECT_KEY = 'tapedeck.selected';

const $ = (id) => document.getElementById(id);
const base = location.origin;
const params = new URLSearchParams(location.search);
initToken(params);
const initial = readUrlState(params);

const model = {
  values: new Map(),      // path -> wire value at the position
  selected: new Set(),
  controls: null,
  posUs: null,
  conn: 'connecting',     // connecting | open | reconnecting | replaced | closed | error
  buffering: null,        // the info frame while a cold file is fetched
  ended: false,
  error: null,            // { code, message } from the server
  layout: initial.layout, // kept as given until the charts can say theirs (charts.getLayout)
};

const session = new PlayerSession(base, { filter: initial.filter });
const timeline = new Timeline($('timeline'), {
  onSeek: (us) => control({ pos: us }),
  onMark: (which, us) => control({ [which]: us }),
  onRange: (startUs, endUs) => {
    control({ start: startUs, end: endUs });
    showDiff({ startUs, endUs });
  },
});
const gapNotice = new GapNotice($('gap-notice'));
const table = new ValueTable($('values').tBodies[0], $('values-empty'));
const charts = new Charts($('charts'), base);
const tree = new PathTree($('tree'), $('tree-count'), { onToggle: toggleSelection });
const renderStatus = () => drawStatus(model);
const urlWriter = new UrlWriter(urlStateNow);
const exporter = new Exporter({
  formatEl: $('export-format'),
  globEl: $('glob'),
  sessionFilter: () => session.filter ?? [],
  controls: () => model.controls,
  error: (t) => showBanner(t),
});
const bookmarks = new Bookmarks(base, { list: $('bm-list'), form: $('bm-form'), note: $('bm-note'), when: $('bm-when'), count: $('bm-count') }, {
  timeline,
  jump: (b) => control({ pos: b.ts }),
  error: (t) => showBanner(t),
  moment: () => (model.posUs === null ? null : { posUs: model.posUs, endUs: boundUs(model.controls?.end), url: urlQuery(urlStateNow() ?? {}) }),
});
const layouts = new NamedLayouts(base, { select: $('layout-select'), name: $('layout-name'), save: $('btn-layout-save'), load: $('btn-layout-load'), remove: $('btn-layout-delete') }, {
  get: currentLayout,
  set: applyLayout,
  error: (t) => showBanner(t),
});
const diff = new DiffPanel(base, { table: $('diff-table'), summary: $('diff-summary'), run: $('btn-diff'), range: $('diff-range') }, {
  range: diffRange,
  globs: viewGlobs,
  jump: (us) => control({ pos: us }),
  error: (t) => showBanner(t),
});
window.tapedeck = { session, model, timeline, charts, bookmarks, diff, exportUrl: () => exporter.url(), urlState: urlStateNow };
initTopology(session, $('topology-panel'));

// ------------------------------------------------------------------ controls

function control(set) {
  model.error = null;
  hideBanner();
  session.send(set);
  renderStatus();
}

function togglePlay() {
  const s = model.controls?.state;
  control({ state: s === 'play' || s === 'tail' ? 'pause' : 'play' });
}

function jump(deltaUs) {
  if (model.posUs === null) return control({ pos: deltaUs < 0 ? 'beginning' : 'end' });
  control({ pos: Math.max(0, Math.round(model.posUs + deltaUs)) });
}

function speedStep(dir) {
  const sel = $('speed');
  const i = Math.min(sel.options.length - 1, Math.max(0, sel.selectedIndex + dir));
  if (i !== sel.selectedIndex) { sel.selectedIndex = i; setSpeed(sel.value); }
}

function setSpeed(v) {
  control({ speed: v === 'unlimited' ? 'unlimited' : Number(v) });
}

function mark(which) {
  if (which === 'clear') return control({ start: 'unbounded', end: 'unbounded' });
  if (model.posUs !== null) control({ [which]: model.posUs });
}

/** Play-next and burst are actions (docs/playback.md): not kept for a socket that is not open, so say so. */
function playNext() {
  if (!session.playNext()) showBanner('play next: not connected', 'info');
}

function burst() {
  if (!session.burst(BURST_BATCHES)) showBanner('burst: not connected', 'info');
}

/** Opens the "what changed" panel on `range` (default: the markers). */
function showDiff(range) {
  $('diff-panel').open = true;
  $('diff-panel').scrollIntoView({ block: 'nearest' });
  diff.run(range);
}

function startBookmark() {
  $('bm-panel').open = true;
  bookmarks.startAdd();
}

async function copyLink() {
  urlWriter.flush();
  try {
    await window.navigator.clipboard.writeText(location.href);
    showBanner('link to this moment copied', 'info');
  } catch {
    showBanner(`link to this moment: ${location.href}`, 'info');
  }
}

const actions = {
  burstBatches: BURST_BATCHES,
  togglePlay,
  step: (n) => control({ pos: n < 0 ? '-1' : '+1' }),
  playNext,
  burst,
  jumpMinutes: (n) => jump(n * MINUTE_US),
  jumpHours: (n) => jump(n * HOUR_US),
  seekEdge: (edge) => control({ pos: edge }),
  speedStep,
  unlimited: () => { $('speed').value = 'unlimited'; setSpeed('unlimited'); },
  live: () => control({ state: 'tail' }),
  toggleLoop: () => control({ loop: !(model.controls?.loop ?? false) }),
  mark,
  whatChanged: () => showDiff(),
  bookmark: startBookmark,
  bookmarkJump: (dir) => {
    const b = bookmarks.neighbour(model.posUs, dir);
    if (b) control({ pos: b.ts });
  },
  copyLink: () => void copyLink(),
  focusFilter: () => $('glob').focus(),
  help: () => $('help').showModal(),
};
const KEYS = keyTable(actions);
bindKeys(document, KEYS, () => $('help').open);
renderHelp($('help-keys'), KEYS);

$('btn-beginning').onclick = () => control({ pos: 'beginning' });
$('btn-back-hour').onclick = () => jump(-HOUR_US);
$('btn-back-min').onclick = () => jump(-MINUTE_US);
$('btn-step-back').onclick = () => control({ pos: '-1' });
$('btn-play').onclick = togglePlay;
$('btn-step-fwd').onclick = () => control({ pos: '+1' });
$('btn-fwd-min').onclick = () => jump(MINUTE_US);
$('btn-fwd-hour').onclick = () => jump(HOUR_US);
$('btn-live').onclick = actions.live;
$('btn-loop').onclick = actions.toggleLoop;
$('speed').onchange = (ev) => setSpeed(ev.target.value);
$('btn-mark-start').onclick = () => mark('start');
$('btn-mark-end').onclick = () => mark('end');
$('btn-mark-clear').onclick = () => mark('clear');
$('btn-help').onclick = actions.help;
$('btn-bookmark').onclick = startBookmark;
$('btn-copy-link').onclick = actions.copyLink;
$('banner').onclick = hideBanner;
$('btn-export').addEventListener('click', () => {
  exporter.download().catch((err) => showBanner(`export: ${err.message}`));
});

// ------------------------------------------------------------------ URL state, layout, range

/** What the URL holds now (null until the server has said the controls). */
function urlStateNow() {
  const c = model.controls;
  if (!c) return null;
  return {
    posUs: model.posUs,
    state: c.state,
    speed: c.speed,
    loop: c.loop,
    startUs: boundUs(c.start),
    endUs: boundUs(c.end),
    filter: session.filter ?? [],
    glob: $('glob').value,
    selection: model.selected,
    layout: currentLayout(),
  };
}

function currentLayout() {
  return typeof charts.getLayout === 'function' ? charts.getLayout() : model.layout;
}

/** A named layout loaded: its paths join the selection (the values table shows them too), then the charts take it. */
function applyLayout(layout) {
  model.layout = layout;
  for (const panel of Array.isArray(layout?.panels) ? layout.panels : []) {
    for (const p of Array.isArray(panel?.paths) ? panel.paths : []) {
      if (typeof p === 'string' && model.selected.size < SELECTED_MAX) model.selected.add(p);
    }
  }
  applySelection();
  const problem = typeof charts.setLayout === 'function' ? charts.setLayout(layout) : null;
  if (problem) showBanner(`layout: ${problem}`);
  urlWriter.schedule();
}

/** The globs on screen: the filter box's glob, else the session's filter (empty: every path). */
function viewGlobs() {
  const glob = filterGlob($('glob').value.trim());
  return glob !== null ? [glob] : session.filter ?? [];
}

/** The range "what changed" compares: the markers; an unset start is the archive's beginning, an unset end the position. */
function diffRange() {
  const startUs = boundUs(model.controls?.start) ?? timeline.firstUs;
  const endUs = boundUs(model.controls?.end) ?? model.posUs;
  return startUs === null || endUs === null ? null : { startUs, endUs };
}

$('charts').addEventListener('layoutchange', () => urlWriter.schedule());

// ------------------------------------------------------------------ selection

function toggleSelection(paths, on) {
  for (const p of paths) {
    if (on && model.selected.size < SELECTED_MAX) model.selected.add(p);
    else if (!on) model.selected.delete(p);
  }
  applySelection();
}

function applySelection() {
  tree.setSelected(model.selected);
  table.setPaths(model.selected, model.values);
  charts.setPaths(model.selected, model.values, model.posUs);
  try { localStorage.setItem(SELECT_KEY, JSON.stringify([...model.selected])); } catch { /* private mode */ }
  urlWriter.schedule();
}

$('btn-clear-sel').onclick = () => { model.selected.clear(); applySelection(); };
$('glob').addEventListener('keydown', (ev) => { if (ev.key === 'Escape') ev.target.blur(); });
let filterTimer = 0;
$('glob').addEventListener('input', (ev) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => tree.setFilter(ev.target.value), 120);
  urlWriter.schedule();
});

// ------------------------------------------------------------------ frames

followSession(session, {
  model, table, charts, timeline, tree, gapNotice, urlWriter, renderStatus,
  posEl: $('pos-time'),
  refreshCoverage: () => refreshCoverage(),
});

// ------------------------------------------------------------------ archive

const archiveInfo = new ArchiveInfo(base, timeline, $('timeline'), (e) => { model.error = e; showBanner(`${e.code}: ${e.message}`); renderStatus(); });
const refreshArchive = () => archiveInfo.refreshArchive();
const refreshCoverage = () => archiveInfo.refreshCoverage();

/** The workspace lists (bookmarks, layout names): asked with the archive, so other people's bookmarks show up. */
async function refreshWorkspace() {
  await Promise.all([bookmarks.refresh(), layouts.refresh()]).catch(() => undefined);
}

// ------------------------------------------------------------------ start

function initialSelection() {
  if (initial.selection !== null) return initial.selection;
  try { return JSON.parse(localStorage.getItem(SELECT_KEY) ?? '[]'); } catch { return []; }
}

if (initial.glob !== '') {
  $('glob').value = initial.glob;
  tree.setFilter(initial.glob);
}
if (initial.layout !== null && typeof charts.setLayout === 'function') charts.setLayout(initial.layout);
model.selected = new Set(initialSelection().slice(0, SELECTED_MAX));
applySelection();
renderStatus();
await Promise.all([refreshArchive(), refreshCoverage(), refreshWorkspace()]);
setInterval(() => { refreshArchive(); refreshCoverage(); refreshWorkspace(); }, ARCHIVE_REFRESH_MS);
session.start(initial.controls, { resume: !initial.explicit }).catch((err) => {
  model.conn = 'error';
  model.error = model.error ?? { code: err.code ?? 'TPD_UNREACHABLE', message: err.message };
  renderStatus();
});
