// The archive's timeline: files shaded by location (local, remote, missing) over a hatched
// background, so that gaps between files show; where the record is blind (recorder gaps,
// source outages, from GET /api/v1/coverage); what playback found unreadable (files gone
// under a session: its `gap` frames); bookmarks (their note on hover, a click jumps
// there); the play head; start/end markers; click or drag to seek, Shift+drag to pick a
// range. Positions are epoch µs; the range is the archive's first to last batch.
import { formatUs } from './time.js';
import { gapText } from './gap-notice.js';

const DRAG_SEEK_INTERVAL_MS = 150;
/** Gaps shorter than this share of the range are not drawn (they would be sub-pixel). */
const GAP_MIN_SHARE = 0.002;
/** Coverage items drawn at most (the newest kept): the REST answer over the whole archive has no bound. */
export const COVERAGE_DRAWN_MAX = 1000;
/** Sources with a band of their own under the files; the outages of any further source share the last band. */
const OUTAGE_BANDS_MAX = 4;
/** Unreadable ranges drawn at most (the newest kept), as for coverage. */
const LOST_DRAWN_MAX = 1000;
const GAP_TEXT = { 'recorder-crashed': 'recorder crashed', 'recorder-stopped': 'recorder stopped' };

export class Timeline {
  constructor(el, { onSeek, onMark, onRange }) {
    this.el = el;
    this.filesEl = el.querySelector('#tl-files');
    this.headEl = el.querySelector('#tl-head');
    this.hoverEl = el.querySelector('#tl-hover');
    this.startEl = el.querySelector('#tl-start');
    this.endEl = el.querySelector('#tl-end');
    this.rangeEl = el.querySelector('#tl-range');
    this.onSeek = onSeek;
    this.onMark = onMark;
    this.onRange = onRange;
    this.coverageEl = el.querySelector('#tl-coverage');
    this.bookmarksEl = el.querySelector('#tl-bookmarks');
    this.lostEl = el.querySelector('#tl-lost');
    this.lost = [];     // { startUs, endUs } from gap frames, startUs null for the beginning
    this.bookmarks = [];
    this.picking = null; // the start of a Shift+drag range
    this.files = [];
    this.gaps = [];     // { startUs, endUs, reason }, endUs null while open
    this.outages = [];  // { source, startUs, endUs, reason }
    this.firstUs = null;
    this.lastUs = null;
    this.posUs = null;
    this.startUs = null;
    this.endUs = null;
    this.dragging = false;
    this.lastDragSeek = 0;
    this.bindPointer();
  }

  /** From GET /api/v1/archive. */
  setArchive(info) {
    this.files = info.files.filter((f) => f.firstTs !== null && f.lastTs !== null).sort((a, b) => a.firstTs - b.firstTs);
    if (info.firstTs !== null) this.firstUs = this.firstUs === null ? info.firstTs : Math.min(this.firstUs, info.firstTs);
    if (info.lastTs !== null) this.lastUs = Math.max(this.lastUs ?? info.lastTs, info.lastTs);
    this.renderFiles();
    this.renderMarks();
  }

  /** From GET /api/v1/coverage (snake_case µs fields); items the page cannot place are left out. */
  setCoverage(answer) {
    const item = (x) => ({ startUs: x.start_us, endUs: x.end_us ?? null, reason: String(x.reason) });
    const placed = (x) => Number.isFinite(x.startUs) && (x.endUs === null || Number.isFinite(x.endUs));
    this.gaps = (answer.gaps ?? []).map(item).filter(placed).slice(-COVERAGE_DRAWN_MAX);
    this.outages = (answer.outages ?? []).map((o) => ({ ...item(o), source: String(o.source) })).filter(placed).slice(-COVERAGE_DRAWN_MAX);
    this.buildCoverage();
  }

  /**
   * A `gap` frame (GapFrame, protocol/frames.ts): the batches after fromUs up to toUs could
   * not be read (files gone). Marked once per range, hatched over the files; answers whether
   * the range is new (a looping session crosses the same hole on every pass).
   */
  addLost(f) {
    if (this.lost.some((x) => x.startUs === f.fromUs && x.endUs === f.toUs)) return false;
    const el = document.createElement('div');
    el.className = 'tl-lost-range';
    el.dataset.startUs = f.fromUs === null ? '' : String(f.fromUs);
    el.dataset.endUs = String(f.toUs);
    el.dataset.files = String(f.files.length);
    el.title = gapText(f);
    this.lost.push({ startUs: f.fromUs, endUs: f.toUs });
    this.lostEl.append(el);
    if (this.lost.length > LOST_DRAWN_MAX) {
      this.lost.shift();
      this.lostEl.firstElementChild.remove();
    }
    this.renderLost();
    return true;
  }

  renderLost() {
    const els = this.lostEl.children;
    this.lostEl.hidden = this.span() === null;
    if (this.lostEl.hidden) return;
    for (let i = 0; i < this.lost.length && i < els.length; i++) {
      const x = this.lost[i];
      const left = this.pct(x.startUs ?? this.firstUs);
      els[i].style.left = `${left}%`;
      els[i].style.width = `${Math.max(this.pct(x.endUs) - left, 0)}%`;
    }
  }

  /** Bookmarks (GET /api/v1/bookmarks) as flags; `onPick(bookmark)` on a click. */
  setBookmarks(items, onPick) {
    this.bookmarks = items;
    const els = items.map((b) => {
      const el = document.createElement('button');
      el.type = 'button';
      el.className = 'tl-bookmark';
      el.dataset.id = b.id;
      el.dataset.ts = String(b.ts);
      el.title = `${b.note || '(no note)'}\n${formatUs(b.ts)}${b.end !== undefined ? ` → ${formatUs(b.end)}` : ''}`;
      el.setAttribute('aria-label', `Bookmark: ${b.note || 'no note'} at ${formatUs(b.ts)}`);
      // Before the timeline's own pointerdown (which would seek to the pointer, not the bookmark).
      el.addEventListener('pointerdown', (ev) => { ev.stopPropagation(); ev.preventDefault(); onPick(b); });
      el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.stopPropagation(); ev.preventDefault(); onPick(b); } });
      return el;
    });
    this.bookmarksEl.replaceChildren(...els);
    this.renderBookmarks();
  }

  renderBookmarks() {
    const els = this.bookmarksEl.children;
    this.bookmarksEl.hidden = this.span() === null;
    if (this.bookmarksEl.hidden) return;
    for (let i = 0; i < this.bookmarks.length && i < els.length; i++) els[i].style.left = `${this.pct(this.bookmarks[i].ts)}%`;
  }

  /** Live data past the last known end stretches the range (the current file grows with it). */
  extendTo(us) {
    if (us === null || this.lastUs === null || us <= this.lastUs) return;
    this.lastUs = us;
    const cur = this.files[this.files.length - 1];
    if (cur && us > cur.lastTs && cur.location === 'local' && !cur.sealed) cur.lastTs = us;
    this.renderFiles();
  }

  setPosition(us) {
    this.posUs = us;
    this.renderHead();
  }

  setBounds(startUs, endUs) {
    this.startUs = startUs;
    this.endUs = endUs;
    this.renderMarks();
  }

  span() {
    if (this.firstUs === null || this.lastUs === null) return null;
    return Math.max(this.lastUs - this.firstUs, 1);
  }

  pct(us) {
    const span = this.span();
    if (span === null) return 0;
    return Math.min(100, Math.max(0, ((us - this.firstUs) / span) * 100));
  }

  usAt(clientX) {
    const r = this.el.getBoundingClientRect();
    const span = this.span();
    if (span === null || r.width === 0) return null;
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return Math.round(this.firstUs + f * span);
  }

  renderFiles() {
    const span = this.span();
    const parts = [];
    if (span !== null) {
      let prevEnd = null;
      for (const f of this.files) {
        if (prevEnd !== null && f.firstTs - prevEnd > span * GAP_MIN_SHARE) {
          parts.push(`<div class="seg seg-gap" style="left:${this.pct(prevEnd)}%;width:${this.pct(f.firstTs) - this.pct(prevEnd)}%" title="gap: no data ${formatUs(prevEnd)} to ${formatUs(f.firstTs)}"></div>`);
        }
        const left = this.pct(f.firstTs);
        const width = Math.max(this.pct(f.lastTs) - left, 0.15);
        const name = String(f.name).replace(/[<>&"]/g, '');
        parts.push(`<div class="seg seg-${f.location}" style="left:${left}%;width:${width}%" title="${name} (${f.location}): ${formatUs(f.firstTs)} to ${formatUs(f.lastTs)}"></div>`);
        prevEnd = Math.max(prevEnd ?? f.lastTs, f.lastTs);
      }
    }
    this.filesEl.innerHTML = parts.join('');
    this.el.setAttribute('aria-valuemin', String(this.firstUs ?? 0));
    this.el.setAttribute('aria-valuemax', String(this.lastUs ?? 0));
    document.getElementById('tl-first').textContent = formatUs(this.firstUs);
    document.getElementById('tl-last').textContent = formatUs(this.lastUs);
    this.renderCoverage();
    this.renderLost();
    this.renderBookmarks();
    this.renderHead();
    this.renderMarks();
  }

  /**
   * Recorder gaps as hatched spans over the files (crashed and stopped styled apart), source
   * outages as thin bands along the bottom, one per source. Built as elements, never as
   * HTML: reasons come from sources (an upstream's error text) and are shown as text.
   */
  buildCoverage() {
    const els = [];
    for (const g of this.gaps) {
      const what = GAP_TEXT[g.reason] ?? g.reason;
      els.push(coverageElement(g, `cov-gap cov-gap-${g.reason === 'recorder-crashed' ? 'crashed' : 'stopped'}`, `${what}: nothing recorded`));
    }
    const bands = new Map();
    for (const o of this.outages) {
      if (!bands.has(o.source)) bands.set(o.source, Math.min(bands.size, OUTAGE_BANDS_MAX - 1));
      const el = coverageElement(o, 'cov-outage', `source ${o.source} down (${o.reason})`);
      el.dataset.source = o.source;
      el.style.setProperty('--band', String(bands.get(o.source)));
      els.push(el);
    }
    this.coverageEl.replaceChildren(...els);
    this.renderCoverage();
  }

  /** Places the coverage elements on the range; runs whenever the range stretches (live batches), so it only restyles. */
  renderCoverage() {
    const items = [...this.gaps, ...this.outages];
    const els = this.coverageEl.children;
    this.coverageEl.hidden = this.span() === null;
    if (this.coverageEl.hidden) return;
    for (let i = 0; i < items.length && i < els.length; i++) {
      const x = items[i];
      const left = this.pct(x.startUs);
      els[i].style.left = `${left}%`;
      els[i].style.width = `${Math.max(this.pct(x.endUs ?? this.lastUs) - left, 0)}%`;
    }
  }

  renderHead() {
    const us = this.posUs;
    this.headEl.hidden = us === null || this.span() === null;
    if (this.headEl.hidden) return;
    this.headEl.style.left = `${this.pct(us)}%`;
    this.el.setAttribute('aria-valuenow', String(us));
    this.el.setAttribute('aria-valuetext', formatUs(us));
  }

  renderMarks() {
    const mark = (el, us) => {
      el.hidden = us === null || this.span() === null;
      if (!el.hidden) el.style.left = `${this.pct(us)}%`;
    };
    mark(this.startEl, this.startUs);
    mark(this.endEl, this.endUs);
    const show = (this.startUs !== null || this.endUs !== null) && this.span() !== null;
    this.rangeEl.hidden = !show;
    if (show) {
      const a = this.pct(this.startUs ?? this.firstUs);
      const b = this.pct(this.endUs ?? this.lastUs);
      this.rangeEl.style.left = `${a}%`;
      this.rangeEl.style.width = `${Math.max(b - a, 0)}%`;
    }
  }

  bindPointer() {
    const el = this.el;
    el.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      const us = this.usAt(ev.clientX);
      if (us === null) return;
      if (ev.shiftKey || ev.altKey) {
        // Shift-click sets the start marker there, Alt-click the end marker; Shift+drag
        // sets both, the range picked (the end where the pointer is released).
        this.onMark(ev.shiftKey ? 'start' : 'end', us);
        if (ev.shiftKey) {
          this.picking = us;
          el.setPointerCapture(ev.pointerId);
        }
        ev.preventDefault();
        return;
      }
      this.dragging = true;
      el.setPointerCapture(ev.pointerId);
      this.preview(us);
      ev.preventDefault();
      el.focus();
    });
    el.addEventListener('pointermove', (ev) => {
      const us = this.usAt(ev.clientX);
      if (us === null) return;
      this.hoverEl.hidden = false;
      this.hoverEl.style.left = `${this.pct(us)}%`;
      this.hoverEl.textContent = formatUs(us);
      if (!this.dragging) return;
      this.preview(us);
      const now = performance.now();
      if (now - this.lastDragSeek >= DRAG_SEEK_INTERVAL_MS) {
        this.lastDragSeek = now;
        this.onSeek(us);
      }
    });
    el.addEventListener('pointerleave', () => { this.hoverEl.hidden = true; });
    const finish = (ev) => {
      if (this.picking !== null) {
        const from = this.picking;
        this.picking = null;
        const us = this.usAt(ev.clientX);
        if (us !== null && us !== from) this.onRange(Math.min(from, us), Math.max(from, us));
        return;
      }
      if (!this.dragging) return;
      this.dragging = false;
      const us = this.usAt(ev.clientX);
      if (us !== null) this.onSeek(us);
    };
    el.addEventListener('pointerup', finish);
    el.addEventListener('pointercancel', () => { this.dragging = false; this.picking = null; });
  }

  preview(us) {
    this.headEl.hidden = false;
    this.headEl.style.left = `${this.pct(us)}%`;
  }
}

/** One span's element: its facts in data attributes and its title (placed by renderCoverage). */
function coverageElement(x, className, text) {
  const el = document.createElement('div');
  el.className = className;
  el.dataset.startUs = String(x.startUs);
  el.dataset.endUs = x.endUs === null ? '' : String(x.endUs);
  el.dataset.reason = x.reason;
  el.title = x.endUs === null ? `${text} since ${formatUs(x.startUs)}, until now` : `${text}: ${formatUs(x.startUs)} to ${formatUs(x.endUs)}`;
  return el;
}
