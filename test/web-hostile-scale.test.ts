/**
 * The web player against hostile amounts and shapes of recorded data, in a real browser
 * (Debian's Chromium via playwright-core) over a real server: 10 000 paths each in its own
 * folder, a path of 2 000 segments, a 100 KB string, strings cut where a surrogate pair
 * starts and strings holding a lone surrogate. The page must draw a bounded tree (its named
 * limits in clients/web/tree.js), stay responsive, and show each value as the codec says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Value } from '../protocol/value.js';
import { valueToJson } from '../protocol/value-json.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { startServer, type TestServer } from './helpers/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects */
declare const document: any;
declare const window: any;

const T0 = Date.UTC(2026, 0, 1) * 1000;
const FOLDERS = 10_000;
const DEEP = '/d'.repeat(2000) + '/leaf';
const BIG = 'x'.repeat(50_000) + '\u{1F600}'.repeat(25_000); // 100 000 code units
const VALUES: Array<[string, Value]> = [
  ['/v/big', BIG],
  ['/v/pair', 'a'.repeat(159) + '\u{1F600}tail'], // the display cut falls inside the pair
  ['/v/lone', 'x\ud800y'],
  ['/v/lone2', '\udc00'],
  ['/v/nul', 'a\u0000b'],
];
/** What each value cell must read. */
const SHOWN: Record<string, string> = {
  '/v/big': 'x'.repeat(160) + '…',
  '/v/pair': 'a'.repeat(159) + '…',
  '/v/lone': '"x\\ud800y"',
  '/v/lone2': '"\\udc00"',
  '/v/nul': '"a\\u0000b"', // a NUL draws nothing: shown as its escape, like a lone surrogate (audit11)
};

let browser: TestBrowser;
let server: TestServer;

beforeAll(async () => {
  browser = await launchBrowser();
  const updates: Array<[string, Value]> = Array.from({ length: FOLDERS }, (_, i) => [`/f${i}/x`, i]);
  server = await startServer([{ ts: T0, updates: [...updates, [DEEP, 1], ...VALUES] }]);
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
});

async function open(query: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/${query}`);
  await page.waitForFunction(() => window.tapedeck?.model.controls !== null && document.getElementById('pos-time')?.dataset.us !== '');
  return { page, errors };
}

const treeCount = (page: Page): Promise<string> => page.evaluate(() => document.getElementById('tree-count').textContent);

describe('web player against hostile amounts of recorded data', () => {
  it('draws at most FOLDERS_SHOWN_MAX folders a level and says how many more', async () => {
    const { page, errors } = await open('?pos=end&state=pause');
    const total = FOLDERS + 1 + VALUES.length;
    await expect.poll(() => treeCount(page), { timeout: 15_000 }).toBe(`${total} of ${total} paths`);
    expect(await page.locator('#tree details').count()).toBeLessThanOrEqual(2000);
    expect(await page.locator('#tree li.more').allTextContents()).toEqual([`${FOLDERS + 2 - 2000} more folders: refine the filter`]);
    // The filter still reaches every folder.
    await page.fill('#glob', '/f9999/**');
    await expect.poll(() => treeCount(page)).toBe(`1 of ${total} paths`);
    expect(await page.locator('#tree input[data-path]').evaluateAll((els: any[]) => els.map((e) => e.dataset.path))).toEqual(['/f9999/x']);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a path of 2 000 segments as a leaf under a bounded depth of folders, selectable', async () => {
    const { page, errors } = await open('?pos=end&state=pause');
    await page.fill('#glob', '/d/**/leaf');
    await expect.poll(() => treeCount(page)).toMatch(/^1 of /);
    const leaf = page.locator('#tree input[data-path]');
    expect(await leaf.evaluateAll((els: any[]) => els.map((e) => e.dataset.path))).toEqual([DEEP]);
    const depth: number = await leaf.evaluate((e: any) => { let d = 0; for (let x = e; x; x = x.parentElement) d++; return d; });
    expect(depth).toBeLessThan(120);
    await leaf.check();
    await expect.poll(() => page.locator('#values tbody tr').evaluateAll((trs: any[]) => trs.map((tr) => tr.dataset.path))).toEqual([DEEP]);
    expect(await page.locator('#values tbody tr td.v').getAttribute('data-json')).toBe('1');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows long and odd strings cut whole and exact where they are kept', async () => {
    const { page, errors } = await open(`?pos=end&state=pause&select=${VALUES.map(([p]) => p).join(',')}`);
    await page.waitForFunction((n) => document.querySelectorAll('#values tbody tr').length === n, VALUES.length);
    const rows: Array<[string, string, string]> = await page.evaluate(() => [...document.querySelectorAll('#values tbody tr')].map((tr: any) => [tr.dataset.path, tr.querySelector('td.v').textContent, tr.querySelector('td.v').dataset.json]));
    for (const [path, text, json] of rows) {
      expect(text, path).toBe(SHOWN[path]);
      expect(json, path).toBe(JSON.stringify(valueToJson(VALUES.find(([p]) => p === path)![1])));
    }
    expect(errors).toEqual([]);
    await page.close();
  });
});
