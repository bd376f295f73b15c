// The player's state in its URL, both ways. Reading gives the new session's controls, the
// session filter, the filter box, the selection and the chart layout; writing follows what
// is on screen (history.replaceState, at most every URL_WRITE_INTERVAL_MS, the last state
// always written), so a copied or bookmarked URL reopens the same moment: the position to
// the µs, paused if it was paused. Pure but for UrlWriter (tested in Node and Chromium).
//
//   pos=<epoch µs>   state=play|pause|tail   speed=<n>|unlimited   loop=true
//   start=<epoch µs> end=<epoch µs>          (markers; absent = unbounded)
//   filter=<glob> (repeatable: the session's filter)   glob=<filter box text>
//   path=<path> (repeatable: the selection; the older select= is still read: legacySelection)
//   layout=<JSON> (the charts' layout, charts.getLayout())
//
// access_token is never written back: a shared URL must not carry a secret (http.js keeps
// the token for the tab).

/** Chromium refuses replaceState past about 100 calls in 10 s; two a second stays well under. */
export const URL_WRITE_INTERVAL_MS = 500;
const CONTROL_KEYS = ['pos', 'state', 'speed', 'start', 'end', 'loop'];
const INTEGER = /^\d{1,16}$/;

/** What a URL asks for. `explicit`: it names a control (so the tab's old session is not resumed). */
export function readUrlState(params) {
  const controls = { state: 'tail' };
  for (const k of ['pos', 'state', 'speed', 'start', 'end']) {
    const v = params.get(k);
    if (v === null) continue;
    controls[k] = k === 'speed' && v !== 'unlimited' ? Number(v) : INTEGER.test(v) ? Number(v) : v;
  }
  if (params.has('loop')) controls.loop = params.get('loop') === 'true';
  if (controls.pos !== undefined && !params.has('state')) controls.state = 'pause';
  let layout = null;
  const text = params.get('layout');
  if (text !== null) {
    try { layout = JSON.parse(text); } catch { layout = null; }
  }
  const paths = params.getAll('path');
  const selection = paths.length > 0 ? paths : legacySelection(params.getAll('select'));
  return {
    controls,
    explicit: CONTROL_KEYS.some((k) => params.has(k)),
    filter: params.getAll('filter'),
    glob: params.get('glob') ?? '',
    selection,
    layout,
  };
}

/**
 * The selection of the older `select=` parameter (null when absent). Repeated, each is one
 * path as it is, commas and all (as `path=`). Alone, it is the comma-separated list older
 * links wrote; every path starts with `/`, so only a comma before a `/` can end one:
 * `/if/eth0,1` is one path, `/a,/b` two. A path that holds `,/` itself is given with
 * `path=` (or a repeated `select=`).
 */
export function legacySelection(values) {
  if (values.length === 0) return null;
  const list = values.length > 1 ? values : values[0].split(/,(?=\/)/);
  return list.filter((p) => p !== '');
}

/**
 * The query string for a state: { posUs, state, speed, loop, startUs, endUs, filter[],
 * glob, selection (iterable), layout }. Live (state tail) has no position: it reopens live.
 */
export function urlQuery(s) {
  const q = new URLSearchParams();
  if (s.state !== 'tail' && s.posUs !== null && s.posUs !== undefined) q.set('pos', String(s.posUs));
  if (s.state) q.set('state', s.state);
  if (s.speed !== undefined && s.speed !== null && String(s.speed) !== '1') q.set('speed', String(s.speed));
  if (s.loop) q.set('loop', 'true');
  if (s.startUs !== null && s.startUs !== undefined) q.set('start', String(s.startUs));
  if (s.endUs !== null && s.endUs !== undefined) q.set('end', String(s.endUs));
  for (const g of s.filter ?? []) q.append('filter', g);
  if (s.glob) q.set('glob', s.glob);
  for (const p of [...(s.selection ?? [])].sort()) q.append('path', p);
  if (s.layout !== null && s.layout !== undefined) q.set('layout', JSON.stringify(s.layout));
  return q.toString();
}

/**
 * Epoch µs of a marker as the controls frame gives it (RFC 3339 with up to 9 fraction
 * digits, or "unbounded"), to the µs: Date.parse alone stops at the millisecond.
 */
export function boundUs(v) {
  if (!v || v === 'unbounded') return null;
  if (typeof v === 'number') return v;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) return null;
  const frac = /\.(\d+)/.exec(v);
  const micros = frac ? Number(frac[1].padEnd(6, '0').slice(3, 6)) : 0;
  return ms * 1000 + micros;
}

/** Writes `urlQuery(get())` into the address bar, throttled; `flush()` writes now. */
export class UrlWriter {
  constructor(get, intervalMs = URL_WRITE_INTERVAL_MS) {
    this.get = get;
    this.intervalMs = intervalMs;
    this.timer = 0;
    this.lastMs = -Infinity;
    this.written = null;
  }

  schedule() {
    if (this.timer) return;
    const wait = Math.max(0, this.lastMs + this.intervalMs - performance.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.lastMs = performance.now();
    const state = this.get();
    if (state === null) return; // nothing known yet: the URL as opened stays
    const query = urlQuery(state);
    if (query === this.written) return;
    this.written = query;
    window.history.replaceState(window.history.state, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
  }
}
