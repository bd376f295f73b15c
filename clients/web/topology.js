// The topology view (docs/web-player.md, "Topology"): the paths of the session shaped as
// nodes and links, drawn as a graph (SVG, a deterministic layout) whose links are coloured by
// a chosen metric as the session plays. Everything comes from the session's frames: the
// structure (which node a link joins) is itself recorded values, so a topology that changes
// over time is drawn as it was at the position.
//
// Two shapes are read (the shape rule; any prefix, several at once):
//   edge lists, as the simulator's twin graph is recorded (`mode: "leaves"`):
//     <prefix>/edges/<i>/src, <prefix>/edges/<i>/dst     the link's two nodes (strings)
//     <prefix>/edges/<i>/<metric>                        its metrics (numbers)
//     <prefix>/nodes/<i>/id, <prefix>/nodes/<i>/role     nodes, also those without links
//   link paths:
//     <prefix>/links/<a>--<b>/<metric>                   a link between nodes a and b
//
// Pure parts (graphOf, layoutOf, domainOf, colourOf) are exported for tests; the view keeps
// only the values of those paths.
import { chartNumber, formatValue, reviveValue } from './values.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const METRIC_KEY = 'tapedeck.topologyMetric';

/** Drawing bounds: past them the view says how many it left out rather than freeze the tab. */
export const TOPOLOGY_LIMITS = { nodesMax: 500, linksMax: 2000 };

const EDGE_PATH = /^(.*)\/edges\/([^/]+)\/([^/]+)$/;
const NODE_PATH = /^(.*)\/nodes\/([^/]+)\/(id|role)$/;
const LINK_PATH = /^(.*)\/links\/([^/]+?)--([^/]+)\/([^/]+)$/;

/** Sequential scale, low to high (ColorBrewer RdYlBu reversed: calm blue, alarming red). */
export const SCALE_STOPS = ['#2c7bb6', '#abd9e9', '#ffffbf', '#fdae61', '#d7191c'];
/** A link whose metric has no number at the position. */
export const NO_VALUE_COLOUR = '#9aa0a6';

/** What a path is to the topology, or null: it is not shaped as part of one. */
export function topologyRole(path) {
  let m = LINK_PATH.exec(path);
  if (m) return { kind: 'link', key: `${m[1]}/links/${m[2]}--${m[3]}`, a: m[2], b: m[3], field: m[4] };
  m = NODE_PATH.exec(path);
  if (m) return { kind: 'node', key: `${m[1]}/nodes/${m[2]}`, field: m[3] };
  m = EDGE_PATH.exec(path);
  if (m) return { kind: 'edge', key: `${m[1]}/edges/${m[2]}`, field: m[3] };
  return null;
}

/** True when a change of this path changes the graph's structure (not only a colour). */
function structural(role) {
  return role.kind === 'node' || (role.kind === 'edge' && (role.field === 'src' || role.field === 'dst'));
}

const text = (v) => {
  const x = reviveValue(v);
  return typeof x === 'string' && x !== '' ? x : typeof x === 'number' || typeof x === 'bigint' ? String(x) : null;
};

/**
 * The graph in `values` (Map path -> wire value): nodes { id, role } and links
 * { key, a, b, metrics: Map metric -> path }, both sorted (the layout depends on nothing else).
 */
export function graphOf(values) {
  const edges = new Map();
  const nodeRows = new Map();
  const links = new Map();
  const linkOf = (key, a, b) => {
    let l = links.get(key);
    if (!l) links.set(key, (l = { key, a, b, metrics: new Map() }));
    return l;
  };
  for (const [path, v] of values) {
    const r = topologyRole(path);
    if (!r) continue;
    if (r.kind === 'link') {
      linkOf(r.key, r.a, r.b).metrics.set(r.field, path);
    } else if (r.kind === 'node') {
      const row = nodeRows.get(r.key) ?? {};
      row[r.field] = text(v);
      nodeRows.set(r.key, row);
    } else {
      const e = edges.get(r.key) ?? { metrics: new Map() };
      if (r.field === 'src' || r.field === 'dst') e[r.field] = text(v);
      else e.metrics.set(r.field, path);
      edges.set(r.key, e);
    }
  }
  for (const [key, e] of edges) {
    if (e.src && e.dst) Object.assign(linkOf(key, e.src, e.dst), { metrics: e.metrics });
  }
  const nodes = new Map();
  for (const row of nodeRows.values()) if (row.id) nodes.set(row.id, { id: row.id, role: row.role ?? null });
  for (const l of links.values()) {
    for (const id of [l.a, l.b]) if (!nodes.has(id)) nodes.set(id, { id, role: null });
  }
  const byId = (x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
  const byKey = (x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
  return { nodes: [...nodes.values()].sort(byId), links: [...links.values()].sort(byKey) };
}

/**
 * Positions (Map id -> {x, y}) in a width x height box. Nodes with a role: one row per role,
 * the row with fewer nodes above (spines over leaves), nodes in id order. Nodes without one:
 * a circle in id order, beside the rows when there are both (a polygon, so no link of a
 * small ring runs through a node). Deterministic: the same graph is drawn the same way.
 */
export function layoutOf(nodes, width, height) {
  const pos = new Map();
  const roled = nodes.filter((n) => n.role !== null);
  const plain = nodes.filter((n) => n.role === null);
  const split = roled.length > 0 && plain.length > 0 ? Math.round(width * 0.68) : roled.length > 0 ? width : 0;
  rowsIn(roled, { x: 0, y: 0, w: split, h: height }, pos);
  circleIn(plain, { x: split, y: 0, w: width - split, h: height }, pos);
  return pos;
}

const PAD = 40;

function rowsIn(nodes, box, pos) {
  const rows = new Map();
  for (const n of nodes) {
    if (!rows.has(n.role)) rows.set(n.role, []);
    rows.get(n.role).push(n);
  }
  const ordered = [...rows.entries()].sort((x, y) => x[1].length - y[1].length || (x[0] < y[0] ? -1 : 1));
  ordered.forEach(([, row], r) => {
    const y = box.y + (ordered.length === 1 ? box.h / 2 : PAD + (r * (box.h - 2 * PAD)) / (ordered.length - 1));
    row.forEach((n, i) => pos.set(n.id, { x: box.x + PAD + ((i + 0.5) * (box.w - 2 * PAD)) / row.length, y }));
  });
}

function circleIn(nodes, box, pos) {
  const r = Math.max(10, Math.min(box.w, box.h) / 2 - PAD);
  nodes.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, nodes.length);
    pos.set(n.id, { x: box.x + box.w / 2 + r * Math.cos(a), y: box.y + box.h / 2 + r * Math.sin(a) });
  });
}

/** True for metrics read as a percentage: their scale is 0 to 100 whatever the values. */
export function isPercent(metric) {
  return /(_pct|_percent|percent|utilization)$/i.test(metric);
}

/**
 * The scale's [lo, hi] for `metric`: 0-100 for percentages, else the lowest and highest
 * value seen since the metric was chosen (`seen`, widened as the session plays: a colour
 * keeps its meaning while playing forward).
 */
export function domainOf(metric, seen) {
  if (isPercent(metric)) return [0, 100];
  if (!seen) return [0, 1];
  return seen[0] === seen[1] ? [seen[0], seen[0] + 1] : seen;
}

function hexToRgb(h) {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

/** The colour of `value` on the scale over [lo, hi] (clamped); NO_VALUE_COLOUR for null. */
export function colourOf(value, [lo, hi]) {
  if (value === null || value === undefined || !Number.isFinite(value)) return NO_VALUE_COLOUR;
  const t = Math.min(1, Math.max(0, (value - lo) / (hi - lo)));
  const x = t * (SCALE_STOPS.length - 1);
  const i = Math.min(SCALE_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(SCALE_STOPS[i]);
  const b = hexToRgb(SCALE_STOPS[i + 1]);
  return '#' + a.map((c, k) => Math.round(c + (b[k] - c) * f).toString(16).padStart(2, '0')).join('');
}

function el(name, attrs = {}, ns = SVG_NS) {
  const e = document.createElementNS(ns, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export class TopologyView {
  /** `root`: the view's container (a <details>: drawn while open). */
  constructor(root) {
    this.root = root;
    this.values = new Map();
    this.graph = { nodes: [], links: [] };
    this.layout = new Map();
    this.dirtyGraph = true;
    this.seen = null;
    this.metric = localStorage.getItem(METRIC_KEY);
    this.posUs = null;
    this.frame = 0;
    this.body = root.querySelector('.topo-body');
    this.select = root.querySelector('.topo-metric');
    this.legend = root.querySelector('.topo-legend');
    this.note = root.querySelector('.topo-note');
    this.svg = el('svg', { class: 'topo-graph', role: 'img', 'aria-label': 'Topology' });
    this.body.append(this.svg);
    this.select.addEventListener('change', () => this.choose(this.select.value));
    root.addEventListener('toggle', () => this.schedule());
  }

  /** A state frame: the values at the position (only the topology's paths are kept). */
  reset(ts, values) {
    this.values.clear();
    for (const [p, v] of Object.entries(values)) if (topologyRole(p)) this.values.set(p, v);
    this.posUs = ts;
    this.dirtyGraph = true;
    this.schedule();
  }

  /** A batch: its updates of the topology's paths. */
  apply(ts, updates) {
    for (const [p, v] of updates) {
      const r = topologyRole(p);
      if (!r) continue;
      if (structural(r) || !this.values.has(p)) this.dirtyGraph = true;
      this.values.set(p, v);
    }
    this.posUs = ts;
    this.schedule();
  }

  choose(metric) {
    this.metric = metric;
    this.seen = null;
    localStorage.setItem(METRIC_KEY, metric);
    this.schedule();
  }

  /** Draws once per animation frame however many batches came (a burst, unlimited speed). */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.root.open) this.render();
    });
  }

  /** Metric names on the links, sorted; the chosen one, or the first percentage, or the first. */
  metrics() {
    const names = new Set();
    for (const l of this.graph.links) for (const m of l.metrics.keys()) names.add(m);
    const list = [...names].sort();
    if (!list.includes(this.metric)) this.metric = list.find(isPercent) ?? list[0] ?? null;
    return list;
  }

  render() {
    const box = this.body.getBoundingClientRect();
    const width = Math.max(320, Math.round(box.width) || 640);
    const height = Math.max(240, Math.round(width * 0.45));
    if (this.dirtyGraph || this.width !== width) {
      this.graph = graphOf(this.values);
      this.layout = layoutOf(this.graph.nodes.slice(0, TOPOLOGY_LIMITS.nodesMax), width, height);
      this.width = width;
      this.dirtyGraph = false;
      this.fillMetrics();
    }
    const numbers = this.graph.links.map((l) => {
      const p = l.metrics.get(this.metric);
      return p === undefined ? null : chartNumber(this.values.get(p));
    });
    for (const x of numbers) {
      if (x === null) continue;
      this.seen = this.seen ? [Math.min(this.seen[0], x), Math.max(this.seen[1], x)] : [x, x];
    }
    const domain = domainOf(this.metric ?? '', this.seen);
    this.draw(width, height, numbers, domain);
    this.drawLegend(domain);
  }

  fillMetrics() {
    const list = this.metrics();
    this.select.replaceChildren(...list.map((m) => new Option(m, m, false, m === this.metric)));
    this.select.disabled = list.length === 0;
  }

  draw(width, height, numbers, domain) {
    const svg = this.svg;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.dataset.posUs = this.posUs === null ? '' : String(this.posUs);
    svg.dataset.metric = this.metric ?? '';
    const shown = this.graph.links.slice(0, TOPOLOGY_LIMITS.linksMax).filter((l) => this.layout.has(l.a) && this.layout.has(l.b));
    const links = shown.map((l) => {
      const value = numbers[this.graph.links.indexOf(l)];
      const a = this.layout.get(l.a);
      const b = this.layout.get(l.b);
      const colour = colourOf(value, domain);
      const line = el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, stroke: colour, class: value === null ? 'topo-link topo-none' : 'topo-link' });
      Object.assign(line.dataset, { key: l.key, a: l.a, b: l.b, colour, value: value === null ? '' : String(value) });
      const path = l.metrics.get(this.metric);
      const title = el('title');
      title.textContent = `${l.a} — ${l.b}\n${this.metric ?? 'no metric'} = ${path === undefined ? '—' : formatValue(this.values.get(path))}${path ? `\n${path}` : ''}`;
      line.append(title);
      return line;
    });
    const nodes = this.graph.nodes.filter((n) => this.layout.has(n.id)).map((n) => {
      const { x, y } = this.layout.get(n.id);
      const g = el('g', { class: `topo-node${n.role ? ` topo-role-${n.role.replace(/[^\w-]/g, '_')}` : ''}`, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
      g.dataset.id = n.id;
      // Labels outside the drawing: above the upper half's nodes, below the lower half's.
      const label = el('text', { y: y > height / 2 ? 22 : -12, 'text-anchor': 'middle' });
      label.textContent = n.id;
      const title = el('title');
      title.textContent = n.role ? `${n.id} (${n.role})` : n.id;
      g.append(el('circle', { r: 7 }), label, title);
      return g;
    });
    svg.replaceChildren(el('g', { class: 'topo-links' }), el('g', { class: 'topo-nodes' }));
    svg.firstChild.append(...links);
    svg.lastChild.append(...nodes);
    const left = Math.max(0, this.graph.links.length - shown.length) + Math.max(0, this.graph.nodes.length - nodes.length);
    this.note.textContent = this.graph.links.length === 0
      ? 'No topology among the paths at this position: see the shapes in the docs (…/edges/<i>/src|dst, …/links/<a>--<b>/<metric>).'
      : left > 0 ? `${left} nodes or links not drawn (more than the view's bounds).` : '';
  }

  drawLegend([lo, hi]) {
    const fmt = (x) => (Math.abs(x) >= 1000 || Number.isInteger(x) ? String(Math.round(x)) : x.toPrecision(3));
    const bar = `linear-gradient(to right, ${SCALE_STOPS.join(', ')})`;
    this.legend.replaceChildren();
    if (!this.metric) return;
    const name = document.createElement('span');
    name.className = 'topo-legend-name';
    name.textContent = this.metric;
    const low = document.createElement('span');
    low.textContent = fmt(lo);
    low.dataset.lo = String(lo);
    const ramp = document.createElement('i');
    ramp.className = 'topo-ramp';
    ramp.style.background = bar;
    const high = document.createElement('span');
    high.textContent = fmt(hi);
    high.dataset.hi = String(hi);
    const none = document.createElement('span');
    none.className = 'topo-legend-none';
    none.innerHTML = `<i style="background:${NO_VALUE_COLOUR}"></i>no value`;
    this.legend.append(name, low, ramp, high, none);
  }
}

/** Wires the view in `root` (the #topology-panel block of index.html) to a PlayerSession. */
export function initTopology(session, root) {
  if (!root) return null;
  if (!document.querySelector('link[href="/topology.css"]')) {
    document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/topology.css' }));
  }
  const view = new TopologyView(root);
  session.addEventListener('frame', (ev) => {
    const f = ev.detail;
    if (f.type === 'state') view.reset(f.ts, f.values);
    else if (f.type === 'batch') view.apply(f.ts, f.updates);
    else if (f.type === 'batches') for (const b of f.batches) view.apply(b.ts, b.updates);
  });
  return view;
}
