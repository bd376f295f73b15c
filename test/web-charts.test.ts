/**
 * The chart panels in Debian's Chromium via playwright-core, over a real server whose
 * archive has three recorder runs (a crash gap and a clean-stop gap between them, from the
 * coverage journal's own encoder) and paths of every kind: floats whose shortest text has
 * 17 digits, a bigint past 2^53, strings (one of them hostile markup) and booleans.
 *
 * - Several paths overlaid in one panel, a y axis per unit, the strings as a state track;
 *   the hover read-out at many pointer positions equals GET /api/v1/history for the same
 *   paths and time (the last update at or before it: exact timestamp and exact text).
 * - Gaps: hovering one names its reason; the drawn data never joins two points across a
 *   gap of GET /api/v1/coverage; the gap is shaded on the canvas where coverage says.
 * - Layout as data: setLayout(getLayout()) round trip, a path dragged from the tree onto a
 *   panel and one removed from a legend each say 'layoutchange', hostile layouts refused.
 * - Zoom and pan: a drag-zoom around the playhead keeps it in view while playing; a zoom
 *   elsewhere fixes the window; the wheel pans; double-click follows again.
 * Screenshots for docs/web-player.md go to docs/img/ (WEB_CHARTS_SHOTS=1 writes them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { Archive } from '../storage/index.js';
import { COVERAGE_FILE, encodeJournalLine } from '../storage/coverage-journal.js';
import type { CoverageEvent } from '../protocol/coverage.js';
import type { Value } from '../protocol/value.js';
import { buildServer } from '../server/app.js';
import { CoverageLog } from '../server/coverage.js';
import { formatValue } from '../clients/web/values.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { api, startServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';

// The page's globals, for the functions Playwright runs there (tests compile without the DOM lib).
interface PagePlot { data: Array<Array<number | null | undefined>>; valToPos(v: number, scale: string): number; over: unknown; axes: unknown[] }
interface PagePanel { paths: string[]; plot: PagePlot | null }
interface PageCharts {
  panels: PagePanel[];
  series: Map<string, { tsUs: number[]; wire: unknown[] }>;
  window: [number, number] | null;
  headUs: number | null;
  view: { follow: boolean };
  getLayout(): unknown;
  setLayout(layout: unknown): string | null;
}
declare const window: { tapedeck: { charts: PageCharts }; pwned?: boolean; layoutEvents: unknown[] };
declare const document: { getElementById(id: string): { dataset: Record<string, string | undefined>; addEventListener(t: string, f: (ev: { detail: unknown }) => void): void } | null };

const T0_US = 1_800_000_000_000_000;
const S = 1_000_000;
const at = (i: number): number => T0_US + i * S;
const RUN_A = range(0, 30);
const RUN_B = range(40, 70);
const RUN_C = range(80, 100);
const HOSTILE = '<img src=x onerror="window.pwned=true">';
const SHOTS = process.env.WEB_CHARTS_SHOTS === '1';
const OVERLAY = ['/dev/cpu_pct', '/dev/temp_c', '/dev/big', '/dev/mode', '/dev/up'];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

/** The updates of batch i: every path changes on its own rhythm. */
function updates(i: number): Array<[string, Value]> {
  const u: Array<[string, Value]> = [['/dev/cpu_pct', i * 0.1], ['/dev/temp_c', 20 + i / 3]];
  if (i % 3 === 0) u.push(['/dev/big', 2n ** 60n + BigInt(i)]);
  if (i % 7 === 0) u.push(['/dev/mode', i % 21 === 0 ? HOSTILE : i % 2 === 0 ? 'idle' : 'busy']);
  if (i % 10 === 0) u.push(['/dev/up', i % 20 === 0]);
  return u;
}

/** Run a crashed after 29, run b stopped cleanly after 69, run c recorded 80..99 and stopped. */
function runs(): CoverageEvent[] {
  return [
    { kind: 'run-start', run: 'a', atUs: at(0) - 1, lastTsUs: null },
    { kind: 'run-first-batch', run: 'a', atUs: at(0), tsUs: at(0) },
    { kind: 'run-start', run: 'b', atUs: at(39), lastTsUs: at(29) },
    { kind: 'run-first-batch', run: 'b', atUs: at(40), tsUs: at(40) },
    { kind: 'run-stop', run: 'b', atUs: at(70), lastTsUs: at(69) },
    { kind: 'run-start', run: 'c', atUs: at(79), lastTsUs: at(69) },
    { kind: 'run-first-batch', run: 'c', atUs: at(80), tsUs: at(80) },
    { kind: 'run-stop', run: 'c', atUs: at(100), lastTsUs: at(99) },
  ];
}

let browser: TestBrowser;
let url: string;
let app: FastifyInstance;
let closeAll: () => Promise<void>;

beforeAll(async () => {
  const dir = await tmpDir('tapedeck-web-charts-');
  await writeFile(join(dir, COVERAGE_FILE), runs().map(encodeJournalLine).join(''));
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  for (const i of [...RUN_A, ...RUN_B, ...RUN_C]) archive.writer!.append(updates(i), at(i));
  await archive.writer!.flush();
  const log = pino({ level: 'silent' });
  const coverage = await CoverageLog.open(archive, log);
  app = await buildServer({ archive, coverage, loggerInstance: log });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  browser = await launchBrowser();
  closeAll = async () => {
    await browser.close();
    await app.close();
    await coverage.stop();
    await archive.close();
  };
});

afterAll(async () => {
  await closeAll?.();
});

interface HistoryBatch { ts: number; updates: Record<string, unknown> }

async function history(paths: string[]): Promise<HistoryBatch[]> {
  const q = new URLSearchParams({ from: String(at(0)), to: String(at(100)), format: 'ndjson' });
  for (const p of paths) q.append('glob', p);
  const res = await fetch(`${url}/api/v1/history?${q}`);
  expect(res.status).toBe(200);
  return (await res.text()).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as HistoryBatch);
}

/** The last update of `path` at or before `us` in a history answer: [ts, wire value] or null. */
function lastAt(batches: HistoryBatch[], path: string, us: number): [number, unknown] | null {
  let found: [number, unknown] | null = null;
  for (const b of batches) if (b.ts <= us && path in b.updates) found = [b.ts, b.updates[path]];
  return found;
}

const utc = (us: number): string => new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', ' UTC');

async function openPaused(page: Page, select: string[]): Promise<void> {
  await page.goto(`${url}/?pos=${at(99)}&state=pause&select=${select.join(',')}`);
  await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
}

/** Waits until every numeric series of panel `k` holds the whole recorded history. */
async function loaded(page: Page, k: number, points: number): Promise<void> {
  await page.waitForFunction(([i, n]) => {
    const p = window.tapedeck.charts.panels[i]?.plot;
    return !!p && p.data.slice(1).every((col) => col.filter((y) => y !== undefined && y !== null).length >= n);
  }, [k, points] as const);
}

/** Moves the pointer over panel k's plot to time `us`; returns the read-out's time. */
async function hoverAt(page: Page, k: number, us: number): Promise<number> {
  const over = page.locator('.panel').nth(k).locator('.u-over');
  const box = (await over.boundingBox())!;
  const x = await page.evaluate(([i, t]) => window.tapedeck.charts.panels[i]!.plot!.valToPos(t / 1e6, 'x'), [k, us] as const);
  await page.mouse.move(box.x + x, box.y + box.height / 2);
  const readout = page.locator('.panel').nth(k).locator('.hover');
  await expect.poll(() => readout.isVisible()).toBe(true);
  return Number(await readout.getAttribute('data-us'));
}

describe('web charts', () => {
  it('overlays several paths in one panel, an axis per unit and strings as a state track, and the hover shows /history exactly', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await openPaused(page, ['/dev/cpu_pct']);
    await page.evaluate((paths) => window.tapedeck.charts.setLayout({ v: 1, panels: [{ paths }] }), OVERLAY);
    // The numeric series (cpu, temp, big: a bigint is a number to chart) hold the three runs.
    await loaded(page, 0, 20);
    const panel = page.locator('.panel').first();
    expect(await panel.locator('canvas').count()).toBe(1);
    // One axis per unit: %, °C and the unit-less bigint (and the x axis).
    expect(await page.evaluate(() => window.tapedeck.charts.panels[0]!.plot!.axes.length)).toBe(4);
    expect(await panel.locator('.legend .unit').allTextContents()).toEqual(['%', '°C']);
    // The strings and booleans as state tracks, the hostile string as text.
    expect(await panel.locator('.state-track').evaluateAll((els) => els.map((e) => e.getAttribute('data-path')))).toEqual(['/dev/mode', '/dev/up']);
    await expect.poll(() => panel.locator('.state-track[data-path="/dev/mode"] .band').count()).toBeGreaterThan(3);
    expect(await panel.locator('.state-track .band', { hasText: '<img' }).count()).toBeGreaterThan(0);
    expect(await page.locator('.state-track img').count()).toBe(0);

    const batches = await history(OVERLAY);
    const usPerPx = await page.evaluate(() => {
      const [a, b] = window.tapedeck.charts.window!;
      return ((b - a) * 1e6) / (document as unknown as { querySelector(s: string): { clientWidth: number } }).querySelector('.panel .u-over').clientWidth;
    });
    // Pointer positions across the runs and the gaps, between and on recorded updates.
    const probes = [0.5, 3.2, 7, 17.9, 29.4, 35, 41.01, 55.5, 69.9, 75, 80, 88.8, 98.3].map((k) => at(0) + Math.round(k * S));
    for (const want of probes) {
      const cursorUs = await hoverAt(page, 0, want);
      expect(Math.abs(cursorUs - want)).toBeLessThanOrEqual(2 * usPerPx); // the pointer's time, to a pixel or two
      const rows = await panel.locator('.hover .hover-row').evaluateAll((els) => els.map((e) => ({
        path: e.getAttribute('data-path'),
        ts: e.getAttribute('data-ts-us'),
        value: e.querySelector('.hover-value')?.textContent,
        at: e.querySelector('.hover-at')?.textContent,
      })));
      expect(rows.map((r) => r.path)).toEqual(OVERLAY);
      expect(await panel.locator('.hover .hover-time').textContent()).toBe(utc(cursorUs));
      for (const r of rows) {
        const rest = lastAt(batches, r.path!, cursorUs);
        expect(rest, `${r.path} at ${cursorUs}`).not.toBeNull();
        expect([Number(r.ts), r.value, r.at], `${r.path} at ${cursorUs}`).toEqual([rest![0], formatValue(rest![1]), utc(rest![0])]);
      }
    }
    // Full precision, never a rounded float: 0.30000000000000004 and 2^60 + 3 as recorded.
    await hoverAt(page, 0, at(3) + S / 4);
    expect(await panel.locator('.hover .hover-row[data-path="/dev/cpu_pct"] .hover-value').textContent()).toBe('0.30000000000000004');
    expect(await panel.locator('.hover .hover-row[data-path="/dev/big"] .hover-value').textContent()).toBe(String(2n ** 60n + 3n));
    if (SHOTS) await panel.screenshot({ path: 'docs/img/web-charts-overlay.png' });
    expect(await page.evaluate(() => window.pwned === true)).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('names the gap under the pointer, shades it where /coverage says, and never joins points across it', async () => {
    const page = await browser.context.newPage();
    await openPaused(page, ['/dev/cpu_pct']);
    await page.evaluate(() => window.tapedeck.charts.setLayout({ v: 1, panels: [{ paths: ['/dev/cpu_pct', '/dev/temp_c'] }] }));
    await loaded(page, 0, RUN_A.length + RUN_B.length + RUN_C.length);
    const rest = (await api(url, 'GET', '/api/v1/coverage')).body as { gaps: Array<{ start_us: number; end_us: number; reason: string }> };
    expect(rest.gaps.map((g) => [g.start_us, g.end_us, g.reason])).toEqual([[at(29), at(40), 'recorder-crashed'], [at(69), at(80), 'recorder-stopped']]);
    const panel = page.locator('.panel').first();

    for (const g of rest.gaps) {
      const mid = Math.round((g.start_us + g.end_us) / 2);
      await hoverAt(page, 0, mid);
      const gap = panel.locator('.hover .hover-gap');
      expect(await gap.getAttribute('data-reason')).toBe(g.reason);
      expect(await gap.textContent()).toBe(`gap: ${g.reason.replace('-', ' ')}, ${utc(g.start_us)} to ${utc(g.end_us)}; nothing recorded`);
      if (SHOTS && g.reason === 'recorder-crashed') await panel.screenshot({ path: 'docs/img/web-charts-gap.png' });
      // Shaded on the canvas: the plot's middle inside the gap is tinted (red for a crash,
      // grey for a stop), the middle of a run is not.
      const [r, , b, a] = (await canvasPixel(page, mid)) as [number, number, number, number];
      expect(a).toBeGreaterThanOrEqual(30); // the fills' alpha is 0.14 (36 of 255)
      // Crash: rgb(200, 56, 45); stop: rgb(93, 104, 117).
      if (g.reason === 'recorder-crashed') expect(r).toBeGreaterThan(b);
      else expect(b).toBeGreaterThan(r);
    }
    expect((await canvasPixel(page, at(12) + S / 2))[3]).toBeLessThan(30); // a run's middle: no fill (a grid line at most)

    // No segment across a gap: in each series, two consecutive drawn points (undefined is no
    // point of that series; null breaks the line) never lie on both sides of a gap.
    const data = await page.evaluate(() => window.tapedeck.charts.panels[0]!.plot!.data.map((c) => c.map((y) => (y === undefined ? 'u' : y))));
    const xs = data[0] as number[];
    for (const col of data.slice(1)) {
      const drawn = xs.map((x, i) => [x, col[i]] as const).filter(([, y]) => y !== 'u');
      for (let i = 0; i + 1 < drawn.length; i++) {
        const [x0, y0] = drawn[i]!;
        const [x1, y1] = drawn[i + 1]!;
        if (y0 === null || y1 === null) continue;
        const bridged = rest.gaps.find((g) => x0 <= g.start_us / 1e6 && x1 >= g.end_us / 1e6);
        expect(bridged, `a line from ${x0} to ${x1}`).toBeUndefined();
      }
    }
    await page.close();
  });

  it('round-trips setLayout(getLayout()), says layoutchange for a drag from the tree and a legend removal, and refuses hostile layouts', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await openPaused(page, ['/dev/cpu_pct', '/dev/temp_c', '/dev/mode']);
    // Picked paths: a panel per numeric path, the strings in a panel of state tracks after them.
    await expect.poll(() => page.evaluate(() => window.tapedeck.charts.getLayout()))
      .toEqual({ v: 1, panels: [{ paths: ['/dev/cpu_pct'] }, { paths: ['/dev/temp_c'] }, { paths: ['/dev/mode'] }] });
    expect(await page.locator('.panel.chart').count()).toBe(2);
    await page.evaluate(() => {
      window.layoutEvents = [];
      document.getElementById('charts')!.addEventListener('layoutchange', (ev) => window.layoutEvents.push(ev.detail));
    });

    // Drag /dev/big from the tree onto the first panel: it joins it, and the layout says so.
    // (Once the tree shows every path: a later render would replace the leaf being dragged.)
    await expect.poll(() => page.locator('#tree-count').textContent()).toBe('5 of 5 paths');
    const leaf = page.locator('#tree label[data-drag-path="/dev/big"]');
    await leaf.dragTo(page.locator('.panel').first());
    const afterDrop = { v: 1, panels: [{ paths: ['/dev/cpu_pct', '/dev/big'] }, { paths: ['/dev/temp_c'] }, { paths: ['/dev/mode'] }] };
    await expect.poll(() => page.evaluate(() => window.layoutEvents)).toEqual([afterDrop]);
    expect(await page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual(afterDrop);
    await loaded(page, 0, 20);

    // Remove /dev/cpu_pct from the first panel's legend.
    await page.getByRole('button', { name: 'Remove /dev/cpu_pct from this panel' }).click();
    const afterRemove = { v: 1, panels: [{ paths: ['/dev/big'] }, { paths: ['/dev/temp_c'] }, { paths: ['/dev/mode'] }] };
    await expect.poll(() => page.evaluate(() => window.layoutEvents.at(-1))).toEqual(afterRemove);

    // A layout with a zoom, set and read back: the same data, the same panels on screen, no event.
    const layout = { v: 1, panels: [{ paths: ['/dev/mode', '/dev/temp_c', '/dev/cpu_pct'] }, { paths: ['/dev/up'] }], zoom: { fromUs: at(10), toUs: at(50) } };
    const events = await page.evaluate(() => window.layoutEvents.length);
    const back = await page.evaluate((l) => {
      window.tapedeck.charts.setLayout(l);
      const got = window.tapedeck.charts.getLayout();
      window.tapedeck.charts.setLayout(JSON.parse(JSON.stringify(got)));
      return [got, window.tapedeck.charts.getLayout()];
    }, layout);
    expect(back).toEqual([layout, layout]);
    expect(await page.locator('.panel').evaluateAll((els) => els.map((e) => JSON.parse(e.getAttribute('data-paths')!)))).toEqual(layout.panels.map((p) => p.paths));
    await expect.poll(() => page.evaluate(() => window.tapedeck.charts.window)).toEqual([at(10) / 1e6, at(50) / 1e6]);
    expect(await page.evaluate(() => window.layoutEvents.length)).toBe(events);

    // A panel of state tracks only has the read-out too: /dev/up at 45 s (set at 40 s).
    // (Once the panel has drawn /dev/up's band from 40 s: the read-out is taken at the move.)
    await expect.poll(() => page.locator('.panel').nth(1).locator('.band[data-ts-us="' + at(40) + '"]').count()).toBeGreaterThan(0);
    const area = page.locator('.panel').nth(1).locator('.state-area');
    const box = (await area.boundingBox())!;
    await page.mouse.move(box.x + box.width * (35 / 40), box.y + box.height / 2);
    const row = page.locator('.panel').nth(1).locator('.hover .hover-row[data-path="/dev/up"]');
    await expect.poll(() => row.getAttribute('data-ts-us')).toBe(String(at(40)));
    expect(await row.locator('.hover-value').textContent()).toBe('true');
    expect(await page.locator('.panel').nth(1).locator('.band[data-ts-us="' + at(40) + '"]').textContent()).toBe('true');

    // Hostile layouts: each refused with its reason (returned, never thrown), the layout on
    // screen unchanged, the reason shown over the charts, no page error.
    const refused = await page.evaluate(() => {
      const cyclic: Record<string, unknown> = { v: 1, panels: [] };
      cyclic.self = cyclic;
      const deep: Record<string, unknown> = { v: 1, panels: [{ paths: ['/a'] }] };
      let d: Record<string, unknown> = deep;
      for (let i = 0; i < 100_000; i++) { d.zoom = {}; d = d.zoom as Record<string, unknown>; }
      const proxy = new Proxy({}, { ownKeys() { throw new Error('trap'); }, get() { throw new Error('trap'); } });
      const inputs: unknown[] = [
        null, undefined, 'layout', 7, [], { v: 1 }, { v: 1, panels: [], admin: true }, cyclic, deep, proxy,
        { v: 1, panels: Array.from({ length: 100_000 }, () => ({ paths: ['/a'] })) },
        { v: 1, panels: [{ paths: Array.from({ length: 100_000 }, (_, i) => `/p${i}`) }] },
        { v: 1, panels: [{ paths: ['/' + 'x'.repeat(10_000_000)] }] },
        { v: 1, panels: [{ paths: ['/a', '/a'] }] }, { v: '1', panels: [] },
        { v: 1, panels: [{ paths: ['javascript:alert(1)'] }] }, { v: 1, panels: [], zoom: { fromUs: -5, toUs: 1 } },
        { v: 1, panels: [], zoom: { widthUs: 1e6, at: Number.NaN } }, JSON.parse('{"v":1,"panels":[],"__proto__":{"polluted":1}}'),
      ];
      const before = JSON.stringify(window.tapedeck.charts.getLayout());
      const out = inputs.map((l) => {
        try {
          return window.tapedeck.charts.setLayout(l);
        } catch (err) {
          return `thrown: ${(err as Error).message}`;
        }
      });
      return { out, same: JSON.stringify(window.tapedeck.charts.getLayout()) === before, polluted: ({} as Record<string, unknown>).polluted };
    });
    expect(refused.out).toHaveLength(19);
    for (const r of refused.out) expect(r).toMatch(/^(?!thrown: )\S/); // a reason, not a throw
    expect(await page.locator('#charts .layout-note').textContent()).toBe(`Layout not applied: ${refused.out.at(-1)}`);
    expect(refused.same).toBe(true);
    expect(refused.polluted).toBeUndefined();
    expect(await page.locator('.panel').count()).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('keeps the playhead in view while playing after a zoom around it, fixes a zoom elsewhere, pans with the wheel, follows again on double-click', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/?pos=${at(45)}&state=pause&select=/dev/cpu_pct,/dev/mode`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    await loaded(page, 0, RUN_A.length + 5);
    await page.evaluate(() => {
      window.layoutEvents = [];
      document.getElementById('charts')!.addEventListener('layoutchange', (ev) => window.layoutEvents.push(ev.detail));
    });
    const over = page.locator('.panel').first().locator('.u-over');
    const box = (await over.boundingBox())!;
    const px = (us: number): Promise<number> => page.evaluate((t) => window.tapedeck.charts.panels[0]!.plot!.valToPos(t / 1e6, 'x'), us);
    /** Drags from `fromUs` to `toUs` (null: past the right edge, where the playhead is while following). */
    const drag = async (fromUs: number, toUs: number | null): Promise<void> => {
      await page.mouse.move(box.x + await px(fromUs), box.y + 20);
      await page.mouse.down();
      await page.mouse.move(toUs === null ? box.x + box.width + 10 : box.x + await px(toUs), box.y + 30, { steps: 4 });
      await page.mouse.up();
    };

    // Following, the window ends at the playhead (45 s): a drag-zoom from 35 s to the right
    // edge keeps it in, so the view still follows, 10 s wide.
    await drag(at(35), null);
    await expect.poll(() => page.evaluate(() => window.layoutEvents.length)).toBe(1);
    const zoom = (await page.evaluate(() => window.layoutEvents[0])) as { zoom: { widthUs: number; at: number } };
    expect(zoom.zoom.widthUs).toBeGreaterThan(9 * S);
    expect(zoom.zoom.widthUs).toBeLessThan(11 * S);
    // Play at 5×: the window slides with the playhead, which stays inside it.
    await page.selectOption('#speed', '5');
    await page.locator('body').press(' ');
    await page.waitForFunction((t) => (window.tapedeck.charts.headUs ?? 0) >= t, at(60));
    // The window moves at the next drawn frame after a batch moves the playhead: under load
    // the two can be read between them, so wait for a frame that shows the playhead.
    await expect
      .poll(() =>
        page.evaluate(() => {
          const [w, h] = [window.tapedeck.charts.window!, window.tapedeck.charts.headUs! / 1e6];
          return w[0] <= h && w[1] >= h;
        }),
      )
      .toBe(true);
    const win = await page.evaluate(() => window.tapedeck.charts.window!);
    expect(win[1] - win[0]).toBeCloseTo(zoom.zoom.widthUs / 1e6, 3);
    if (SHOTS) await page.locator('.panel').first().screenshot({ path: 'docs/img/web-charts-zoom.png' });
    await page.locator('body').press(' ');
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');

    // A zoom that leaves the playhead out fixes the window there.
    const head2 = await page.evaluate(() => window.tapedeck.charts.headUs!);
    await page.mouse.dblclick(box.x + box.width / 2, box.y + 20);
    await expect.poll(() => page.evaluate(() => window.layoutEvents.at(-1))).not.toHaveProperty('zoom');
    await drag(at(5), at(15));
    await expect.poll(() => page.evaluate(() => window.tapedeck.charts.view.follow)).toBe(false);
    const fixed = await page.evaluate(() => window.tapedeck.charts.window!);
    expect(fixed[1]).toBeLessThan(head2 / 1e6);
    expect(fixed[0]).toBeGreaterThan(at(4) / 1e6);

    // The wheel pans later by a fraction of the width; the layout says so once it rests.
    const n = await page.evaluate(() => window.layoutEvents.length);
    await page.mouse.move(box.x + box.width / 2, box.y + 20);
    await page.mouse.wheel(0, 200);
    await expect.poll(() => page.evaluate(() => window.layoutEvents.length)).toBe(n + 1);
    const pannedWin = await page.evaluate(() => window.tapedeck.charts.window!);
    expect(pannedWin[0] - fixed[0]).toBeCloseTo((fixed[1] - fixed[0]) * 0.2, 3);

    // Ctrl+wheel zooms about the pointer: 100 px in is a factor of 1/1.25, the time under the pointer stays.
    const aboutS = await page.evaluate((x) => (window.tapedeck.charts.panels[0]!.plot! as unknown as { posToVal(p: number, s: string): number }).posToVal(x, 'x'), box.width / 2);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -100);
    await page.keyboard.up('Control');
    await expect.poll(() => page.evaluate(() => window.layoutEvents.length)).toBe(n + 2);
    const zoomedWin = await page.evaluate(() => window.tapedeck.charts.window!);
    expect(zoomedWin[1] - zoomedWin[0]).toBeCloseTo((pannedWin[1] - pannedWin[0]) / 1.25, 3);
    expect((aboutS - zoomedWin[0]) / (zoomedWin[1] - zoomedWin[0])).toBeCloseTo((aboutS - pannedWin[0]) / (pannedWin[1] - pannedWin[0]), 2);

    // Double-click follows the playhead again: the layout has no zoom.
    await page.mouse.dblclick(box.x + box.width / 2, box.y + 20);
    await expect.poll(() => page.evaluate(() => window.layoutEvents.at(-1))).not.toHaveProperty('zoom');
    const [win3, head3] = await page.evaluate(() => [window.tapedeck.charts.window!, window.tapedeck.charts.headUs!] as const);
    expect(win3[1]).toBeGreaterThanOrEqual(head3 / 1e6);
    expect(errors).toEqual([]);
    await page.close();
  });
});

/** RGBA of the first panel's canvas at time `us`, a tenth of the plot's height from its top. */
describe('web charts from the beginning', () => {
  it('charts a picked path that had no value yet from the batch that brings its first, once', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${url}/?pos=beginning&state=pause&speed=100&select=/dev/cpu_pct,/dev/mode`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    // Before the first batch the paths are known without values: no panel yet.
    expect(await page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual({ v: 1, panels: [] });
    await page.locator('body').press(' ');
    await page.waitForFunction((t) => (window.tapedeck.charts.headUs ?? 0) >= t, at(10));
    await page.locator('body').press(' ');
    const points = (p: string): Promise<number[] | null> => page.evaluate((q) => window.tapedeck.charts.series.get(q)?.tsUs.slice() ?? null, p);
    // Each update once, from the first batch on (strictly increasing: no point twice).
    for (const p of ['/dev/cpu_pct', '/dev/mode']) {
      const ts = (await points(p))!;
      expect(ts[0], p).toBe(at(0));
      expect(ts.every((t, i) => i === 0 || t > ts[i - 1]!), `${p}: ${ts.join(',')}`).toBe(true);
    }
    expect(await page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual({ v: 1, panels: [{ paths: ['/dev/cpu_pct'] }, { paths: ['/dev/mode'] }] });
    await page.close();
  });
});

describe('web charts opened from a link', () => {
  it('shows exactly the layout of the link, also when its selection holds more paths', async () => {
    const page = await browser.context.newPage();
    const layout = { v: 1, panels: [{ paths: ['/dev/temp_c', '/dev/mode'] }], zoom: { fromUs: at(10), toUs: at(50) } };
    const q = new URLSearchParams({ pos: String(at(99)), state: 'pause', select: '/dev/cpu_pct,/dev/temp_c,/dev/up', layout: JSON.stringify(layout) });
    await page.goto(`${url}/?${q}`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    await loaded(page, 0, 20);
    expect(await page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual(layout);
    // A path picked afterwards is placed as usual, also right after a later setLayout.
    await page.locator('#tree input[data-path="/dev/big"]').check();
    await expect.poll(() => page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual({ ...layout, panels: [...layout.panels, { paths: ['/dev/big'] }] });
    const cpuOnly = { v: 1, panels: [{ paths: ['/dev/cpu_pct'] }] };
    await page.evaluate((l) => window.tapedeck.charts.setLayout(l), cpuOnly);
    await page.locator('#tree input[data-path="/dev/mode"]').check();
    await expect.poll(() => page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual({ v: 1, panels: [...cpuOnly.panels, { paths: ['/dev/mode'] }] });
    await page.close();
  });
});

describe('web charts over a longer archive', () => {
  it('loads the recorded history when the window is moved before what was loaded', async () => {
    const MIN = 60 * S;
    const n = 40 * 60; // 40 minutes, a batch a second
    const srv = await startServer(Array.from({ length: n }, (_, i) => ({ ts: at(i), updates: [['/dev/cpu_pct', i * 0.1]] })));
    let closed = false;
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const end = at(n - 1);
      await page.goto(`${srv.url}/?pos=${end}&state=pause&select=/dev/cpu_pct`);
      await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
      // After the seek: the ten minutes before the position.
      const first = (): Promise<number | null> => page.evaluate(() => window.tapedeck.charts.series.get('/dev/cpu_pct')?.tsUs[0] ?? null);
      await expect.poll(first).toBe(end - 10 * MIN);
      // A window from 30 to 20 minutes before the end: the series reaches back to it, exactly as recorded.
      await page.evaluate(([a, b]) => window.tapedeck.charts.setLayout({ v: 1, panels: [{ paths: ['/dev/cpu_pct'] }], zoom: { fromUs: a, toUs: b } }), [end - 30 * MIN, end - 20 * MIN] as const);
      await expect.poll(first).toBeLessThanOrEqual(end - 30 * MIN);
      const got = await page.evaluate(() => {
        const s = window.tapedeck.charts.series.get('/dev/cpu_pct')!;
        return s.tsUs.map((t, i) => [t, s.wire[i]]);
      });
      const q = new URLSearchParams({ glob: '/dev/cpu_pct', from: String(got[0]![0]), to: String(end + 1), format: 'ndjson' });
      const rest = (await (await fetch(`${srv.url}/api/v1/history?${q}`)).text()).split('\n').filter((l) => l !== '')
        .map((l) => JSON.parse(l) as HistoryBatch).map((b) => [b.ts, b.updates['/dev/cpu_pct']]);
      expect(got).toEqual(rest);

      // The server goes away: a window further back asks in vain, the charts keep what they
      // hold, and the page raises no error.
      await srv.close();
      closed = true;
      const failed = page.waitForEvent('requestfailed', (r) => r.url().includes('/api/v1/history?'));
      await page.evaluate(([a, b]) => window.tapedeck.charts.setLayout({ v: 1, panels: [{ paths: ['/dev/cpu_pct'] }], zoom: { fromUs: a, toUs: b } }), [end - 39 * MIN, end - 35 * MIN] as const);
      expect(new URL((await failed).url()).searchParams.get('from')).toBe(String(end - 39 * MIN));
      expect(await page.evaluate(() => window.tapedeck.charts.series.get('/dev/cpu_pct')!.tsUs.length)).toBe(got.length);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      if (!closed) await srv.close();
    }
  });
});

async function canvasPixel(page: Page, us: number): Promise<number[]> {
  return page.evaluate(([t]) => {
    const plot = window.tapedeck.charts.panels[0]!.plot! as unknown as { ctx: { getImageData(x: number, y: number, w: number, h: number): { data: number[] } }; valToPos(v: number, s: string, c: boolean): number; bbox: { top: number; height: number } };
    const d = plot.ctx.getImageData(Math.round(plot.valToPos(t / 1e6, 'x', true)), Math.round(plot.bbox.top + plot.bbox.height * 0.1), 1, 1).data;
    return [d[0]!, d[1]!, d[2]!, d[3]!];
  }, [us] as const);
}
