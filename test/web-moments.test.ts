/**
 * Shareable moments in a real browser (Debian's Chromium via playwright-core): the URL
 * follows position, play state, speed, loop, markers, filter box, selection and layout and
 * reopens them exactly; bookmarks are drawn on the timeline, listed and jumped to; the
 * "what changed" panel shows the REST answer and sorts; the keys (help, play-next, burst,
 * steps, markers, loop) do what the help says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Batch } from '../protocol/value.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Archive } from '../storage/index.js';
import { buildServer } from '../server/app.js';
import { api, type TestServer } from './helpers/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects: the file is about the page DOM and window.tapedeck */
declare const document: any;
declare const window: any;
declare const location: any;

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;
const N = 40;
/** /dev/a counts, /dev/b cycles strings, /dev/c appears at 10, /dev/d disappears (null) at 20, /other/x moves every 5th batch. */
const batches: Batch[] = Array.from({ length: N }, (_, i) => ({
  ts: T0 + i * S,
  updates: [
    ['/dev/a', i * 1.5] as [string, number],
    ['/dev/b', `b${i % 3}`] as [string, string],
    ...(i >= 10 ? [['/dev/c', i] as [string, number]] : []),
    ...(i < 20 ? [['/dev/d', { up: i }] as [string, { up: number }]] : i === 20 ? [['/dev/d', null] as [string, null]] : []),
    ...(i % 5 === 0 ? [['/other/x', -i] as [string, number]] : []),
  ],
}));

let browser: TestBrowser;
let server: TestServer;

let dir: string;

beforeAll(async () => {
  browser = await launchBrowser();
  // Not tmpDir(): it is removed after each test, and the workspace file lives in the archive's directory.
  dir = await mkdtemp(join(tmpdir(), 'tapedeck-moments-'));
  const archive = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024 });
  for (const b of batches) archive.writer!.append(b.updates, b.ts);
  await archive.writer!.flush();
  const app = await buildServer({ archive });
  await app.listen({ port: 0, host: '127.0.0.1' });
  server = { app, archive, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, async close() { await app.close(); await archive.close(); } };
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('pageerror', (e) => console.log('PAGEERROR', e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.log('CONSOLE', m.text()); });
  await page.goto(`${server.url}${path}`);
  await page.waitForFunction(() => window.tapedeck?.model.controls !== null && document.getElementById('pos-time')?.dataset.us !== '');
  return { page, errors };
}

const posUs = (page: Page): Promise<number> => page.evaluate(() => Number(document.getElementById('pos-time').dataset.us));
const waitPos = (page: Page, us: number): Promise<unknown> => page.waitForFunction((t) => Number(document.getElementById('pos-time')?.dataset.us) === t, us);
/** The state the URL holds now, as the page reads it back (selection as a sorted list). */
const urlState = (page: Page): Promise<Record<string, unknown>> => page.evaluate(() => {
  const s = window.tapedeck.urlState();
  return { ...s, selection: [...s.selection].sort() };
});

describe('the URL follows the moment', () => {
  it('reopens position (to the µs, paused), speed, loop, markers, filter box, selection and layout', async () => {
    const at = T0 + 7 * S + 123_457; // between batches: the position is what was asked, not a batch time
    const layout = { v: 1, panels: [{ paths: ['/dev/a'] }] };
    const { page, errors } = await open(`/?pos=${at}&state=pause&layout=${encodeURIComponent(JSON.stringify(layout))}`);
    await waitPos(page, at);
    expect(await page.locator('#conn').getAttribute('data-state')).toBe('paused');
    // Change each piece from the page, as a user would.
    await page.selectOption('#speed', '5');
    await page.waitForFunction(() => window.tapedeck.model.controls.speed === 5);
    await page.locator('#btn-loop').click();
    await page.waitForFunction(() => window.tapedeck.model.controls.loop === true);
    await page.locator('body').press('[');
    await page.waitForFunction(() => window.tapedeck.model.controls.start !== 'unbounded');
    await page.locator('body').press('ArrowRight');
    await waitPos(page, T0 + 8 * S);
    await page.locator('body').press('ArrowRight');
    await waitPos(page, T0 + 9 * S);
    await page.locator('body').press(']');
    await page.waitForFunction(() => window.tapedeck.model.controls.end !== 'unbounded');
    await page.locator('#glob').fill('/dev/*');
    await page.locator('#tree input[data-folder="/dev"]').waitFor();
    // The filter may have opened the folder already: open it, not toggle it.
    await page.locator('#tree details[data-prefix="/dev"]').evaluate((d: any) => { d.open = true; });
    await page.locator('#tree input[data-path="/dev/a"]').check();
    await page.locator('#tree input[data-path="/dev/b"]').check();
    // The URL catches up (throttled) with everything.
    await page.waitForFunction(() => {
      const q = new URLSearchParams(location.search);
      return q.get('speed') === '5' && q.get('loop') === 'true' && q.get('glob') === '/dev/*' && q.getAll('path').length === 2 && q.get('end') !== null && q.get('pos') === q.get('end');
    });
    const before = await urlState(page);
    expect(before).toMatchObject({ posUs: T0 + 9 * S, state: 'pause', speed: 5, loop: true, startUs: at, endUs: T0 + 9 * S, glob: '/dev/*', selection: ['/dev/a', '/dev/b'] });
    const q = new URL(page.url()).searchParams;
    expect(q.get('access_token')).toBeNull();
    expect(JSON.parse(q.get('layout')!)).toBeTypeOf('object');

    // Reload from the URL in a fresh tab: a new session, the same moment.
    const again = await open(new URL(page.url()).pathname + new URL(page.url()).search);
    await waitPos(again.page, T0 + 9 * S);
    await again.page.waitForFunction(() => window.tapedeck.model.controls.end !== 'unbounded');
    await again.page.waitForFunction(() => document.querySelectorAll('#values tbody tr').length === 2);
    expect(await urlState(again.page)).toEqual(before);
    expect(await again.page.locator('#conn').getAttribute('data-state')).toBe('paused');
    expect(await again.page.locator('#glob').inputValue()).toBe('/dev/*');
    expect(await again.page.evaluate(() => window.tapedeck.session.id)).not.toBe(await page.evaluate(() => window.tapedeck.session.id));
    expect([...errors, ...again.errors]).toEqual([]);
    await page.close();
    await again.page.close();
  });

  it('reopens a playing moment playing, and a live one live', async () => {
    const { page, errors } = await open(`/?pos=${T0 + 2 * S}&state=play&speed=0.1`);
    await page.waitForFunction(() => new URLSearchParams(location.search).get('state') === 'play');
    const url = new URL(page.url());
    expect(Number(url.searchParams.get('pos'))).toBeGreaterThanOrEqual(T0 + 2 * S);
    const again = await open(url.pathname + url.search);
    await again.page.waitForFunction(() => window.tapedeck.model.controls.state === 'play');
    expect(await again.page.evaluate(() => window.tapedeck.model.controls.speed)).toBe(0.1);
    expect(await posUs(again.page)).toBeGreaterThanOrEqual(Number(url.searchParams.get('pos')));
    await again.page.locator('body').press('t');
    await again.page.waitForFunction(() => new URLSearchParams(location.search).get('state') === 'tail');
    expect(new URL(again.page.url()).searchParams.get('pos')).toBeNull();
    expect([...errors, ...again.errors]).toEqual([]);
    await page.close();
    await again.page.close();
  });
});

describe('bookmarks in the player', () => {
  it('adds one with a key and a note, draws it on the timeline with the note, lists it and jumps to it', async () => {
    const { page, errors } = await open(`/?pos=${T0 + 12 * S}&state=pause`);
    await waitPos(page, T0 + 12 * S);
    await page.locator('body').press('m');
    await page.locator('#bm-note').fill('link flap <b>on</b> sw-7');
    await page.locator('#bm-note').press('Enter');
    const flag = page.locator(`#tl-bookmarks .tl-bookmark[data-ts="${T0 + 12 * S}"]`);
    await flag.waitFor();
    expect(await flag.getAttribute('title')).toContain('link flap <b>on</b> sw-7');
    const stored = (await api(server.url, 'GET', '/api/v1/bookmarks')).body.bookmarks as Array<{ id: string; ts: number; note: string; url: string }>;
    const mine = stored.find((b) => b.note === 'link flap <b>on</b> sw-7')!;
    expect(mine.ts).toBe(T0 + 12 * S);
    expect(new URLSearchParams(mine.url).get('pos')).toBe(String(T0 + 12 * S));
    // Another person's bookmark shows up on the next refresh; the list jumps to either.
    await api(server.url, 'POST', '/api/v1/bookmarks', { ts: T0 + 30 * S, note: 'second' });
    await page.locator(`#bm-list li[data-ts="${T0 + 30 * S}"]`).waitFor({ timeout: 15_000 });
    await page.locator(`#bm-list li[data-ts="${T0 + 30 * S}"] .bm-go`).click();
    await waitPos(page, T0 + 30 * S);
    await page.locator('body').press(',');
    await waitPos(page, T0 + 12 * S);
    await page.locator('body').press('.');
    await waitPos(page, T0 + 30 * S);
    await flag.click();
    await waitPos(page, T0 + 12 * S);
    // Its link reopens the moment as it was shown.
    expect(await page.locator(`#bm-list li[data-id="${mine.id}"] a`).getAttribute('href')).toBe(`/?${mine.url}`);
    await page.locator(`#bm-list li[data-id="${mine.id}"] .bm-del`).click();
    await flag.waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('what changed', () => {
  it('shows per path what GET /api/v1/diff answers for the markers, sorts by each column and jumps to a first change', async () => {
    const start = T0 + 5 * S;
    const end = T0 + 25 * S;
    const { page, errors } = await open(`/?pos=${end}&state=pause&start=${start}&end=${end}`);
    await page.waitForFunction(() => window.tapedeck.model.controls.end !== 'unbounded');
    await page.locator('body').press('d');
    await page.locator('#diff-table tbody tr').first().waitFor();
    const rest = (await api(server.url, 'GET', `/api/v1/diff?start=${start}&end=${end}`)).body;
    const rows = (): Promise<Array<Record<string, unknown>>> => page.evaluate(() => [...document.querySelectorAll('#diff-table tbody tr')].map((tr: any) => {
      const td = tr.querySelectorAll('td');
      const json = (i: number): unknown => (td[i].dataset.json === '' ? undefined : JSON.parse(td[i].dataset.json));
      return { path: tr.dataset.path, start: json(1), end: json(2), changes: Number(td[3].textContent), firstTs: Number(tr.dataset.firstTs), min: json(6), max: json(7), presence: td[8].textContent };
    }));
    const want = (rest.paths as Array<Record<string, unknown>>).map((p) => ({
      path: p.path, start: p.start, end: p.end, changes: p.changes, firstTs: p.firstTs, min: p.min, max: p.max,
      presence: (rest.appeared as string[]).includes(p.path as string) ? 'appeared' : (rest.disappeared as string[]).includes(p.path as string) ? 'disappeared' : '',
    }));
    expect(want.map((w) => w.path)).toEqual(['/dev/a', '/dev/b', '/dev/c', '/dev/d', '/other/x']);
    expect(want.find((w) => w.path === '/dev/c')!.presence).toBe('appeared');
    expect(want.find((w) => w.path === '/dev/d')!.presence).toBe('disappeared');
    expect(await rows()).toEqual(want);
    expect(await page.locator('#diff-summary').textContent()).toContain(`${rest.counts.changed} changed`);

    await page.locator('#diff-table thead button[data-key="changes"]').click();
    const byChanges = [...want].sort((a, b) => (a.changes as number) - (b.changes as number) || ((a.path as string) < (b.path as string) ? -1 : 1));
    expect((await rows()).map((r) => r.path)).toEqual(byChanges.map((r) => r.path));
    await page.locator('#diff-table thead button[data-key="changes"]').click();
    const desc = [...want].sort((a, b) => (b.changes as number) - (a.changes as number) || ((a.path as string) < (b.path as string) ? -1 : 1));
    expect((await rows()).map((r) => r.path)).toEqual(desc.map((r) => r.path));
    expect(await page.locator('#diff-table th[aria-sort="descending"] button').getAttribute('data-key')).toBe('changes');
    await page.locator('#diff-table thead button[data-key="firstTs"]').click();
    expect((await rows()).map((r) => r.firstTs)).toEqual(want.map((w) => w.firstTs as number).sort((a, b) => a - b));

    await page.locator('#diff-table tbody tr[data-path="/dev/c"]').click();
    await waitPos(page, T0 + 10 * S);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('compares a range picked with Shift+drag on the timeline', async () => {
    const { page, errors } = await open(`/?pos=${T0}&state=pause`);
    const box = (await page.locator('#timeline').boundingBox())!;
    await page.keyboard.down('Shift');
    await page.mouse.move(box.x + box.width * 0.1, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.locator('#diff-table tbody tr').first().waitFor();
    const c = await page.evaluate(() => window.tapedeck.model.controls);
    expect(c.start).not.toBe('unbounded');
    expect(c.end).not.toBe('unbounded');
    expect(await page.locator('#diff-range').textContent()).toContain('→');
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('keys', () => {
  it('lists every shortcut in the help overlay, play-next and burst among them', async () => {
    const { page, errors } = await open(`/?pos=${T0}&state=pause`);
    await page.locator('body').press('?');
    await page.locator('#help').waitFor({ state: 'visible' });
    const keys = await page.locator('#help-keys tr').evaluateAll((trs: any[]) => trs.map((tr) => tr.dataset.keys));
    for (const k of [' ', 'n', 'b', 'd', 'm', 'c', '?', 'ArrowLeft ArrowRight']) expect(keys).toContain(k);
    expect(await page.locator('#help-keys tr[data-keys="b"] td').textContent()).toContain('next 10 batches');
    await page.keyboard.press('Escape');
    await page.locator('#help').waitFor({ state: 'hidden' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('plays the next batch (n), a burst (b), steps, plays and pauses, loops and sets markers from the keyboard', async () => {
    const { page, errors } = await open(`/?pos=${T0 + 3 * S}&state=pause`);
    await waitPos(page, T0 + 3 * S);
    await page.locator('body').press('n');
    await waitPos(page, T0 + 4 * S);
    await page.locator('body').press('b');
    await waitPos(page, T0 + 14 * S);
    await page.locator('body').press('ArrowLeft');
    await waitPos(page, T0 + 13 * S);
    await page.locator('body').press('l');
    await page.waitForFunction(() => window.tapedeck.model.controls.loop === true);
    await page.locator('body').press('[');
    await page.waitForFunction(() => window.tapedeck.model.controls.start !== 'unbounded');
    await page.locator('body').press('\\');
    await page.waitForFunction(() => window.tapedeck.model.controls.start === 'unbounded');
    await page.locator('body').press(' ');
    await page.waitForFunction(() => window.tapedeck.model.controls.state === 'play');
    await page.locator('body').press(' ');
    await page.waitForFunction(() => window.tapedeck.model.controls.state === 'pause');
    await page.locator('body').press('u');
    await page.waitForFunction(() => window.tapedeck.model.controls.speed === 'unlimited');
    // Typing in a field is not a shortcut.
    const before = await posUs(page);
    await page.locator('#glob').press('n');
    expect(await page.locator('#glob').inputValue()).toBe('n');
    expect(await posUs(page)).toBe(before);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('named layouts', () => {
  it('saves the layout on screen under a name, lists it, and loads another into the charts and the selection', async () => {
    const layout = { v: 1, panels: [{ paths: ['/dev/a', '/dev/c'] }] };
    const { page, errors } = await open(`/?pos=${T0}&state=pause&layout=${encodeURIComponent(JSON.stringify(layout))}`);
    await page.locator('#layout-name').fill('core view');
    await page.locator('#btn-layout-save').click();
    await page.locator('#layout-select option[value="core view"]').waitFor({ state: 'attached' });
    const saved = (await api(server.url, 'GET', '/api/v1/layouts/core%20view')).body;
    expect(saved.layout).toEqual(await page.evaluate(() => window.tapedeck.urlState().layout));
    // Loading another one shows its paths in the charts and the values table.
    const other = { v: 1, panels: [{ paths: ['/other/x'] }, { paths: ['/dev/c'] }] };
    expect((await api(server.url, 'PUT', '/api/v1/layouts/other', { layout: other })).status).toBe(201);
    await page.locator('#layout-name').fill('tmp'); // any save refreshes the list; so does the 5 s refresh
    await page.locator('#btn-layout-save').click();
    await page.locator('#layout-select option[value="other"]').waitFor({ state: 'attached' });
    await page.selectOption('#layout-select', 'other');
    await page.locator('#btn-layout-load').click();
    await page.waitForFunction(() => window.tapedeck.charts.getLayout().panels.length === 2);
    expect(await page.evaluate(() => window.tapedeck.charts.getLayout())).toEqual(other);
    await page.locator('#values tbody tr[data-path="/dev/c"]').waitFor();
    await page.waitForFunction(() => new URLSearchParams(location.search).getAll('path').includes('/other/x'));
    await page.selectOption('#layout-select', 'core view');
    await page.locator('#btn-layout-delete').click();
    await page.locator('#layout-select option[value="core view"]').waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await page.close();
  });
});
