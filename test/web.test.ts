/**
 * The web player in a real browser: Debian's Chromium driven by playwright-core against a
 * real server. One suite over a pre-written archive (two files with a gap between them,
 * for exact assertions), one over a server recording the simulator (live values).
 * Screenshots go to test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Batch } from '../protocol/value.js';
import { EMBEDDED_DEFAULT } from '../server/config.js';
import type { PollEvent } from '../server/sources/source.js';
import { artifactPath, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { recordingServer } from './helpers/recording-server.js';
import { api, startServer, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/upstreams.js';

// Globals of the page, for the functions Playwright runs there (tests compile without the DOM lib).
interface PageElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
}
declare const document: { getElementById(id: string): PageElement | null; querySelector(selector: string): PageElement | null };
declare const CustomEvent: new (type: string, init: { detail: unknown }) => unknown;
declare const window: {
  tapedeck: {
    model: { controls: { speed: unknown; end: unknown } };
    session: { id: string; state: string; ws: { close(): void }; send(set: unknown): void; dispatchEvent(e: unknown): boolean };
  };
};

const T0 = Date.UTC(2026, 0, 1) * 1000;
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
