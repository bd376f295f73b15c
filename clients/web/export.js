// Export downloads GET /api/v1/history in the chosen format for what is on screen: the
// filter box when it holds a glob (else the session's filter), between the start and end
// markers (an unset marker leaves that end open).
import { apiFetch } from './http.js';
import { filterGlob, filterProblem } from './values.js';

/** deps: { formatEl, globEl, sessionFilter() -> string[], controls() -> controls|null, error(text) }. */
export class Exporter {
  constructor(deps) {
    this.d = deps;
  }

  url() {
    const q = new URLSearchParams({ format: this.d.formatEl.value });
    const glob = filterGlob(this.d.globEl.value.trim()); // the filter box's own rule
    const globs = glob !== null ? [glob] : this.d.sessionFilter();
    for (const g of globs) q.append('glob', g);
    const c = this.d.controls();
    if (c?.start && c.start !== 'unbounded') q.set('from', c.start);
    if (c?.end && c.end !== 'unbounded') q.set('to', c.end);
    return `/api/v1/history?${q}`;
  }

  async download() {
    const problem = filterProblem(this.d.globEl.value);
    if (problem) return this.d.error(`export: ${problem}`);
    const name = `tapedeck.${this.d.formatEl.value}`;
    // Without a token the browser streams the download straight to disk. A token can only
    // travel as a header (http.js), so then the body is fetched first and saved from memory.
    if (!sessionStorage.getItem('tapedeck.token')) return saveAs(this.url(), name);
    const res = await apiFetch(this.url());
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      return this.d.error(`export: ${body?.error?.code ?? res.status}: ${body?.error?.message ?? res.statusText}`);
    }
    const blobUrl = URL.createObjectURL(await res.blob());
    saveAs(blobUrl, name);
    // The download has started from the blob by the time the click returns; free it soon after.
    setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
  }
}

function saveAs(href, name) {
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}
