/**
 * The charts' pure parts, in Node: the unit rule and the axes it gives (units.js), the
 * layout check every layout from a URL or the server goes through (layout.js, hostile
 * input refused with a reason, never a throw), the time window's follow/zoom/pan rules
 * (view.js), a series' bounded store and exact lookup (series.js), the overlay alignment
 * that never lets a gap's null overwrite a point, and a state track's runs (state-track.js).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHART_LIMITS } from '../clients/web/chart-limits.js';
import { copyLayout, layoutProblem, type Layout } from '../clients/web/layout.js';
import { fits, placeFor } from '../clients/web/placement.js';
import { alignSeries, Series } from '../clients/web/series.js';
import { stateRuns } from '../clients/web/state-track.js';
import { assignAxes, unitOf } from '../clients/web/units.js';
import { FOLLOW, panned, viewFor, viewOfZoom, windowOf, zoomed, zoomOfView } from '../clients/web/view.js';

describe('unitOf', () => {
  it('reads the unit from the last segment by suffix, after a trailing _total', () => {
    const cases: Array<[string, string]> = [
      ['/fabric/sw-001/cpu_util_pct', '%'], ['/x/load%', '%'], ['/x/hit_ratio', 'ratio'],
      ['/x/rx_bytes_total', 'B'], ['/x/rx_bytes_per_s', 'B/s'], ['/fabric/sw-001/bandwidth_gbps', 'Gbit/s'],
      ['/x/rate_bps', 'bit/s'], ['/x/rx_pkts', 'packets'], ['/x/rx_pps', 'packets/s'],
      ['/fabric/sw-001/egress_drops_per_s', '/s'], ['/fabric/sw-001/temperature_c', '°C'], ['/x/t_celsius', '°C'],
      ['/fabric/sw-001/latency_us', 'µs'], ['/x/rtt_ms', 'ms'], ['/x/uptime_seconds', 's'], ['/x/age_s', 's'],
      ['/X/RTT_MS', 'ms'], ['/fabric/sw-001/packet_errors', ''], ['/x/status', ''], ['/x/_pct', ''], ['/a_pct/b', ''],
    ];
    for (const [path, unit] of cases) expect(unitOf(path), path).toBe(unit);
  });

  it('takes the unit from metadata over the rule', () => {
    expect(unitOf('/x/cpu_pct', 'W')).toBe('W');
    expect(unitOf('/x/cpu_pct', '')).toBe('%');
  });

  it('gives one axis per unit in order of appearance and refuses paths past the axes limit', () => {
    const paths = ['/a_pct', '/b_ms', '/c_pct', '/d_c', '/e', '/f_bytes', '/g_ms'];
    const { units, scaleOf, refused } = assignAxes(paths, (p) => unitOf(p), 4);
    expect(units).toEqual(['%', 'ms', '°C', '']);
    expect(refused).toEqual(['/f_bytes']);
    expect(scaleOf.get('/g_ms')).toBe('ms');
    expect(scaleOf.has('/f_bytes')).toBe(false);
  });
});

describe('placing a picked path', () => {
  const kinds: Record<string, 'number' | 'state'> = { '/n1': 'number', '/n2_pct': 'number', '/s1': 'state', '/s2': 'state' };
  const kindOf = (p: string): 'number' | 'state' | null => kinds[p] ?? (p.startsWith('/n') ? 'number' : 'state');
  const unit = (p: string): string => unitOf(p);

  it('joins the target panel when it fits, else a numeric path gets a panel before the trailing state panels', () => {
    const panels = [['/n1'], ['/s1']];
    expect(placeFor(panels, 0, '/n9_ms', 'number', kindOf, unit)).toEqual({ join: 0 });
    expect(placeFor(panels, -1, '/n9_ms', 'number', kindOf, unit)).toEqual({ insertAt: 1 });
    expect(placeFor([['/s1'], ['/s2']], -1, '/n9', 'number', kindOf, unit)).toEqual({ insertAt: 0 });
  });

  it('puts a non-numeric path in the last panel of state tracks only, else a new panel at the end', () => {
    expect(placeFor([['/s1'], ['/n1'], ['/s2']], -1, '/s9', 'state', kindOf, unit)).toEqual({ join: 2 });
    expect(placeFor([['/n1']], -1, '/s9', 'state', kindOf, unit)).toEqual({ insertAt: 1 });
    const full = Array.from({ length: CHART_LIMITS.pathsPerPanelMax }, (_, i) => `/s${i}x`);
    expect(placeFor([full], -1, '/s9', 'state', kindOf, unit)).toEqual({ insertAt: 1 });
  });

  it('refuses a fifth unit in a panel and a new panel past panelsMax', () => {
    const four = ['/na_pct', '/nb_ms', '/nc_c', '/nd'];
    expect(fits(four, '/ne_bytes', 'number', kindOf, unit)).toBe(false);
    expect(fits(four, '/ne_ms', 'number', kindOf, unit)).toBe(true); // ms has its axis
    expect(fits(four, '/s9', 'state', kindOf, unit)).toBe(true); // a state track needs no axis
    expect(fits(four, '/nb_ms', 'number', kindOf, unit)).toBe(false); // there already
    expect(placeFor([four], 0, '/ne_bytes', 'number', kindOf, unit)).toEqual({ insertAt: 1 });
    const twelve = Array.from({ length: CHART_LIMITS.panelsMax }, (_, i) => [`/n${i}`]);
    expect(placeFor(twelve, -1, '/n99', 'number', kindOf, unit)).toBeNull();
    expect(placeFor([...twelve.slice(1), ['/s1']], -1, '/s9', 'state', kindOf, unit)).toEqual({ join: 11 });
  });
});

describe('layoutProblem', () => {
  const ok: Layout = { v: 1, panels: [{ paths: ['/a', '/b'] }, { paths: ['/a'] }], zoom: { widthUs: 60_000_000, at: 0.5 } };

  it('takes a valid layout, and copyLayout keeps nothing of the caller', () => {
    expect(layoutProblem(ok)).toBeNull();
    expect(layoutProblem({ v: 1, panels: [] })).toBeNull();
    expect(layoutProblem({ v: 1, panels: [{ paths: ['/x'] }], zoom: { fromUs: 1, toUs: 1 + CHART_LIMITS.zoomWidthMinUs } })).toBeNull();
    const copy = copyLayout(ok);
    expect(copy).toEqual(ok);
    copy.panels[0]!.paths.push('/c');
    expect(ok.panels[0]!.paths).toEqual(['/a', '/b']);
  });

  it('refuses hostile and malformed layouts with a reason, without throwing', () => {
    const cyclic: Record<string, unknown> = { v: 1, panels: [] };
    cyclic.self = cyclic;
    const throwing = { v: 1, get panels(): never { throw new Error('boom'); } };
    const many = (n: number): unknown => ({ v: 1, panels: Array.from({ length: n }, (_, i) => ({ paths: [`/p${i}`] })) });
    const bad: Array<[unknown, RegExp]> = [
      [null, /not an object/], [[], /not an object/], ['{"v":1}', /not an object/], [42, /not an object/],
      [{ panels: [] }, /^v: /], [{ v: 2, panels: [] }, /^v: /], [{ v: 1 }, /panels: not an array/],
      [{ v: 1, panels: [], extra: 1 }, /unknown key "extra"/], [cyclic, /unknown key "self"/],
      [{ v: 1, panels: {} }, /panels: not an array/], [many(CHART_LIMITS.panelsMax + 1), /more than 12/],
      [{ v: 1, panels: [null] }, /panels\[0\]: not an object/], [{ v: 1, panels: [{ paths: [] }] }, /empty/],
      [{ v: 1, panels: [{ paths: ['/a'], title: 'x' }] }, /unknown key "title"/],
      [{ v: 1, panels: [{ paths: ['a'] }] }, /starts with "\/"/], [{ v: 1, panels: [{ paths: [7] }] }, /not a string/],
      [{ v: 1, panels: [{ paths: ['/a', '/a'] }] }, /twice/],
      [{ v: 1, panels: [{ paths: Array.from({ length: CHART_LIMITS.pathsPerPanelMax + 1 }, (_, i) => `/p${i}`) }] }, /more than 8 paths/],
      [{ v: 1, panels: [{ paths: ['/' + 'x'.repeat(CHART_LIMITS.pathCharsMax)] }] }, /longer than/],
      [{ v: 1, panels: Array.from({ length: 12 }, (_, i) => ({ paths: Array.from({ length: 8 }, (_, j) => `/${i}/${j}/${'y'.repeat(1000)}`) })) }, /larger than/],
      [{ v: 1, panels: [], zoom: null }, /zoom: not an object/], [{ v: 1, panels: [], zoom: { fromUs: 5, toUs: 4 } }, /narrower/],
      [{ v: 1, panels: [], zoom: { fromUs: 1.5, toUs: 9e9 } }, /integer/], [{ v: 1, panels: [], zoom: { widthUs: 1e9, at: 2 } }, /zoom.at/],
      [{ v: 1, panels: [], zoom: { widthUs: -1, at: 0 } }, /zoom.widthUs/], [{ v: 1, panels: [], zoom: { widthUs: 1e9, at: 0.5, x: 1 } }, /unknown key/],
      [{ v: 1, panels: [], zoom: { fromUs: 0, toUs: 1e9, at: 1 } }, /unknown key/], [throwing, /threw/],
    ];
    for (const [layout, reason] of bad) expect(layoutProblem(layout), JSON.stringify(String(layout)).slice(0, 80)).toMatch(reason);
  });

  it('never throws on arbitrary JSON (seeded)', () => {
    fc.assert(fc.property(fc.jsonValue(), (j) => {
      const p = layoutProblem(j);
      expect(p === null || typeof p === 'string').toBe(true);
    }), { seed: 18, numRuns: 2000 });
  });
});

describe('the time window', () => {
  it('follows the loaded range up to the playhead, and a zoom around the playhead keeps following', () => {
    expect(windowOf(FOLLOW, [100, 200], 250)).toEqual([100, 250]);
    expect(windowOf(FOLLOW, null, null)).toBeNull();
    const v = viewFor(180, 220, 200);
    expect(v).toEqual({ follow: true, widthS: 40, at: 0.5 });
    // Playing on: the window slides, the playhead stays at the same place in it.
    expect(windowOf(v, [100, 300], 300)).toEqual([280, 320]);
    expect(zoomOfView(v)).toEqual({ widthUs: 40_000_000, at: 0.5 });
    expect(viewOfZoom(zoomOfView(v))).toEqual(v);
  });

  it('fixes the window when a zoom or pan leaves the playhead out, and a reset follows again', () => {
    const v = viewFor(100, 150, 200);
    expect(v).toEqual({ follow: false, minS: 100, maxS: 150 });
    expect(windowOf(v, [0, 400], 400)).toEqual([100, 150]);
    expect(zoomOfView(v)).toEqual({ fromUs: 100_000_000, toUs: 150_000_000 });
    expect(panned([100, 150], 2, 200)).toEqual({ follow: true, widthS: 50, at: 0 });
    expect(zoomed([100, 200], 0.5, 100, 190)).toEqual({ follow: false, minS: 100, maxS: 150 });
    expect(zoomOfView(FOLLOW)).toBeUndefined();
    expect(viewOfZoom(undefined)).toBe(FOLLOW);
  });

  it('never makes a window narrower than the limit', () => {
    const v = viewFor(5, 5, null);
    expect(v.follow).toBe(false);
    const w = windowOf(v, null, null)!;
    expect(w[1] - w[0]).toBeCloseTo(CHART_LIMITS.zoomWidthMinUs / 1e6, 9);
  });
});

describe('Series', () => {
  it('keeps exact µs and wire values, drops an older update, and finds the last update at or before a time', () => {
    const s = new Series('/a');
    s.push(1_800_000_000_000_001, 1.5);
    s.push(1_800_000_000_000_003, { $bigint: '18446744073709551615' });
    expect(s.push(1_800_000_000_000_002, 9)).toBe(false);
    expect(s.kind).toBe('number');
    expect(s.tsUs).toEqual([1_800_000_000_000_001, 1_800_000_000_000_003]);
    expect(s.wire[1]).toEqual({ $bigint: '18446744073709551615' });
    expect(s.indexAt(1_800_000_000_000_000)).toBe(-1);
    expect(s.indexAt(1_800_000_000_000_002)).toBe(0);
    expect(s.indexAt(1_800_000_000_000_003)).toBe(1);
    expect(s.indexAt(Number.MAX_SAFE_INTEGER)).toBe(1);
  });

  it('takes its kind from the first value other than null (a path known without a value is neither)', () => {
    const s = new Series('/a');
    s.push(1, null);
    expect(s.kind).toBeNull();
    s.push(2, 7);
    s.push(3, 'text');
    expect(s.kind).toBe('number');
    const t = new Series('/b');
    t.prepend([1, 2, 3], ['on', null, null]);
    expect(t.kind).toBe('state');
  });

  it('keeps at most pointsPerSeriesMax, the newest, and prepends only older history', () => {
    const s = new Series('/a');
    const max = CHART_LIMITS.pointsPerSeriesMax;
    for (let i = 0; i < 2 * max; i++) s.push(1000 + i, i);
    expect(s.tsUs.length).toBeLessThanOrEqual(max * 1.25);
    expect(s.tsUs.at(-1)).toBe(1000 + 2 * max - 1);
    const t = new Series('/b');
    t.push(50, 5);
    t.prepend([10, 20, 50, 60], [1, 2, 5, 6]);
    expect(t.tsUs).toEqual([10, 20, 50]);
    t.prepend([10, 20], [1, 2]);
    expect(t.tsUs).toEqual([10, 20, 50]);
  });
});

describe('alignSeries', () => {
  it('merges the x of several series, keeps duplicates so a gap null never hides a point, and marks absent points undefined', () => {
    const a: [number[], Array<number | null>] = [[1, 2, 2, 4], [10, 20, null, 40]];
    const b: [number[], Array<number | null>] = [[2, 3], [200, 300]];
    const [xs, ya, yb] = alignSeries([a, b]);
    expect(xs).toEqual([1, 2, 2, 2, 3, 4]);
    expect(ya).toEqual([10, 20, null, undefined, undefined, 40]);
    expect(yb).toEqual([undefined, undefined, undefined, 200, 300, undefined]);
  });

  it('keeps every point of every series at its x (seeded)', () => {
    const sorted = fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 30 }).map((a) => a.sort((x, y) => x - y));
    fc.assert(fc.property(fc.array(sorted, { minLength: 2, maxLength: 5 }), (xss) => {
      const tables = xss.map((xs, s) => [xs, xs.map((x) => s * 1000 + x)] as [number[], number[]]);
      const [xs, ...cols] = alignSeries(tables);
      expect(xs).toEqual([...xs!].sort((p, q) => (p as number) - (q as number)));
      tables.forEach(([txs, tys], s) => {
        const got = xs!.map((x, i) => [x, cols[s]![i]]).filter(([, y]) => y !== undefined);
        expect(got).toEqual(txs.map((x, i) => [x, tys[i]]));
      });
    }), { seed: 18, numRuns: 300 });
  });
});

describe('stateRuns', () => {
  it('makes one run per change, ends the last at the playhead, and stops a run at a gap it runs into', () => {
    const s = new Series('/mode');
    for (const [t, v] of [[1, 'a'], [2, 'a'], [3, 'b'], [7, 'c']] as const) s.push(t * 1e6, v);
    expect(stateRuns(s, [], 0, 100, 9)).toEqual([{ fromS: 1, toS: 3, i: 0 }, { fromS: 3, toS: 7, i: 2 }, { fromS: 7, toS: 9, i: 3 }]);
    expect(stateRuns(s, [[5, 6]], 0, 100, 9)).toEqual([{ fromS: 1, toS: 3, i: 0 }, { fromS: 3, toS: 5, i: 2 }, { fromS: 7, toS: 9, i: 3 }]);
    expect(stateRuns(s, [], 4, 6, 9)).toEqual([{ fromS: 3, toS: 7, i: 2 }]);
  });

  it('starts a new run after a gap even when the value is the same as before it', () => {
    const s = new Series('/up');
    for (const [t, v] of [[1, true], [2, true], [6, true], [8, false]] as const) s.push(t * 1e6, v);
    expect(stateRuns(s, [[3, 5]], 0, 100, 9)).toEqual([{ fromS: 1, toS: 3, i: 0 }, { fromS: 6, toS: 8, i: 2 }, { fromS: 8, toS: 9, i: 3 }]);
  });
});
