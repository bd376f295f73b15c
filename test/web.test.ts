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
  getAttribute(name: string): string | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  addEventListener(type: string, listener: () => void): void;
};
declare const MutationObserver: new (callback: () => void) => { observe(target: PageElement, options: Record<string, boolean>): void };
declare const CustomEvent: new (type: string, init: { detail: unknown }) => unknown;
declare const window: {
  tapedeck: {
    model: { controls: { speed: unknown; end: unknown } };
    session: { id: string; state: string; ws: { close(): void }; send(set: unknown): void; dispatchEvent(e: unknown): boolean };
  };
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
