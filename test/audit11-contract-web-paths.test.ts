/**
 * Path names the web player draws (the value table's row headers, the tree's leaves and
 * folders) may hold controls, C1 controls and bidi overrides: a recorded name is any text
 * without NUL or lone surrogates. Drawn raw, U+202E shows a name backwards and a newline or
 * ESC shows as nothing, so two names look alike or one looks like another. Each such
 * character is drawn as its `\uXXXX` escape (as the terminal clients write it); data-path
 * keeps the name as it is. Real Chromium over a real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Value } from '../protocol/value.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { startServer, type TestServer } from './helpers/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects */
declare const document: any;

const T0 = Date.UTC(2026, 0, 1) * 1000;
const NAMES: Array<[string, string]> = [
  ['/p/\u202eevil', '/p/\\u202eevil'],
  ['/p/a\nb', '/p/a\\u000ab'],
  ['/p/\u001b[2Jx', '/p/\\u001b[2Jx'],
  ['/p/c\u009bd', '/p/c\\u009bd'],
  ['/p/plain é𝄞', '/p/plain é𝄞'],
];
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSHOWN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let browser: TestBrowser;
let server: TestServer;

beforeAll(async () => {
  browser = await launchBrowser();
  server = await startServer([{ ts: T0, updates: NAMES.map(([p], i): [string, Value] => [p, i]) }]);
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
});

describe('web player draws hostile path names as escapes', () => {
  it('row headers and tree leaves show each control and override as its escape; data-path keeps the name', async () => {
    const page = await browser.context.newPage();
    const select = NAMES.map(([p]) => `path=${encodeURIComponent(p)}`).join('&');
    await page.goto(`${server.url}/?pos=end&state=pause&${select}`);
    await page.waitForFunction((n: number) => document.querySelectorAll('#values tbody tr').length === n, NAMES.length);
    const rows: Array<[string, string]> = await page.evaluate(() => [...document.querySelectorAll('#values tbody tr')].map((tr: any) => [tr.dataset.path, tr.querySelector('th').textContent]));
    expect(new Map(rows)).toEqual(new Map(NAMES));
    await page.fill('#glob', '/p/**');
    await page.waitForFunction((n: number) => document.querySelectorAll('#tree input[data-path]').length === n, NAMES.length);
    const tree: string = await page.evaluate(() => document.getElementById('tree').textContent);
    expect(tree).not.toMatch(UNSHOWN);
    for (const [, shown] of NAMES) expect(tree).toContain(shown.slice(3));
    const dataPaths: string[] = await page.evaluate(() => [...document.querySelectorAll('#tree input[data-path]')].map((i: any) => i.dataset.path));
    expect(dataPaths.sort()).toEqual(NAMES.map(([p]) => p).sort());
    await page.close();
  });
});
