// Named layouts on the server (GET/PUT/DELETE /api/v1/layouts/:name): save what the charts
// show under a name, load one back. The layout itself is the charts' own data
// (charts.getLayout()); this module only stores and fetches it.
import { apiFetch } from './http.js';
import { errorText } from './bookmarks.js';

export class NamedLayouts {
  /** els: { select, name, save, load, remove }; hooks: { get() -> layout|null, set(layout), error(text) }. */
  constructor(base, els, hooks) {
    this.base = base;
    this.els = els;
    this.hooks = hooks;
    const guard = (fn) => () => fn().catch((err) => hooks.error(`layout: ${err.message}`));
    els.save.onclick = guard(() => this.save(els.name.value.trim()));
    els.load.onclick = guard(() => this.load(els.select.value));
    els.remove.onclick = guard(() => this.remove(els.select.value));
    els.name.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); els.save.click(); }
    });
  }

  url(name) {
    return `${this.base}/api/v1/layouts/${encodeURIComponent(name)}`;
  }

  async refresh(selected = this.els.select.value) {
    const res = await apiFetch(`${this.base}/api/v1/layouts`);
    if (!res.ok) return;
    const names = (await res.json()).layouts.map((l) => l.name);
    this.els.select.replaceChildren(...names.map((n) => new Option(n, n)));
    if (names.includes(selected)) this.els.select.value = selected;
    this.els.load.disabled = this.els.remove.disabled = names.length === 0;
  }

  async save(name) {
    if (name === '') throw new Error('type a name first');
    const layout = this.hooks.get();
    if (layout === null) throw new Error('the charts give no layout to save');
    const res = await apiFetch(this.url(name), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ layout }) });
    if (!res.ok) throw new Error(await errorText(res));
    this.els.name.value = '';
    await this.refresh(name);
  }

  async load(name) {
    if (!name) return;
    const res = await apiFetch(this.url(name));
    if (!res.ok) throw new Error(await errorText(res));
    this.hooks.set((await res.json()).layout);
  }

  async remove(name) {
    if (!name) return;
    const res = await apiFetch(this.url(name), { method: 'DELETE' });
    if (!res.ok && res.status !== 404) throw new Error(await errorText(res));
    await this.refresh();
  }
}
