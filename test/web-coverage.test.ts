/**
 * The web player draws where the record is blind, in Debian's Chromium via playwright-core:
 * the timeline shades the recorder gaps and source outages of GET /api/v1/coverage (crash
 * and stop apart, the reason and times on hover), and a chart breaks its line at each gap
 * (a null point at the gap's start and end) instead of bridging it.
 *
 * The coverage journal is written as three earlier runs left it (the journal's own encoder:
 * run a crashed, run b stopped cleanly, run c is the last); the archive and CoverageLog are
 * real and in this process, the server listens on a free port. A source's outage reason is
 * hostile markup: it must show as text, never as HTML.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { Archive } from '../storage/index.js';
import { COVERAGE_FILE, encodeJournalLine } from '../storage/coverage-journal.js';
import type { CoverageEvent } from '../protocol/coverage.js';
import { buildServer } from '../server/app.js';
import { CoverageLog } from '../server/coverage.js';
import { Recorder } from '../server/recorder.js';
import { artifactPath, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { api } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';

// Globals of the page, for the functions Playwright runs there (tests compile without the DOM lib).
declare const getComputedStyle: (el: unknown) => { bottom: string };
declare const document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null };
declare const window: {
  pwned?: boolean;
  tapedeck: { charts: { charts: { get(path: string): { plot: { data: Array<Array<number | null>> } } | undefined } } };
};

const T0_US = 1_800_000_000_000_000;
const STEP_US = 1_000_000;
const at = (i: number): number => T0_US + i * STEP_US;
const HOSTILE = '<img src=x onerror="window.pwned=true">"&\'';
const RECORDED = [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24];

/** Run a recorded 0..4 and crashed; run b recorded 10..14 and stopped; run c recorded 20..24 (and is still running, unless `cStops`). */
function threeRuns(cStops = true): CoverageEvent[] {
  const events: CoverageEvent[] = [
    { kind: 'run-start', run: 'a', atUs: at(0) - 1, lastTsUs: null },
    { kind: 'run-first-batch', run: 'a', atUs: at(0), tsUs: at(0) },
    { kind: 'source-down', run: 'a', atUs: at(2), source: 'sw', reason: HOSTILE },
    { kind: 'source-up', run: 'a', atUs: at(3), source: 'sw' },
    { kind: 'run-start', run: 'b', atUs: at(9), lastTsUs: at(4) },
    { kind: 'run-first-batch', run: 'b', atUs: at(10), tsUs: at(10) },
    { kind: 'source-down', run: 'b', atUs: at(11), source: 'kafka', reason: 'broker unreachable' },
    { kind: 'source-up', run: 'b', atUs: at(13), source: 'kafka' },
    { kind: 'run-stop', run: 'b', atUs: at(15), lastTsUs: at(14) },
    { kind: 'run-start', run: 'c', atUs: at(19), lastTsUs: at(14) },
    { kind: 'run-first-batch', run: 'c', atUs: at(20), tsUs: at(20) },
  ];
  if (cStops) events.push({ kind: 'run-stop', run: 'c', atUs: at(25), lastTsUs: at(24) });
  return events;
}

interface Served {
  url: string;
  recorder?: Recorder;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(events: CoverageEvent[], recording = false): Promise<Served> {
  const dir = await tmpDir('tapedeck-web-cov-');
  await writeFile(join(dir, COVERAGE_FILE), events.map(encodeJournalLine).join(''));
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  for (const i of RECORDED) archive.writer!.append([['/sw/cpu', i * 10]], at(i));
  await archive.writer!.flush();
  const log = pino({ level: 'silent' });
  const recorder = recording ? await Recorder.open(archive) : undefined;
  const coverage = await CoverageLog.open(archive, log, recorder ? { recorder, sources: [] } : undefined);
  const app: FastifyInstance = await buildServer({ archive, coverage, loggerInstance: log });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    await app.close();
    await coverage.stop();
    await archive.close();
  });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, ...(recorder ? { recorder } : {}) };
}

interface RestGap { start_us: number; end_us: number | null; reason: string }
interface RestOutage extends RestGap { source: string }

async function restCoverage(url: string): Promise<{ gaps: RestGap[]; outages: RestOutage[] }> {
  const res = await api(url, 'GET', '/api/v1/coverage');
  expect(res.status).toBe(200);
  return res.body;
}

/** What the timeline draws, read from the elements' data attributes and titles. */
async function drawn(page: Page, selector: string): Promise<Array<Record<string, string | null>>> {
  return page.locator(selector).evaluateAll((els) => els.map((e) => ({
    start: e.getAttribute('data-start-us'),
    end: e.getAttribute('data-end-us'),
    reason: e.getAttribute('data-reason'),
    source: e.getAttribute('data-source'),
    title: e.getAttribute('title'),
  })));
}

const chartData = (page: Page, path: string): Promise<Array<Array<number | null>> | null> =>
  page.evaluate((p) => window.tapedeck.charts.charts.get(p)?.plot.data.map((a) => [...a]) ?? null, path);

let browser: TestBrowser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('web player coverage', () => {
  it('shades the crash and stop gaps and the outages of /api/v1/coverage on the timeline, reasons as text', async () => {
    const { url } = await serve(threeRuns());
    const rest = await restCoverage(url);
    expect(rest.gaps.map((g) => g.reason)).toEqual(['recorder-crashed', 'recorder-stopped']);
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/?pos=${at(24)}&state=pause&select=/sw/cpu`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');

    await expect.poll(() => page.locator('#tl-coverage .cov-gap').count()).toBe(rest.gaps.length);
    const gaps = await drawn(page, '#tl-coverage .cov-gap');
    expect(gaps.map((g) => [Number(g.start), Number(g.end), g.reason])).toEqual(rest.gaps.map((g) => [g.start_us, g.end_us, g.reason]));
    // Placed on the archive's range (first batch at 0 s, last at 24 s): the crash gap covers 4 s to 10 s.
    const place = await page.locator('#tl-coverage .cov-gap-crashed').evaluate((e) => [e.style.left, e.style.width]);
    expect(place.map((p) => Number.parseFloat(p))).toEqual([expect.closeTo((4 / 24) * 100, 3), expect.closeTo((6 / 24) * 100, 3)]);
    // Crash and stop are styled apart.
    expect(await page.locator('#tl-coverage .cov-gap-crashed').count()).toBe(1);
    expect(await page.locator('#tl-coverage .cov-gap-stopped').count()).toBe(1);
    expect(gaps[0]!.title).toMatch(/recorder crashed/);
    expect(gaps[0]!.title).toContain('2027-01-15 08:00:04.000 UTC');

    const outages = await drawn(page, '#tl-coverage .cov-outage');
    expect(outages.map((o) => [o.source, Number(o.start), Number(o.end), o.reason]))
      .toEqual(rest.outages.map((o) => [o.source, o.start_us, o.end_us, o.reason]));
    // The hostile reason is an attribute's text: no element was made of it, no script ran.
    expect(outages.find((o) => o.source === 'sw')!.title).toContain(HOSTILE);
    expect(await page.locator('#tl-coverage img').count()).toBe(0);
    expect(await page.evaluate(() => window.pwned === true)).toBe(false);
    // One band per source.
    const bottoms = await page.locator('#tl-coverage .cov-outage').evaluateAll((els) => els.map((e) => getComputedStyle(e).bottom));
    expect(new Set(bottoms).size).toBe(2);

    await page.screenshot({ path: await artifactPath('web-player-coverage.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('breaks a chart line at each recorder gap: a null at its start and end, no segment across it', async () => {
    const { url } = await serve(threeRuns());
    const rest = await restCoverage(url);
    const page = await browser.context.newPage();
    await page.goto(`${url}/?pos=${at(24)}&state=pause&select=/sw/cpu`);
    // The history before the position is loaded and the session's coverage frame applied.
    await expect.poll(async () => (await chartData(page, '/sw/cpu'))?.[1]?.filter((y) => y !== null).length ?? 0).toBe(RECORDED.length);
    await expect.poll(async () => (await chartData(page, '/sw/cpu'))?.[1]?.filter((y) => y === null).length ?? 0).toBe(2 * rest.gaps.length);
    const [xs, ys] = (await chartData(page, '/sw/cpu')) as [number[], Array<number | null>];
    expect(xs.filter((_, i) => ys[i] !== null)).toEqual(RECORDED.map((i) => at(i) / 1e6));
    for (const g of rest.gaps) {
      expect(xs.some((x, i) => x === g.start_us / 1e6 && ys[i] === null), `null at the start of ${JSON.stringify(g)}`).toBe(true);
      expect(xs.some((x, i) => x === g.end_us! / 1e6 && ys[i] === null), `null at the end of ${JSON.stringify(g)}`).toBe(true);
    }
    for (let i = 0; i + 1 < xs.length; i++) {
      if (ys[i] === null || ys[i + 1] === null) continue;
      const bridged = rest.gaps.find((g) => xs[i]! <= g.start_us / 1e6 && xs[i + 1]! >= g.end_us! / 1e6);
      expect(bridged, `a line from ${xs[i]} to ${xs[i + 1]}`).toBeUndefined();
    }
    // x stays sorted (uPlot needs it) with the nulls in place.
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    await page.close();
  });

  it('draws a gap still open while tailing to the edge, and closes it when this run records', async () => {
    const s = await serve(threeRuns(false), true); // run c crashed too: this run opens a gap from 24
    const page = await browser.context.newPage();
    await page.goto(`${s.url}/?state=tail&select=/sw/cpu`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'live');
    await expect.poll(() => page.locator('#tl-coverage .cov-gap').count()).toBe(3);
    const open = (await drawn(page, '#tl-coverage .cov-gap'))[2]!;
    expect([open.start, open.end, open.reason]).toEqual([String(at(24)), '', 'recorder-crashed']);
    expect(open.title).toMatch(/until now/);

    await s.recorder!.record('push', [['/sw/cpu', 300]], at(30));
    await expect.poll(async () => (await drawn(page, '#tl-coverage .cov-gap'))[2]?.end).toBe(String(at(30)));
    await page.close();
  });
});
