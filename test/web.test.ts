/**
 * The web player in a real browser: Debian's Chromium driven by playwright-core against a
 * real server. One suite over a pre-written archive (two files with a gap between them,
 * for exact assertions), one over a server recording the simulator (live values), one
 * over an archive whose first file is in cold storage (buffering while it is fetched).
 * Screenshots go to test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import type { Batch } from '../protocol/value.js';
import { EMBEDDED_DEFAULT, resolveConfig } from '../server/config.js';
import { startServer as startRecorder } from '../server/main.js';
import type { ColdEvent } from '../storage/cold.js';
import type { PollEvent } from '../server/sources/source.js';
import { artifactPath, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { recordingServer } from './helpers/recording-server.js';
import { api, startServer, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { waitFor } from './helpers/upstreams.js';

// Globals of the page, for the functions Playwright runs there (tests compile without the DOM lib).
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  classList: { contains(name: string): boolean };
  parentElement: PageElement | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  addEventListener(type: string, listener: () => void): void;
};
declare const MutationObserver: new (callback: (records: Array<{ target: PageElement; attributeName: string | null }>) => void) => {
  observe(target: PageElement, options: Record<string, unknown>): void;
};
declare const CustomEvent: new (type: string, init: { detail: unknown }) => unknown;
declare const window: {
  tapedeck: {
    model: { controls: { speed: unknown; end: unknown; state: string } };
    session: { id: string; state: string; ws: { close(): void }; send(set: unknown): void; dispatchEvent(e: unknown): boolean };
    timeline: { firstUs: number | null; lastUs: number | null };
    charts: { charts: { get(path: string): { plot: { data: number[][] } } | undefined } };
  };
  flashes: Array<[string, string]>;
};

const T0 = Date.UTC(2026, 0, 1) * 1000;
const HOOKS = resolve('test/fixtures/hooks');
const S = 1_000_000;
const GROUP = 300;

/** Batch i at T0 + i s (files: i < 300, then i >= 600 after a 300 s gap). */
function batch(i: number): Batch {
  const updates: Batch['updates'] = [['/dev/a', i], ['/dev/b', i / 2]];
  if (i % 10 === 0) updates.push(['/dev/name', `n${i / 10}`]);
  return { ts: T0 + i * S, updates };
}

const shownUs = (page: Page): Promise<number> => page.locator('#pos-time').getAttribute('data-us').then(Number);
const connState = (page: Page): Promise<string | null> => page.locator('#conn').getAttribute('data-state');
const waitConn = (page: Page, state: string): Promise<unknown> =>
  page.waitForFunction((s) => document.getElementById('conn')?.dataset.state === s, state);
const cellJson = (page: Page, path: string): Promise<string | null> =>
  page.locator(`#values tr[data-path="${path}"] td.v`).getAttribute('data-json');
const utc = (us: number): string => new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', ' UTC');
const waitUs = (page: Page, us: number): Promise<unknown> =>
  page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, us);

/**
 * From now on, every value cell that starts flashing is recorded in `window.flashes` as
 * [path, data-json] (a MutationObserver on the table's class attributes; the table removes
 * and re-adds `flash` on a changed cell, and touches no class of an unchanged one).
 */
const recordFlashes = (page: Page): Promise<void> => page.evaluate(() => {
  window.flashes = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const td = r.target;
      if (r.attributeName === 'class' && td.classList.contains('v') && td.classList.contains('flash')) {
        window.flashes.push([td.parentElement?.dataset.path ?? '', td.dataset.json ?? '']);
      }
    }
  }).observe(document.querySelector('#values tbody')!, { attributes: true, attributeFilter: ['class'], subtree: true });
});
const clearFlashes = (page: Page): Promise<void> => page.evaluate(() => { window.flashes = []; });
const flashes = (page: Page): Promise<Array<[string, string]>> => page.evaluate(() => window.flashes);
/** The x values (epoch s) the uPlot chart of `path` holds, or null without a chart. */
const chartXs = (page: Page, path: string): Promise<number[] | null> =>
  page.evaluate((p) => window.tapedeck.charts.charts.get(p)?.plot.data[0]?.slice() ?? null, path);
/** The session's controls as the server has them (GET /api/v1/sessions/:id). */
async function serverControls(base: string, page: Page): Promise<{ posUs: number | null; speed: number | string; state: string }> {
  const id = await page.evaluate(() => window.tapedeck.session.id);
  const res = await api(base, 'GET', `/api/v1/sessions/${id}`);
  expect(res.status).toBe(200);
  return res.body.controls;
}

let browser: TestBrowser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

describe('web player over a pre-written archive', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(Array.from({ length: GROUP }, (_, i) => batch(i)));
    await server.archive.writer!.rotate();
    for (let i = 2 * GROUP; i < 3 * GROUP; i++) server.archive.writer!.append(batch(i).updates, batch(i).ts);
    await server.archive.writer!.flush();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('plays, pauses, seeks by clicking the timeline, steps, and shows what /api/v1/state answers', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/?pos=beginning&state=pause&select=/dev/a,/dev/b,/dev/name`);
    await waitConn(page, 'paused');

    // The timeline: two local files with the gap between them shaded as a gap.
    await expect.poll(() => page.locator('#tl-files .seg-local').count()).toBe(2);
    expect(await page.locator('#tl-files .seg-gap').count()).toBe(1);
    expect(await page.locator('#tl-first').textContent()).toBe(utc(T0));
    expect(await page.locator('#tl-last').textContent()).toBe(utc(T0 + (3 * GROUP - 1) * S));

    // Speed, then play: values change.
    await page.selectOption('#speed', '100');
    await page.waitForFunction(() => window.tapedeck.model.controls.speed === 100);
    await page.getByRole('button', { name: 'Play' }).click();
    await waitConn(page, 'playing');
    expect(await page.locator('#conn').textContent()).toContain('100×');
    await page.waitForFunction(() => Number(document.querySelector('#values tr[data-path="/dev/a"] td.v')?.getAttribute('data-json')) >= 5);
    expect(await page.locator('.chart[data-path="/dev/a"] canvas').count()).toBe(1);

    // Space pauses.
    await page.locator('body').press(' ');
    await waitConn(page, 'paused');
    expect(await page.getByRole('button', { name: 'Play' }).count()).toBe(1);

    // Click a quarter of the way along the timeline: the position, the shown time and the
    // values are those of /api/v1/state at that time.
    const box = (await page.locator('#timeline').boundingBox())!;
    const target = T0 + 0.25 * (3 * GROUP - 1) * S;
    await page.locator('#timeline').click({ position: { x: box.width * 0.25, y: box.height / 2 } });
    await page.waitForFunction((t) => Math.abs(Number(document.getElementById('pos-time')?.dataset.us) - t) < 3_000_000, target);
    const at = await shownUs(page);
    expect(await page.locator('#pos-time').textContent()).toBe(utc(at));
    const state = await api(server.url, 'GET', `/api/v1/state?at=${at}&glob=/dev/*`);
    expect(state.status).toBe(200);
    for (const p of ['/dev/a', '/dev/b', '/dev/name']) {
      await expect.poll(() => cellJson(page, p)).toBe(JSON.stringify(state.body.values[p]));
    }
    expect(await connState(page)).toBe('paused');

    // Step forward one batch by keyboard, back by button; +1 minute by button. (A seek to a
    // time between batches stands there; a step lands on a batch.)
    const floor = T0 + Math.floor((at - T0) / S) * S;
    const aAt = (us: number): string => JSON.stringify((us - T0) / S);
    await page.locator('body').press('ArrowRight');
    await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, floor + S);
    await expect.poll(() => cellJson(page, '/dev/a')).toBe(aAt(floor + S));
    await page.getByRole('button', { name: 'Step one batch back' }).click();
    await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, floor);
    await expect.poll(() => cellJson(page, '/dev/a')).toBe(aAt(floor));
    await page.getByRole('button', { name: 'Forward one minute' }).click();
    await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, floor + 60 * S);
    await expect.poll(() => cellJson(page, '/dev/a')).toBe(aAt(floor + 60 * S));

    // Loop toggle and a start marker show on the page from the server's controls.
    await page.getByRole('button', { name: 'Loop' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Loop' }).getAttribute('aria-pressed')).toBe('true');
    await page.locator('body').press('[');
    await expect.poll(() => page.locator('#tl-start').isVisible()).toBe(true);

    // A bad control: the server's code and message are shown; the session lives on.
    await page.evaluate(() => window.tapedeck.session.send({ speed: 5000 }));
    await waitConn(page, 'error');
    expect(await page.locator('#conn').textContent()).toContain('TPD_BAD_CONTROL');

    // Buffering while a cold file is fetched shows until the file arrived (frames as the
    // session sends them, handed to the page's frame handler).
    const info = (code: string, message: string): Promise<void> => page.evaluate(([c, m]) => {
      window.tapedeck.session.dispatchEvent(new CustomEvent('frame', { detail: { type: 'info', code: c, message: m } }));
    }, [code, message] as const);
    await info('TPD_BUFFERING', 'buffering: fetching archive file 2026-01-01T00:04:59Z from cold storage');
    await waitConn(page, 'buffering');
    expect(await page.locator('#conn').textContent()).toContain('fetching archive file');
    await info('TPD_BUFFERED', 'archive file fetched; playback goes on');
    await waitConn(page, 'error'); // the bad control's error is still shown until the next action

    // Reconnect: the stream reopens for the same session at the same position.
    const id = await page.evaluate(() => window.tapedeck.session.id);
    const before = await shownUs(page);
    await page.getByRole('button', { name: 'Step one batch forward' }).click(); // clears the error
    await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, before + S);
    await page.evaluate(() => window.tapedeck.session.ws.close());
    await page.waitForFunction(() => window.tapedeck.session.state !== 'open');
    await waitConn(page, 'paused');
    expect(await shownUs(page)).toBe(before + S);
    expect(await page.evaluate(() => window.tapedeck.session.id)).toBe(id);

    // Drag the play head to three quarters; Alt-click sets the end marker on the timeline,
    // backslash clears both markers.
    const quarter = (f: number): number => T0 + f * (3 * GROUP - 1) * S;
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((t) => Math.abs(Number(document.getElementById('pos-time')?.dataset.us) - t) < 3_000_000, quarter(0.75));
    await page.keyboard.down('Alt');
    await page.mouse.click(box.x + box.width * 0.9, box.y + box.height / 2);
    await page.keyboard.up('Alt');
    await expect.poll(() => page.locator('#tl-end').isVisible()).toBe(true);
    expect(Math.abs(Date.parse(await page.evaluate(() => window.tapedeck.model.controls.end as string)) * 1000 - quarter(0.9))).toBeLessThan(3_000_000);
    // Loop off, unlimited speed, play: the bounded end is reached and the page says so.
    await page.getByRole('button', { name: 'Loop' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Loop' }).getAttribute('aria-pressed')).toBe('false');
    await page.selectOption('#speed', 'unlimited');
    await page.getByRole('button', { name: 'Play' }).click();
    await waitConn(page, 'ended');
    await page.locator('body').press('\\');
    await expect.poll(() => page.locator('#tl-start').isVisible()).toBe(false);
    await expect.poll(() => page.locator('#tl-end').isVisible()).toBe(false);

    // The path filter and the help overlay.
    await page.locator('#glob').fill('/dev/n*');
    await expect.poll(() => page.locator('#tree-count').textContent()).toBe('1 of 3 paths');
    await page.locator('#glob').fill('');
    await expect.poll(() => page.locator('#tree-count').textContent()).toBe('3 of 3 paths');
    await page.locator('#glob').press('Escape'); // leaves the filter box: keys are shortcuts again
    await page.locator('body').press('?');
    await expect.poll(() => page.locator('#help').isVisible()).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('#help').isVisible()).toBe(false);

    await page.screenshot({ path: await artifactPath('web-player-archive.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('web player over a three-hour archive', () => {
  let server: TestServer;
  /** Seconds of history the charts load before the position (a batch a second here). */
  const HISTORY_S = 600;

  beforeAll(async () => {
    server = await startServer(Array.from({ length: 3 * 3600 }, (_, i) => batch(i)));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('flashes changed cells, restarts the charts on a seek and grows them while playing, and takes +/− and the hour keys', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const startUs = T0 + 1800 * S;
    await page.goto(`${server.url}/?pos=${startUs}&state=pause&select=/dev/a,/dev/b,/dev/name`);
    await waitConn(page, 'paused');
    await waitUs(page, startUs);
    await expect.poll(() => cellJson(page, '/dev/a')).toBe('1800');

    /** After a seek to `us`, the chart of `path` holds exactly the state frame's point at `us`
     * and one point a second of the ten minutes before it (the loaded history). */
    const chartRestartedAt = async (path: string, us: number): Promise<void> => {
      const want = Array.from({ length: HISTORY_S + 1 }, (_, k) => us / S - HISTORY_S + k);
      await expect.poll(() => chartXs(page, path)).toEqual(want);
    };
    // One chart per numeric path (the string path has none), each restarted from the state.
    await expect.poll(() => page.locator('.chart').count()).toBe(2);
    expect(await page.locator('.chart[data-path="/dev/name"]').count()).toBe(0);
    await chartRestartedAt('/dev/a', startUs);
    await chartRestartedAt('/dev/b', startUs);

    // A step changes /dev/a and /dev/b but not /dev/name: the two changed cells flash, the
    // unchanged one does not (all three are written in the same animation frame).
    await recordFlashes(page);
    await page.locator('body').press('ArrowRight');
    await waitUs(page, startUs + S);
    await expect.poll(() => flashes(page)).toContainEqual(['/dev/a', '1801']);
    expect(await flashes(page)).toContainEqual(['/dev/b', '900.5']);
    expect((await flashes(page)).filter(([p]) => p === '/dev/name')).toEqual([]);
    await expect.poll(() => page.locator('#values tr[data-path="/dev/a"] td.v').getAttribute('class')).toContain('flash');
    await chartRestartedAt('/dev/a', startUs + S);

    // PageUp / PageDown jump one hour: the shown time, the server's session and the values agree.
    const jumped = async (us: number): Promise<void> => {
      await waitUs(page, us);
      expect(await page.locator('#pos-time').textContent()).toBe(utc(us));
      expect((await serverControls(server.url, page)).posUs).toBe(us);
      await expect.poll(() => cellJson(page, '/dev/a')).toBe(JSON.stringify((us - T0) / S));
      await chartRestartedAt('/dev/a', us);
    };
    await page.locator('body').press('PageUp');
    await jumped(startUs + 3601 * S);
    await page.locator('body').press('PageDown');
    await jumped(startUs + S);

    // + and − (and =) step through the speed list; the select and the server's session show it.
    const speedIs = async (v: number): Promise<void> => {
      await page.waitForFunction((x) => window.tapedeck.model.controls.speed === x, v);
      expect(await page.locator('#speed').inputValue()).toBe(String(v));
      expect((await serverControls(server.url, page)).speed).toBe(v);
    };
    expect(await page.locator('#speed').inputValue()).toBe('1');
    await page.locator('body').press('+');
    await speedIs(2);
    await page.locator('body').press('-');
    await page.locator('body').press('-');
    await speedIs(0.5);
    await page.locator('body').press('=');
    await speedIs(1);
    for (const v of [2, 5, 10, 25, 50, 100]) {
      await page.locator('body').press('+');
      await speedIs(v);
    }

    // Play at 100×: the charts append every batch and the value cells flash as they change.
    await clearFlashes(page);
    await page.locator('body').press(' ');
    await waitConn(page, 'playing');
    expect(await page.locator('#conn').textContent()).toContain('playing 100×');
    await page.waitForFunction(([p, n]) => (window.tapedeck.charts.charts.get(p)?.plot.data[0]?.length ?? 0) >= n, ['/dev/a', HISTORY_S + 1 + 100] as const);
    await expect.poll(async () => (await flashes(page)).filter(([p]) => p === '/dev/a').length).toBeGreaterThan(1);
    await page.locator('body').press(' ');
    await waitConn(page, 'paused');
    // Paused: the chart holds one point a second from ten minutes before the last seek up to
    // the position (the session's, once the page shows it: the badge is written at once, the
    // position on the next animation frame).
    const pausedUs = (await serverControls(server.url, page)).posUs!;
    await waitUs(page, pausedUs);
    expect(pausedUs).toBeGreaterThanOrEqual(startUs + (1 + 100) * S);
    const played = Array.from({ length: (pausedUs - startUs - S) / S + HISTORY_S + 1 }, (_, k) => (startUs + S) / S - HISTORY_S + k);
    await expect.poll(() => chartXs(page, '/dev/a')).toEqual(played);
    expect(await cellJson(page, '/dev/a')).toBe(JSON.stringify((pausedUs - T0) / S));

    // A seek drops what was played: the charts restart from the state at the new position.
    await page.locator('body').press('PageUp');
    await jumped(pausedUs + 3600 * S);
    await chartRestartedAt('/dev/b', pausedUs + 3600 * S);

    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('web player over a server recording the simulator', () => {
  it('presses play at the end, sees values change, and follows live', async () => {
    const { archive_directory: _dir, ...embedded } = EMBEDDED_DEFAULT;
    const srv = await recordingServer({
      ...embedded,
      record: { spec: ['/**'], poll_interval: '200ms', flush_interval: '100ms' },
      publish: { bind: '127.0.0.1:0' },
      simulator: { port: 0, switches: 4, interval: '200ms' },
    });
    try {
      const fabric = srv.sources.find((s) => s.name === 'fabric')!;
      if (fabric.health().polls === 0) await waitFor<PollEvent>(fabric, 'poll');
      await expect.poll(() => srv.archive.lastTs, { interval: 50 }).toBeGreaterThan(0); // committed
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const path = '/fabric/sw-001/cpu_util_pct';
      await page.goto(`${srv.url}/?pos=end&state=pause&select=${path}`);
      await waitConn(page, 'paused');
      await page.getByRole('button', { name: 'Play' }).click();
      await page.waitForFunction(() => ['playing', 'live'].includes(document.getElementById('conn')?.dataset.state ?? ''));
      const first = await cellJson(page, path);
      await page.waitForFunction(([p, v]) => {
        const cell = document.querySelector(`#values tr[data-path="${p}"] td.v`);
        return cell !== null && cell.getAttribute('data-json') !== v;
      }, [path, first] as const, { timeout: 10_000 });

      // Pause, then click a quarter of the way along the timeline: the shown time is the
      // session's position, and the cell is what /api/v1/state answers at that time.
      await page.locator('body').press(' ');
      await waitConn(page, 'paused');
      const pausedUs = (await serverControls(srv.url, page)).posUs!;
      await waitUs(page, pausedUs);
      const box = (await page.locator('#timeline').boundingBox())!;
      await page.locator('#timeline').click({ position: { x: box.width * 0.25, y: box.height / 2 } });
      await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) < t, pausedUs);
      await waitConn(page, 'paused');
      const matchesState = async (us: number): Promise<void> => {
        expect(await page.locator('#pos-time').textContent()).toBe(utc(us));
        expect((await serverControls(srv.url, page)).posUs).toBe(us);
        const state = await api(srv.url, 'GET', `/api/v1/state?at=${us}&glob=${path}`);
        expect(state.status).toBe(200);
        expect(typeof state.body.values[path]).toBe('number');
        await expect.poll(() => cellJson(page, path)).toBe(JSON.stringify(state.body.values[path]));
      };
      const at = await shownUs(page);
      const range = await page.evaluate(() => [window.tapedeck.timeline.firstUs!, window.tapedeck.timeline.lastUs!]);
      expect(at).toBeGreaterThan(range[0]!);
      expect(at).toBeLessThan(range[1]!);
      await matchesState(at);

      // The step key lands on the next recorded batch, and the cell follows.
      await page.locator('body').press('ArrowRight');
      await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) > t, at);
      const stepped = await shownUs(page);
      const between = await fetch(`${srv.url}/api/v1/history?from=${at + 1}&to=${stepped}&glob=/**&format=ndjson`);
      expect(between.status).toBe(200);
      const lines = (await between.text()).split('\n').filter((l) => l !== '');
      expect(lines.map((l) => (JSON.parse(l) as { ts: number }).ts)).toEqual([stepped]);
      await matchesState(stepped);

      // + changes the speed: the select and the server's session show 2×.
      expect(await page.locator('#speed').inputValue()).toBe('1');
      await page.locator('body').press('+');
      await page.waitForFunction(() => window.tapedeck.model.controls.speed === 2);
      expect(await page.locator('#speed').inputValue()).toBe('2');
      expect((await serverControls(srv.url, page)).speed).toBe(2);

      // Live: follows the tail; the position moves on with the recording.
      await page.getByRole('button', { name: 'Live: follow the tail' }).click();
      await waitConn(page, 'live');
      const firstUs = await shownUs(page);
      await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) > t, firstUs);
      expect(await page.locator(`.chart[data-path="${path}"] canvas`).count()).toBe(1);
      await page.screenshot({ path: await artifactPath('web-player-live.png'), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await srv.close();
    }
  });
});

describe('web player over an archive whose first file is in cold storage', () => {
  it('shades the remote file and shows buffering while a seek fetches it', async () => {
    const base = await tmpDir('tapedeck-web-cold-');
    const cold = join(base, 'cold');
    await mkdir(cold);
    // A get hook that takes a moment, so that buffering lasts long enough to be seen.
    const slowGet = join(base, 'slow-get.sh');
    await writeFile(slowGet, `#!/bin/sh\nsleep 0.3\nexec ${join(HOOKS, 'get-copy.sh')} "$@"\n`);
    await chmod(slowGet, 0o755);
    const srv = await startRecorder(resolveConfig({
      archive_directory: join(base, 'archive'),
      archive_cmds: { put: [join(HOOKS, 'put-copy.sh'), [cold]], list: [join(HOOKS, 'list-dir.sh'), [cold]], get: [slowGet, [cold]] },
      archive_hooks: { attempts: 1, list_interval: null },
      retention: { max_bytes: 1, check_interval: '1h' },
      record: { flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [],
    }), { logger: pino({ level: 'silent' }) });
    try {
      for (let i = 0; i < 20; i++) srv.archive.writer!.append([['/lab/temp', 20 + i / 2]], T0 + i * S);
      const shipped = new Promise<ColdEvent>((done) => srv.cold!.once('event', done));
      await srv.archive.writer!.rotate();
      expect(await shipped).toMatchObject({ type: 'put', ok: true });
      await srv.cold!.check(); // evicts the shipped file: it is remote now
      for (let i = 40; i < 60; i++) srv.archive.writer!.append([['/lab/temp', 20 + i / 2]], T0 + i * S);
      await srv.archive.writer!.flush();

      const page = await browser.context.newPage();
      // Every state the connection badge shows, however briefly.
      await page.addInitScript(() => {
        const w = window as unknown as { shownStates: string[] };
        w.shownStates = [];
        document.addEventListener('DOMContentLoaded', () => {
          const el = document.getElementById('conn')!;
          new MutationObserver(() => w.shownStates.push(`${el.dataset.state}: ${el.textContent}`)).observe(el, { attributes: true, childList: true, subtree: true, characterData: true });
        });
      });
      await page.goto(`${srv.url}/?pos=${T0 + 50 * S}&state=pause`);
      await waitConn(page, 'paused');
      await expect.poll(() => page.locator('#tl-files .seg-remote').count()).toBe(1);
      expect(await page.locator('#tl-files .seg-local').count()).toBe(1);
      expect(await page.locator('#tl-files .seg-gap').count()).toBe(1);

      // Click in the remote file: the badge says buffering until the file is fetched.
      const box = (await page.locator('#timeline').boundingBox())!;
      await page.locator('#timeline').click({ position: { x: box.width * 0.1, y: box.height / 2 } });
      await page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) < t, T0 + 20 * S);
      await waitConn(page, 'paused');
      const shown = await page.evaluate(() => (window as unknown as { shownStates: string[] }).shownStates);
      expect(shown.some((s) => s.startsWith('buffering:') && s.includes('cold storage'))).toBe(true);

      // Select the path in the tree: the value is the one /api/v1/state answers there.
      await page.getByRole('checkbox', { name: 'temp', exact: true }).check(); // few paths: folders are open
      const at = await shownUs(page);
      const state = await api(srv.url, 'GET', `/api/v1/state?at=${at}&glob=/lab/temp`);
      await expect.poll(() => cellJson(page, '/lab/temp')).toBe(JSON.stringify(state.body.values['/lab/temp']));
      await page.screenshot({ path: await artifactPath('web-player-cold.png'), fullPage: true });
      await page.close();
    } finally {
      await srv.close();
    }
  });
});
