/**
 * The topology view of the web player in Chromium against a real server: a twin graph as
 * the simulator's is recorded (/twin/graph/nodes/<i>/..., /twin/graph/edges/<i>/src|dst|
 * <metric>, two spines over four leaves) and a set of link paths (/lab/links/<a>--<b>/
 * latency_ms). As the session plays (play-next, burst), every link's colour follows its
 * metric, and equals the scale's colour of the value GET /api/v1/state?at= answers at that
 * position. A screenshot goes to docs/img/web-topology.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Batch, Update } from '../protocol/value.js';
import { artifactPath, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { api, startServer, type TestServer } from './helpers/server.js';

// Globals of the page, for the functions Playwright runs there (tests compile without the DOM lib).
interface PageElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): PageElement[];
};
declare const window: { tapedeck: { session: { playNext(): boolean; burst(n: number): boolean } } };

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;
const SPINES = ['sw-000', 'sw-001'];
const LEAVES = ['sw-002', 'sw-003', 'sw-004', 'sw-005'];
/** Edge e joins LEAVES[e >> 1] and SPINES[e & 1]. */
const EDGES = LEAVES.length * SPINES.length;
const LAB = [['r1', 'r2'], ['r2', 'r3'], ['r3', 'r1']] as const;

/** Utilization of edge e at batch i: moves every batch, differently per edge. */
const util = (i: number, e: number): number => (i * 17 + e * 29) % 101;
const latency = (i: number, l: number): number => 1 + ((i * 3 + l * 5) % 40) / 4;

/**
 * Batch 0 holds the structure and every metric; batch i > 0 changes the utilization of the
 * edges with e % 3 !== i % 3 (so a link keeps its value across some batches) and one latency.
 */
function batch(i: number): Batch {
  const u: Update[] = [];
  if (i === 0) {
    [...SPINES, ...LEAVES].forEach((id, n) => u.push([`/twin/graph/nodes/${n}/id`, id], [`/twin/graph/nodes/${n}/role`, SPINES.includes(id) ? 'spine' : 'leaf']));
    for (let e = 0; e < EDGES; e++) {
      u.push([`/twin/graph/edges/${e}/src`, LEAVES[e >> 1]!], [`/twin/graph/edges/${e}/dst`, SPINES[e & 1]!], [`/twin/graph/edges/${e}/capacity_gbps`, 100]);
    }
  }
  for (let e = 0; e < EDGES; e++) {
    if (i === 0 || e % 3 !== i % 3) u.push([`/twin/graph/edges/${e}/utilization_pct`, util(i, e)], [`/twin/graph/edges/${e}/load_gbps`, util(i, e) / 2]);
  }
  LAB.forEach(([a, b], l) => {
    if (i === 0 || l === i % 3) u.push([`/lab/links/${a}--${b}/latency_ms`, latency(i, l)]);
  });
  u.push(['/other/noise', i]);
  return { ts: T0 + i * S, updates: u };
}

interface DrawnLink { key: string; a: string; b: string; value: string; colour: string; stroke: string | null }

const drawnLinks = (page: Page): Promise<DrawnLink[]> => page.evaluate(() => [...document.querySelectorAll('#topology-panel line.topo-link')].map((l) => ({
  key: l.dataset.key ?? '', a: l.dataset.a ?? '', b: l.dataset.b ?? '', value: l.dataset.value ?? '', colour: l.dataset.colour ?? '', stroke: l.getAttribute('stroke'),
})));

const waitDrawnAt = (page: Page, us: number): Promise<unknown> =>
  page.waitForFunction((t) => document.querySelector('#topology-panel svg.topo-graph')?.dataset.posUs === String(t), us);

/** The scale's colour of `value` over `domain`, from the page's own module. */
const colourIn = (page: Page, value: number | null, domain: [number, number]): Promise<string> =>
  // A string, so the test runner's transform leaves the page's import() alone.
  page.evaluate(`import('/topology.js').then((m) => m.colourOf(${JSON.stringify(value)}, ${JSON.stringify(domain)}))`) as Promise<string>;

describe('topology view', () => {
  let server: TestServer;
  let browser: TestBrowser;
  const history: Batch[] = Array.from({ length: 30 }, (_, i) => batch(i));

  beforeAll(async () => {
    server = await startServer(history);
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Checks every drawn link of `metric` against the state the server answers at `us`. */
  async function expectColoursAt(page: Page, us: number, metric: string, domain: [number, number] | 'legend'): Promise<Map<string, string>> {
    await waitDrawnAt(page, us);
    const state = await api(server.url, 'GET', `/api/v1/state?at=${us}`);
    expect(state.status).toBe(200);
    const values = state.body.values as Record<string, number>;
    const links = await drawnLinks(page);
    const d = domain === 'legend'
      ? (await page.evaluate(() => [document.querySelector('#topology-panel [data-lo]')?.dataset.lo, document.querySelector('#topology-panel [data-hi]')?.dataset.hi])).map(Number) as [number, number]
      : domain;
    const out = new Map<string, string>();
    for (const l of links) {
      const value = values[`${l.key}/${metric}`];
      if (value === undefined) {
        // A link without this metric: "no value", whatever its other metrics say.
        expect(l.value, l.key).toBe('');
        expect(l.colour, l.key).toBe(await colourIn(page, null, d));
        continue;
      }
      expect(Number(l.value), l.key).toBe(value);
      expect(l.stroke, l.key).toBe(l.colour);
      expect(l.colour, `${l.key} = ${value}`).toBe(await colourIn(page, value!, d));
      out.set(l.key, l.colour);
    }
    return out;
  }

  it('draws the twin graph and colours its links by utilization as the session plays (play-next, burst), matching /state?at=', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(`${server.url}/?pos=${history[2]!.ts}&state=pause`);
      await page.locator('#topology-panel > summary').click();
      const at2 = await expectColoursAt(page, history[2]!.ts, 'utilization_pct', [0, 100]);
      const links = await drawnLinks(page);
      // Eight twin edges and three lab links, each between the nodes the values name.
      expect(links.filter((l) => l.key.startsWith('/twin/'))).toHaveLength(EDGES);
      expect(links.filter((l) => l.key.startsWith('/lab/'))).toHaveLength(0 + LAB.length);
      for (let e = 0; e < EDGES; e++) expect(links.find((l) => l.key === `/twin/graph/edges/${e}`)).toMatchObject({ a: LEAVES[e >> 1], b: SPINES[e & 1] });
      expect(await page.locator('#topology-panel select.topo-metric').inputValue()).toBe('utilization_pct');
      // The lab links have no utilization: drawn as "no value".
      for (const l of links.filter((x) => x.key.startsWith('/lab/'))) expect(l.value).toBe('');

      expect(await page.evaluate(() => window.tapedeck.session.playNext())).toBe(true);
      const at3 = await expectColoursAt(page, history[3]!.ts, 'utilization_pct', [0, 100]);
      expect([...at3].some(([k, c]) => at2.get(k) !== c), 'a played batch changes some link colour').toBe(true);

      expect(await page.evaluate(() => window.tapedeck.session.burst(4))).toBe(true);
      const at7 = await expectColoursAt(page, history[7]!.ts, 'utilization_pct', [0, 100]);
      expect([...at7].some(([k, c]) => at3.get(k) !== c)).toBe(true);
      await page.screenshot({ path: await artifactPath('web-topology.png'), fullPage: true });
      const shot = await artifactPath('web-topology-panel.png');
      await page.locator('#topology-panel').screenshot({ path: shot });
      const img = join(import.meta.dirname, '..', 'docs', 'img');
      await mkdir(img, { recursive: true });
      await copyFile(shot, join(img, 'web-topology.png'));
    } finally {
      await page.close();
    }
  }, 60_000);

  it('colours the link paths by another metric, on the scale the legend shows', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(`${server.url}/?pos=${history[10]!.ts}&state=pause`);
      await page.locator('#topology-panel > summary').click();
      await waitDrawnAt(page, history[10]!.ts);
      await page.locator('#topology-panel select.topo-metric').selectOption('latency_ms');
      await page.waitForFunction(() => document.querySelector('#topology-panel svg.topo-graph')?.dataset.metric === 'latency_ms');
      const lab = async (us: number): Promise<void> => {
        await waitDrawnAt(page, us);
        await page.waitForFunction(() => document.querySelector('#topology-panel svg.topo-graph')?.dataset.metric === 'latency_ms');
        const links = (await drawnLinks(page)).filter((l) => l.key.startsWith('/lab/'));
        const state = (await api(server.url, 'GET', `/api/v1/state?at=${us}`)).body.values as Record<string, number>;
        const [lo, hi] = (await page.evaluate(() => [document.querySelector('#topology-panel [data-lo]')?.dataset.lo, document.querySelector('#topology-panel [data-hi]')?.dataset.hi])).map(Number) as [number, number];
        for (const l of links) {
          const v = state[`${l.key}/latency_ms`]!;
          expect(Number(l.value)).toBe(v);
          expect(lo).toBeLessThanOrEqual(v);
          expect(hi).toBeGreaterThanOrEqual(v);
          expect(l.colour).toBe(await colourIn(page, v, [lo, hi]));
        }
        expect(links.map((l) => `${l.a}--${l.b}`)).toEqual(LAB.map(([a, b]) => `${a}--${b}`));
      };
      await lab(history[10]!.ts);
      await page.evaluate(() => window.tapedeck.session.burst(5));
      await lab(history[15]!.ts);
      // The twin edges have no latency: drawn as "no value", dashed.
      const twin = (await drawnLinks(page)).filter((l) => l.key.startsWith('/twin/'));
      expect(twin.every((l) => l.value === '' && l.colour === '#9aa0a6')).toBe(true);
    } finally {
      await page.close();
    }
  }, 60_000);
});
