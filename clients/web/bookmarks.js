// Bookmarks: moments with a note, kept on the server (GET/POST/DELETE /api/v1/bookmarks),
// drawn on the timeline (the note on hover), listed in the side panel where a click jumps
// to the moment and a link reopens it as it was shown (the URL state saved with it).
import { apiFetch } from './http.js';
import { formatUs } from './time.js';

export class Bookmarks {
  /**
   * els: { list, form, note, when, count }; hooks: { timeline, jump(bookmark), error(text),
   * moment() -> { posUs, endUs, url } | null }.
   */
  constructor(base, els, hooks) {
    this.base = base;
    this.els = els;
    this.hooks = hooks;
    this.items = [];
    this.pending = null; // the moment captured when "add" was asked
    els.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.add(els.note.value).catch((err) => hooks.error(`bookmark: ${err.message}`));
    });
    els.note.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.cancel(); });
  }

  async refresh() {
    const res = await apiFetch(`${this.base}/api/v1/bookmarks`);
    if (!res.ok) return; // a read token is enough: anything else shows elsewhere (status)
    this.items = (await res.json()).bookmarks;
    this.render();
  }

  /** Captures the position now and asks for a note; Enter saves, Escape drops it. */
  startAdd() {
    const m = this.hooks.moment();
    if (!m || m.posUs === null) return this.hooks.error('bookmark: no position yet');
    this.pending = m;
    this.els.form.hidden = false;
    this.els.when.textContent = formatUs(m.posUs);
    this.els.note.value = '';
    this.els.note.focus();
  }

  cancel() {
    this.pending = null;
    this.els.form.hidden = true;
    this.els.note.blur();
  }

  async add(note) {
    const m = this.pending;
    if (!m) return;
    const body = { ts: m.posUs, note, url: m.url };
    if (m.endUs !== null && m.endUs >= m.posUs) body.end = m.endUs;
    const res = await apiFetch(`${this.base}/api/v1/bookmarks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(await errorText(res));
    this.cancel();
    await this.refresh();
  }

  async remove(id) {
    const res = await apiFetch(`${this.base}/api/v1/bookmarks/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (!res.ok && res.status !== 404) throw new Error(await errorText(res));
    await this.refresh();
  }

  /** The bookmark before (dir -1) or after (+1) the position, if any. */
  neighbour(posUs, dir) {
    if (this.items.length === 0) return null;
    if (posUs === null) return dir > 0 ? this.items[0] : this.items[this.items.length - 1];
    if (dir > 0) return this.items.find((b) => b.ts > posUs) ?? null;
    return [...this.items].reverse().find((b) => b.ts < posUs) ?? null;
  }

  render() {
    this.hooks.timeline.setBookmarks(this.items, (b) => this.hooks.jump(b));
    this.els.count.textContent = this.items.length === 0 ? '' : `(${this.items.length})`;
    this.els.list.replaceChildren(...this.items.map((b) => this.item(b)));
  }

  /** One list entry, built as elements (notes are user text). */
  item(b) {
    const li = document.createElement('li');
    li.dataset.id = b.id;
    li.dataset.ts = String(b.ts);
    const go = document.createElement('button');
    go.type = 'button';
    go.className = 'bm-go';
    go.title = 'Jump to this moment';
    const when = document.createElement('time');
    when.textContent = formatUs(b.ts) + (b.end !== undefined ? ` → ${formatUs(b.end)}` : '');
    const note = document.createElement('span');
    note.className = 'bm-note';
    note.textContent = b.note || '(no note)';
    go.append(when, note);
    go.onclick = () => this.hooks.jump(b);
    const link = document.createElement('a');
    link.className = 'bm-link';
    link.href = `${location.pathname}?${b.url || `pos=${b.ts}&state=pause`}`;
    link.textContent = 'link';
    link.title = 'The moment as it was shown when bookmarked (copy to share)';
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'bm-del';
    del.textContent = '×';
    del.setAttribute('aria-label', `Delete bookmark ${b.note}`);
    del.onclick = () => this.remove(b.id).catch((err) => this.hooks.error(`bookmark: ${err.message}`));
    li.append(go, link, del);
    return li;
  }
}

export async function errorText(res) {
  const e = (await res.json().catch(() => null))?.error;
  return e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`;
}
