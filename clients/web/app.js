// The web player: wires the session (session.js), the timeline, the transport, the path
// tree, the value table and the charts. URL parameters (all optional) set the new
// session's controls: ?pos=&state=&speed=&loop=&start=&end=, ?filter= (session globs,
// repeatable), ?select= (comma-separated paths shown at once).
import { PlayerSession } from './session.js';
import { Timeline } from './timeline.js';
import { PathTree } from './tree.js';
import { ValueTable } from './table.js';
import { Charts } from './charts.js';
import { formatUs, formatSpan, MINUTE_US, HOUR_US } from './time.js';
import { apiFetch, initToken } from './http.js';
import { filterGlob, filterProblem } from './values.js';

const ARCHIVE_REFRESH_MS = 5000;
const SELECTED_MAX = 500;
const SELECT_KEY = 'tapedeck.selected';
const icon = (d) => `<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path d="${d}" fill="currentColor"/></svg>`;
const ICON_PLAY = icon('M4 2v12l10-6z');
const ICON_PAUSE = icon('M3 2h4v12H3zM9 2h4v12H9z');

const $ = (id) => document.getElementById(id);
const base = location.origin;
const params = new URLSearchParams(location.search);
initToken(params);

const model = {
  values: new Map(),      // path -> wire value at the position
  selected: new Set(),
  controls: null,
  posUs: null,
  conn: 'connecting',     // connecting | open | reconnecting | replaced | closed | error
  buffering: null,        // the info frame while a cold file is fetched
  ended: false,
  error: null,            // { code, message } from the server
};

const session = new PlayerSession(base, { filter: params.getAll('filter') });
const timeline = new Timeline($('timeline'), {
  onSeek: (us) => control({ pos: us }),
  onMark: (which, us) => control({ [which]: us }),
});
const table = new ValueTable($('values').tBodies[0], $('values-empty'));
const charts = new Charts($('charts'), base);
const tree = new PathTree($('tree'), $('tree-count'), { onToggle: toggleSelection });
window.tapedeck = { session, model, timeline, charts, exportUrl };

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

function markStart() { if (model.posUs !== null) control({ start: model.posUs }); }
function markEnd() { if (model.posUs !== null) control({ end: model.posUs }); }
function clearMarks() { control({ start: 'unbounded', end: 'unbounded' }); }

$('btn-beginning').onclick = () => control({ pos: 'beginning' });
$('btn-back-hour').onclick = () => jump(-HOUR_US);
$('btn-back-min').onclick = () => jump(-MINUTE_US);
$('btn-step-back').onclick = () => control({ pos: '-1' });
$('btn-play').onclick = togglePlay;
$('btn-step-fwd').onclick = () => control({ pos: '+1' });
$('btn-fwd-min').onclick = () => jump(MINUTE_US);
$('btn-fwd-hour').onclick = () => jump(HOUR_US);
$('btn-live').onclick = () => control({ state: 'tail' });
$('btn-loop').onclick = () => control({ loop: !(model.controls?.loop ?? false) });
$('speed').onchange = (ev) => setSpeed(ev.target.value);
$('btn-mark-start').onclick = markStart;
$('btn-mark-end').onclick = markEnd;
$('btn-mark-clear').onclick = clearMarks;
$('btn-help').onclick = () => $('help').showModal();
$('banner').onclick = hideBanner;

const KEYS = {
  ' ': togglePlay,
  ArrowLeft: () => control({ pos: '-1' }),
  ArrowRight: () => control({ pos: '+1' }),
  ArrowDown: () => jump(-MINUTE_US),
  ArrowUp: () => jump(MINUTE_US),
  PageDown: () => jump(-HOUR_US),
  PageUp: () => jump(HOUR_US),
  Home: () => control({ pos: 'beginning' }),
  End: () => control({ pos: 'end' }),
  '+': () => speedStep(1),
  '=': () => speedStep(1),
  '-': () => speedStep(-1),
  u: () => { $('speed').value = 'unlimited'; setSpeed('unlimited'); },
  t: () => control({ state: 'tail' }),
  l: () => control({ loop: !(model.controls?.loop ?? false) }),
  '[': markStart,
  ']': markEnd,
  '\\': clearMarks,
  '/': () => $('glob').focus(),
  '?': () => $('help').showModal(),
};

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
  if ($('help').open) return;
  // Buttons keep Space and Enter for themselves (keyboard users press the focused button).
  if (t instanceof HTMLButtonElement && (ev.key === ' ' || ev.key === 'Enter')) return;
  const fn = KEYS[ev.key];
  if (!fn) return;
  ev.preventDefault();
  fn();
});

// ------------------------------------------------------------------ export

// Export downloads GET /api/v1/history in the chosen format for what is on screen: the
// filter box when it holds a glob (else the session's filter), between the start and end
// markers (an unset marker leaves that end open).
function exportUrl() {
  const q = new URLSearchParams({ format: $('export-format').value });
  const box = $('glob').value.trim();
  const glob = filterGlob(box); // the filter box's own rule
  const globs = glob !== null ? [glob] : session.filter ?? [];
  for (const g of globs) q.append('glob', g);
  const c = model.controls;
  if (c?.start && c.start !== 'unbounded') q.set('from', c.start);
  if (c?.end && c.end !== 'unbounded') q.set('to', c.end);
  return `/api/v1/history?${q}`;
}

function saveAs(href, name) {
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

async function downloadExport() {
  const problem = filterProblem($('glob').value);
  if (problem) return showBanner(`export: ${problem}`);
  const name = `tapedeck.${$('export-format').value}`;
  // Without a token the browser streams the download straight to disk. A token can only
  // travel as a header (http.js), so then the body is fetched first and saved from memory.
  if (!sessionStorage.getItem('tapedeck.token')) return saveAs(exportUrl(), name);
  const res = await apiFetch(exportUrl());
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    return showBanner(`export: ${body?.error?.code ?? res.status}: ${body?.error?.message ?? res.statusText}`);
  }
  const blobUrl = URL.createObjectURL(await res.blob());
  saveAs(blobUrl, name);
  // The download has started from the blob by the time the click returns; free it soon after.
  setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
}

$('btn-export').addEventListener('click', () => {
  downloadExport().catch((err) => showBanner(`export: ${err.message}`));
});

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
}

$('btn-clear-sel').onclick = () => { model.selected.clear(); applySelection(); };
$('glob').addEventListener('keydown', (ev) => { if (ev.key === 'Escape') ev.target.blur(); });
let filterTimer = 0;
$('glob').addEventListener('input', (ev) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => tree.setFilter(ev.target.value), 120);
});

// ------------------------------------------------------------------ frames

let treeTimer = 0;
function noticePaths(paths) {
  if (tree.addPaths(paths) && !treeTimer) {
    treeTimer = setTimeout(() => { treeTimer = 0; tree.render(); }, 250);
  }
}

function applyBatch(ts, updates) {
  const fresh = [];
  for (const [p, v] of updates) {
    if (!model.values.has(p)) fresh.push(p);
    model.values.set(p, v);
    table.update(p, v, ts);
  }
  if (fresh.length > 0) noticePaths(fresh);
  charts.append(ts, updates);
  model.posUs = ts;
  timeline.extendTo(ts);
}

session.addEventListener('frame', (ev) => {
  const f = ev.detail;
  switch (f.type) {
    case 'state': {
      model.values = new Map(Object.entries(f.values));
      model.posUs = f.ts;
      model.buffering = null;
      model.ended = false;
      noticePaths(model.values.keys());
      table.setPaths(model.selected, model.values);
      for (const [p, v] of model.values) table.update(p, v, null);
      charts.setPaths(model.selected, model.values, null);
      charts.reset(f.ts, model.values);
      timeline.extendTo(f.ts);
      break;
    }
    case 'batch':
      model.buffering = null;
      applyBatch(f.ts, f.updates);
      break;
    case 'batches':
      model.buffering = null;
      for (const b of f.batches) applyBatch(b.ts, b.updates);
      break;
    case 'controls':
      model.controls = f.controls;
      if (f.controls.posUs !== null) model.posUs = f.controls.posUs;
      if (f.controls.state !== 'pause') model.ended = false;
      renderControls();
      break;
    case 'coverage':
      // The session's gaps break the charts' lines; the frame also says the coverage may have
      // changed (sent again while tailing), so the timeline asks for the whole archive's.
      charts.setGaps(f.gaps);
      refreshCoverage();
      break;
    case 'end':
      model.ended = true;
      break;
    case 'error':
      model.error = { code: f.code, message: f.message };
      showBanner(`${f.code}: ${f.message}`);
      break;
    case 'info':
      // A cold file is being fetched (TPD_BUFFERING) until it arrived (TPD_BUFFERED).
      if (f.code === 'TPD_BUFFERING') model.buffering = f;
      else if (f.code === 'TPD_BUFFERED') model.buffering = null;
      else showBanner(`${f.code}: ${f.message}`, 'info');
      break;
  }
  schedulePosition();
  renderStatus();
});

session.addEventListener('status', (ev) => {
  model.conn = ev.detail.state;
  if (ev.detail.error) {
    model.error = ev.detail.error;
    showBanner(`${ev.detail.error.code}: ${ev.detail.error.message}`);
  }
  renderStatus();
});

// ------------------------------------------------------------------ rendering

let posFrame = 0;
function schedulePosition() {
  if (!posFrame) posFrame = requestAnimationFrame(renderPosition);
}

function renderPosition() {
  posFrame = 0;
  const el = $('pos-time');
  el.textContent = formatUs(model.posUs);
  el.dataset.us = model.posUs === null ? '' : String(model.posUs);
  if (model.posUs !== null) el.dateTime = new Date(Math.floor(model.posUs / 1000)).toISOString();
  if (!timeline.dragging) timeline.setPosition(model.posUs);
}

function boundUs(v) {
  if (!v || v === 'unbounded') return null;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) return null;
  const frac = /\.(\d+)/.exec(v);
  const micros = frac ? Number(frac[1].padEnd(6, '0').slice(3, 6)) : 0;
  return ms * 1000 + micros;
}

function renderControls() {
  const c = model.controls;
  if (!c) return;
  const playing = c.state === 'play' || c.state === 'tail';
  const play = $('btn-play');
  play.innerHTML = playing ? ICON_PAUSE : ICON_PLAY;
  play.setAttribute('aria-label', playing ? 'Pause' : 'Play');
  $('btn-live').setAttribute('aria-pressed', String(c.state === 'tail'));
  $('btn-loop').setAttribute('aria-pressed', String(c.loop));
  const sel = $('speed');
  const v = String(c.speed);
  if (![...sel.options].some((o) => o.value === v)) {
    const o = new Option(`${v}×`, v);
    const after = [...sel.options].find((x) => x.value !== 'unlimited' && Number(x.value) > Number(v));
    sel.add(o, after ?? sel.options[sel.options.length - 1]);
  }
  sel.value = v;
  const startUs = boundUs(c.start);
  const endUs = boundUs(c.end);
  timeline.setBounds(startUs, endUs);
  $('tl-bounds').textContent = startUs === null && endUs === null ? ''
    : `start ${startUs === null ? 'unbounded' : formatUs(startUs)} · end ${endUs === null ? 'unbounded' : formatUs(endUs)}`;
}

function renderStatus() {
  const m = model;
  let state;
  let text;
  if (m.conn === 'error' || m.conn === 'replaced') {
    state = 'error';
    text = m.error ? `error ${m.error.code}: ${m.error.message}` : 'error';
  } else if (m.conn === 'connecting' || m.conn === 'reconnecting') {
    state = 'connecting';
    text = m.conn === 'reconnecting' ? 'reconnecting…' : 'connecting…';
  } else if (m.conn === 'closed') {
    state = 'ended';
    text = 'closed';
  } else if (m.buffering) {
    state = 'buffering';
    text = m.buffering.message.startsWith('buffering') ? m.buffering.message : `buffering: ${m.buffering.message}`;
  } else if (m.error) {
    state = 'error';
    text = `error ${m.error.code}: ${m.error.message}`;
  } else if (m.ended) {
    state = 'ended';
    text = 'ended';
  } else if (m.controls?.state === 'tail') {
    state = 'live';
    text = 'live';
  } else if (m.controls?.state === 'play') {
    state = 'playing';
    text = `playing ${m.controls.speed === 'unlimited' ? 'unlimited' : `${m.controls.speed}×`}`;
  } else if (m.controls) {
    state = 'paused';
    text = 'paused';
  } else {
    state = 'connecting';
    text = 'connecting…';
  }
  if (state === shownStatus.state && text === shownStatus.text) return; // runs on every frame
  shownStatus = { state, text };
  const el = $('conn');
  el.className = `conn conn-${state}`;
  el.dataset.state = state;
  $('conn-text').textContent = text;
}

let shownStatus = { state: '', text: '' };

function showBanner(text, kind = 'error') {
  const b = $('banner');
  b.textContent = text;
  b.className = `banner banner-${kind}`;
  b.hidden = false;
}

function hideBanner() {
  $('banner').hidden = true;
}

// ------------------------------------------------------------------ archive

async function refreshArchive() {
  try {
    const res = await apiFetch(`${base}/api/v1/archive`);
    if (!res.ok) {
      const e = (await res.json().catch(() => null))?.error;
      if (e && (res.status === 401 || res.status === 403)) { model.error = e; showBanner(`${e.code}: ${e.message}`); renderStatus(); }
      return;
    }
    const info = await res.json();
    timeline.setArchive(info);
    const span = timeline.span();
    $('timeline').title = span === null ? 'empty archive' : `archive: ${formatSpan(span)} in ${info.files.length} file(s)`;
  } catch {
    // The connection status shows a server that is away.
  }
}

/** The timeline shades where the whole archive is blind (GET /api/v1/coverage). */
let coverageAsked = 0;
async function refreshCoverage() {
  const asked = ++coverageAsked;
  try {
    const res = await apiFetch(`${base}/api/v1/coverage`);
    const answer = res.ok ? await res.json() : null;
    // Answers can cross (a frame and the interval both ask): only the newest question's counts.
    if (answer && asked === coverageAsked) timeline.setCoverage(answer);
  } catch {
    // As for the archive: the connection status shows a server that is away.
  }
}

// ------------------------------------------------------------------ start

function initialControls() {
  const c = { state: 'tail' };
  for (const k of ['pos', 'state', 'speed', 'start', 'end']) {
    const v = params.get(k);
    if (v !== null) c[k] = k === 'speed' && v !== 'unlimited' ? Number(v) : /^\d+$/.test(v) ? Number(v) : v;
  }
  if (params.has('loop')) c.loop = params.get('loop') === 'true';
  if (c.pos !== undefined && !params.has('state')) c.state = 'pause';
  return c;
}

function initialSelection() {
  const fromUrl = params.get('select');
  if (fromUrl !== null) return fromUrl.split(',').filter((p) => p !== '');
  try { return JSON.parse(localStorage.getItem(SELECT_KEY) ?? '[]'); } catch { return []; }
}

model.selected = new Set(initialSelection().slice(0, SELECTED_MAX));
applySelection();
renderStatus();
await Promise.all([refreshArchive(), refreshCoverage()]);
setInterval(() => { refreshArchive(); refreshCoverage(); }, ARCHIVE_REFRESH_MS);
const explicit = ['pos', 'state', 'speed', 'start', 'end', 'loop'].some((k) => params.has(k));
session.start(initialControls(), { resume: !explicit }).catch((err) => {
  model.conn = 'error';
  model.error = model.error ?? { code: err.code ?? 'TPD_UNREACHABLE', message: err.message };
  renderStatus();
});
