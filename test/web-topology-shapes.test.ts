/**
 * The topology view's pure parts (clients/web/topology.js) in Node: which paths make nodes
 * and links (the shape rule of docs/web-player.md, "Topology"), malformed and hostile
 * shapes, the deterministic layout, and the colour scale.
 */
import { describe, expect, it } from 'vitest';
import { buildWebProtocol } from '../scripts/build-web.mjs';

// topology.js reads values through values.js, which imports the protocol bundle: build it first.
await buildWebProtocol();
const { colourOf, domainOf, graphOf, isPercent, layoutOf, NO_VALUE_COLOUR, SCALE_STOPS, topologyRole } = await import('../clients/web/topology.js');

const twin = (): Map<string, unknown> => new Map<string, unknown>([
  ['/twin/graph/nodes/0/id', 'sw-000'], ['/twin/graph/nodes/0/role', 'spine'],
  ['/twin/graph/nodes/1/id', 'sw-001'], ['/twin/graph/nodes/1/role', 'leaf'],
  ['/twin/graph/nodes/2/id', 'sw-002'], ['/twin/graph/nodes/2/role', 'leaf'],
  ['/twin/graph/edges/0/src', 'sw-001'], ['/twin/graph/edges/0/dst', 'sw-000'], ['/twin/graph/edges/0/utilization_pct', 40],
  ['/twin/graph/edges/1/src', 'sw-002'], ['/twin/graph/edges/1/dst', 'sw-000'], ['/twin/graph/edges/1/utilization_pct', { $bigint: '90' }],
  ['/fabric/sw-000/cpu_util_pct', 12],
]);

describe('the shape rule', () => {
  it('reads the twin graph recorded as leaves: edges between the named nodes, with their metrics', () => {
    const g = graphOf(twin());
    expect(g.nodes).toEqual([{ id: 'sw-000', role: 'spine' }, { id: 'sw-001', role: 'leaf' }, { id: 'sw-002', role: 'leaf' }]);
    expect(g.links.map((l) => [l.key, l.a, l.b, [...l.metrics]])).toEqual([
      ['/twin/graph/edges/0', 'sw-001', 'sw-000', [['utilization_pct', '/twin/graph/edges/0/utilization_pct']]],
      ['/twin/graph/edges/1', 'sw-002', 'sw-000', [['utilization_pct', '/twin/graph/edges/1/utilization_pct']]],
    ]);
  });

  it('reads link paths <prefix>/links/<a>--<b>/<metric>, the first "--" splitting the pair', () => {
    const g = graphOf(new Map<string, unknown>([['/lab/links/r1--r2/latency_ms', 3], ['/lab/links/r1--r2/loss_pct', 0], ['/x/links/a--b--c/m', 1]]));
    expect(g.links.map((l) => [l.a, l.b, [...l.metrics.keys()].sort()])).toEqual([['r1', 'r2', ['latency_ms', 'loss_pct']], ['a', 'b--c', ['m']]]);
    expect(g.nodes.map((n) => n.id)).toEqual(['a', 'b--c', 'r1', 'r2']);
  });

  it('leaves out edges without both ends, ends that are not names, and unrelated paths', () => {
    const g = graphOf(new Map<string, unknown>([
      ['/t/edges/0/src', 'a'],
      ['/t/edges/0/load', 1],
      ['/t/edges/1/src', null], ['/t/edges/1/dst', 'b'],
      ['/t/edges/2/src', ''], ['/t/edges/2/dst', 'b'],
      ['/t/edges/3/src', { nested: 1 }], ['/t/edges/3/dst', 'b'],
      ['/t/edges', 'x'], ['/t/links/nodash/m', 1], ['/t/nodes/0/id', null],
    ]));
    expect(g).toEqual({ nodes: [], links: [] });
    expect(topologyRole('/fabric/sw-000/cpu_util_pct')).toBeNull();
  });

  it('keeps hostile names as names (the view writes them as text, never markup)', () => {
    const g = graphOf(new Map<string, unknown>([['/t/edges/0/src', '<img src=x onerror=alert(1)>'], ['/t/edges/0/dst', '"><script>'], ['/t/edges/0/m', 1]]));
    expect(g.nodes.map((n) => n.id).sort()).toEqual(['"><script>', '<img src=x onerror=alert(1)>']);
  });
});

describe('the layout', () => {
  it('puts one row per role, the smaller row on top, in name order; the same graph the same way', () => {
    const g = graphOf(twin());
    const p = layoutOf(g.nodes, 600, 300);
    expect(p.get('sw-000')!.y).toBeLessThan(p.get('sw-001')!.y);
    expect(p.get('sw-001')!.y).toBe(p.get('sw-002')!.y);
    expect(p.get('sw-001')!.x).toBeLessThan(p.get('sw-002')!.x);
    expect(layoutOf(graphOf(twin()).nodes, 600, 300)).toEqual(p);
  });

  it('puts nodes without a role on a ring, inside the box, no two at one place', () => {
    const nodes = Array.from({ length: 40 }, (_, i) => ({ id: `n${String(i).padStart(2, '0')}`, role: null }));
    const p = layoutOf(nodes, 500, 300);
    const seen = new Set<string>();
    for (const { x, y } of p.values()) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(500);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(300);
      seen.add(`${x.toFixed(1)},${y.toFixed(1)}`);
    }
    expect(seen.size).toBe(40);
  });
});

describe('the colour scale', () => {
  it('runs from the first stop to the last, clamped, grey without a number', () => {
    expect(colourOf(0, [0, 100])).toBe(SCALE_STOPS[0]);
    expect(colourOf(100, [0, 100])).toBe(SCALE_STOPS[SCALE_STOPS.length - 1]);
    expect(colourOf(50, [0, 100])).toBe(SCALE_STOPS[2]);
    expect(colourOf(-5, [0, 100])).toBe(SCALE_STOPS[0]);
    expect(colourOf(1e9, [0, 100])).toBe(SCALE_STOPS[SCALE_STOPS.length - 1]);
    for (const v of [null, undefined, NaN, Infinity]) expect(colourOf(v, [0, 100])).toBe(NO_VALUE_COLOUR);
    expect(colourOf(30, [0, 100])).not.toBe(colourOf(31, [0, 100]));
  });

  it('spans 0-100 for percentages, else what was seen (never an empty span)', () => {
    expect(isPercent('utilization_pct')).toBe(true);
    expect(isPercent('load_gbps')).toBe(false);
    expect(domainOf('loss_pct', [3, 7])).toEqual([0, 100]);
    expect(domainOf('latency_ms', [3, 7])).toEqual([3, 7]);
    expect(domainOf('latency_ms', [5, 5])).toEqual([5, 6]);
    expect(domainOf('latency_ms', null)).toEqual([0, 1]);
  });
});
