// The path tree: paths split on "/", folders as <details>, leaves as checkboxes. A folder's
// checkbox selects every leaf under it that the filter shows. Rendering is capped so that
// a huge archive, or hostile names, keep the page responsive: at most LEAVES_SHOWN_MAX
// leaves and FOLDERS_SHOWN_MAX folders a folder (refine the filter to see the rest), and
// folders nest at most FOLDER_DEPTH_SHOWN_MAX deep: a deeper path (a name may have 2 000
// segments) is a leaf of the deepest folder shown, named by the rest of its path. A leaf can be dragged
// onto a chart panel (charts.js), carrying its path as PATH_DRAG_TYPE (and as text).
import { filterProblem, pathFilter, shownPath } from './values.js';

/** The drag payload type of a path dragged from the tree. */
export const PATH_DRAG_TYPE = 'application/x-tapedeck-path';
const LEAVES_SHOWN_MAX = 2000;
const FOLDERS_SHOWN_MAX = 2000;
/** Chromium froze laying out 2 000 nested folders; its HTML parser flattens markup nested past 512 elements (3 a level here). */
const FOLDER_DEPTH_SHOWN_MAX = 24;

/**
 * The path a drag event carries from the tree, or null for any other drag. During dragover
 * the browser hides the data (only its type shows): any path-like answer then says "a path".
 */
export function pathOfDrag(ev) {
  const dt = ev.dataTransfer;
  if (!dt || !dt.types.includes(PATH_DRAG_TYPE)) return null;
  const path = dt.getData(PATH_DRAG_TYPE);
  if (ev.type !== 'drop') return path || '/';
  return path.startsWith('/') ? path : null;
}
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
    el.addEventListener('dragstart', (ev) => {
      const leaf = ev.target instanceof HTMLElement ? ev.target.closest('label[data-drag-path]') : null;
      if (!leaf || !ev.dataTransfer) return;
      ev.dataTransfer.setData(PATH_DRAG_TYPE, leaf.dataset.dragPath);
      ev.dataTransfer.setData('text/plain', leaf.dataset.dragPath);
      ev.dataTransfer.effectAllowed = 'copy';
    });
    el.addEventListener('toggle', (ev) => {
      const d = ev.target;
      if (d instanceof HTMLDetailsElement) {
        if (d.open) {
          this.open.add(d.dataset.prefix);
          this.fill(d);
        } else {
          this.open.delete(d.dataset.prefix);
        }
        d.parentElement?.setAttribute('aria-expanded', String(d.open));
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
    this.autoOpen = all.length <= AUTO_OPEN_LEAVES_MAX;
    const root = { children: new Map(), leaves: [] };
    this.nodes = new Map([['', root]]);
    this.leafNames = new Map(); // path -> its name under a folder at the depth cap
    for (const p of all) {
      const parts = p.split('/').filter((x) => x !== '');
      let node = root;
      let prefix = '';
      if (parts.length - 1 > FOLDER_DEPTH_SHOWN_MAX) this.leafNames.set(p, parts.slice(FOLDER_DEPTH_SHOWN_MAX).join('/'));
      for (const part of parts.slice(0, Math.min(parts.length - 1, FOLDER_DEPTH_SHOWN_MAX))) {
        prefix += `/${part}`;
        let child = node.children.get(part);
        if (!child) {
          child = { children: new Map(), leaves: [] };
          node.children.set(part, child);
          this.nodes.set(prefix, child);
        }
        node = child;
      }
      node.leaves.push(p);
    }
    this.el.innerHTML = this.level(root, '');
    const problem = filterProblem(this.filterText);
    this.countEl.textContent = problem ?? `${all.length} of ${this.paths.length} paths`;
  }

  /** One folder's contents; sub-folders are filled when opened (fillOpened). */
  level(node, prefix) {
    const html = ['<ul role="group">'];
    let folders = 0;
    for (const [name, child] of node.children) {
      if (++folders > FOLDERS_SHOWN_MAX) break;
      const full = `${prefix}/${name}`;
      const open = this.autoOpen || this.open.has(full);
      html.push(`<li role="treeitem" aria-expanded="${open}"><details data-prefix="${esc(full)}"${open ? ' open' : ''}>`
        + `<summary><input type="checkbox" data-folder="${esc(full)}" aria-label="Select all under ${esc(shownPath(full))}"> ${esc(shownPath(name))}/ <span class="n">${countLeaves(child)}</span></summary>`
        + (open ? this.level(child, full) : '') + '</details></li>');
    }
    const leaves = node.leaves.slice(0, LEAVES_SHOWN_MAX);
    for (const p of leaves) {
      const name = this.leafNames.get(p) ?? p.slice(p.lastIndexOf('/') + 1);
      const checked = this.selected.has(p) ? ' checked' : '';
      html.push(`<li role="treeitem"><label title="${esc(shownPath(p))} (drag onto a chart to add it there)" draggable="true" data-drag-path="${esc(p)}"><input type="checkbox" data-path="${esc(p)}"${checked}> ${esc(shownPath(name))}</label></li>`);
    }
    if (node.children.size > FOLDERS_SHOWN_MAX) html.push(`<li class="more">${node.children.size - FOLDERS_SHOWN_MAX} more folders: refine the filter</li>`);
    if (node.leaves.length > leaves.length) html.push(`<li class="more">${node.leaves.length - leaves.length} more: refine the filter</li>`);
    html.push('</ul>');
    return html.join('');
  }

  /** A folder was opened: render its contents once. */
  fill(details) {
    if (details.querySelector(':scope > ul')) return;
    const node = this.nodes?.get(details.dataset.prefix);
    if (node) details.insertAdjacentHTML('beforeend', this.level(node, details.dataset.prefix));
  }
}

function countLeaves(node) {
  if (node.count === undefined) {
    let n = node.leaves.length;
    for (const c of node.children.values()) n += countLeaves(c);
    node.count = n;
  }
  return node.count;
}
