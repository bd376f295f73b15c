// The path tree: paths split on "/", folders as <details>, leaves as checkboxes. A folder's
// checkbox selects every leaf under it that the filter shows. Rendering is capped so that
// a huge archive stays responsive: refine the filter to see the rest.
import { pathFilter } from './values.js';

const LEAVES_SHOWN_MAX = 2000;
/** Folders open by themselves when the filter leaves at most this many leaves. */
const AUTO_OPEN_LEAVES_MAX = 64;

function esc(s) {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

export class PathTree {
  constructor(el, countEl, { onToggle }) {
    this.el = el;
    this.countEl = countEl;
    this.onToggle = onToggle;
    this.paths = [];
    this.known = new Set();
    this.filterText = '';
    this.selected = new Set();
    this.open = new Set(['']);
    el.addEventListener('change', (ev) => {
      const t = ev.target;
      if (!(t instanceof HTMLInputElement)) return;
      if (t.dataset.path) this.onToggle([t.dataset.path], t.checked);
      else if (t.dataset.folder !== undefined) this.onToggle(this.leavesUnder(t.dataset.folder), t.checked);
    });
    el.addEventListener('toggle', (ev) => {
      const d = ev.target;
      if (d instanceof HTMLDetailsElement) {
        if (d.open) this.open.add(d.dataset.prefix);
        else this.open.delete(d.dataset.prefix);
      }
    }, true);
  }

  /** Adds paths not seen before (in order of first appearance); true when any was new. */
  addPaths(paths) {
    let added = false;
    for (const p of paths) {
      if (this.known.has(p)) continue;
      this.known.add(p);
      this.paths.push(p);
      added = true;
    }
    return added;
  }

  setFilter(text) {
    this.filterText = text;
    this.render();
  }

  visible() {
    const match = pathFilter(this.filterText);
    return this.paths.filter(match).sort();
  }

  leavesUnder(prefix) {
    return this.visible().filter((p) => p.startsWith(prefix + '/'));
  }

  setSelected(selected) {
    this.selected = selected;
    for (const box of this.el.querySelectorAll('input[data-path]')) box.checked = selected.has(box.dataset.path);
  }

  render() {
    const all = this.visible();
    const shown = all.slice(0, LEAVES_SHOWN_MAX);
    const autoOpen = all.length <= AUTO_OPEN_LEAVES_MAX;
    const root = { children: new Map(), leaves: [] };
    for (const p of shown) {
      const parts = p.split('/').filter((x) => x !== '');
      let node = root;
      for (const part of parts.slice(0, -1)) {
        if (!node.children.has(part)) node.children.set(part, { children: new Map(), leaves: [] });
        node = node.children.get(part);
      }
      node.leaves.push(p);
    }
    const html = [];
    const walk = (node, prefix, depth) => {
      html.push(`<ul role="group">`);
      for (const [name, child] of node.children) {
        const full = `${prefix}/${name}`;
        const open = autoOpen || this.open.has(full) ? ' open' : '';
        html.push(`<li role="treeitem" aria-expanded="${open ? 'true' : 'false'}"><details data-prefix="${esc(full)}"${open}>`
          + `<summary><input type="checkbox" data-folder="${esc(full)}" aria-label="Select all under ${esc(full)}"> ${esc(name)}/</summary>`);
        walk(child, full, depth + 1);
        html.push('</details></li>');
      }
      for (const p of node.leaves) {
        const name = p.slice(p.lastIndexOf('/') + 1);
        const checked = this.selected.has(p) ? ' checked' : '';
        html.push(`<li role="treeitem"><label title="${esc(p)}"><input type="checkbox" data-path="${esc(p)}"${checked}> ${esc(name)}</label></li>`);
      }
      html.push('</ul>');
    };
    walk(root, '', 0);
    this.el.innerHTML = html.join('');
    this.countEl.textContent = all.length > shown.length
      ? `${shown.length} of ${all.length} paths shown: refine the filter`
      : `${all.length} of ${this.paths.length} paths`;
  }
}
