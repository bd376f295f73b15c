/**
 * The web player against hostile recorded data, in a real browser (Debian's Chromium via
 * playwright-core) over a real server: path names, string values, bookmark notes and URLs,
 * and error messages that carry HTML, script, `javascript:` URLs, attribute-breaking quotes
 * and CSS. The page must run none of it (each payload would set window.__pwned; a CSP
 * violation listener catches the rest), and must show each value as the protocol codec says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Batch, Value } from '../protocol/value.js';
import { valueToJson } from '../protocol/value-json.js';
import { Archive } from '../storage/index.js';
import { buildServer } from '../server/app.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { api, type TestServer } from './helpers/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects */
declare const document: any;
declare const window: any;

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;

/** Each payload, if it ever runs, sets window.__pwned. */
const PAYLOADS = [
  '<img src=x onerror="window.__pwned=1">',
  '"><img src=x onerror=window.__pwned=2>',
  "'><svg onload=window.__pwned=3>",
  '</script><script>window.__pwned=4</script>',
  '<iframe srcdoc="<script>parent.__pwned=5</script>"></iframe>',
  '<a href="javascript:window.__pwned=6">x</a>',
  '<style>*{background:url(javascript:window.__pwned=7)}</style>',
  '" style="background:red" onmouseover="window.__pwned=8',
  '&lt;img src=x onerror=window.__pwned=9&gt;',
];
const PATHS = PAYLOADS.map((p) => `/evil/${p}`);
const VALUES: Array<[string, Value]> = [
  ['/v/str', PAYLOADS.join(' ')],
  ['/v/obj', { '<img src=x onerror=window.__pwned=10>': '</script><script>window.__pwned=11</script>' }],
  ['/v/nz', -0],
  ['/v/nan', NaN],
  ['/v/inf', -Infinity],
  ['/v/sub', 5e-324],
  ['/v/big', 2n ** 53n + 1n],
  ['/v/bytes', new Uint8Array([0, 255, 60, 62])],
  ['/v/rtl', '\u202Eevil\u202C'],
];

let browser: TestBrowser;
let server: TestServer;
let dir: string;

beforeAll(async () => {
  browser = await launchBrowser();
  dir = await mkdtemp(join(tmpdir(), 'tapedeck-web-hostile-'));
  const archive = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024 });
  const batches: Batch[] = [0, 1, 2].map((i) => ({ ts: T0 + i * S, updates: [...PATHS.map((p) => [p, `${p} ${i}`] as [string, Value]), ...VALUES] }));
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

/** Opens the page with a CSP-violation listener installed before any of its scripts runs. */
async function open(query: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(() => {
    (window as any).__csp = [];
    document.addEventListener('securitypolicyviolation', (e: any) => (window as any).__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`${server.url}/${query}`);
  await page.waitForFunction(() => window.tapedeck?.model.controls !== null && document.getElementById('pos-time')?.dataset.us !== '');
  return { page, errors };
}

async function noInjection(page: Page): Promise<void> {
  // Hover and click over everything an attribute-breaking payload could have hooked.
  await page.evaluate(() => {
    for (const el of document.querySelectorAll('#tree *, #values *, #bm-list *, #tl-bookmarks *')) {
      for (const type of ['mouseover', 'mouseenter', 'focus']) el.dispatchEvent(new Event(type, { bubbles: true }));
    }
  });
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(await page.evaluate(() => document.querySelectorAll('img, iframe, svg[onload], script:not([src]), style:not([data-uplot])').length)).toBe(0);
}

describe('web player against hostile recorded data', () => {
  it('shows hostile path names and string values as text, never as markup', async () => {
    const all = [...PATHS, ...VALUES.map(([p]) => p)];
    const { page, errors } = await open(`?pos=end&state=pause&select=${all.map(encodeURIComponent).join(',')}`);
    await page.waitForFunction((n) => document.querySelectorAll('#values tbody tr').length === n, all.length);
    // Every path is its own row, its name the text of its header cell, its value the codec's.
    const rows: Array<[string, string, string]> = await page.evaluate(() => [...document.querySelectorAll('#values tbody tr')].map((tr: any) => [tr.dataset.path, tr.querySelector('th').textContent, tr.querySelector('td.v').dataset.json]));
    expect(rows.map((r) => r[0]).sort()).toEqual([...all].sort());
    for (const [path, th, json] of rows) {
      expect(th).toBe(path);
      const want = PATHS.includes(path) ? `${path} 2` : VALUES.find(([p]) => p === path)![1];
      expect(json, path).toBe(JSON.stringify(valueToJson(want)));
    }
    const cell = (p: string): Promise<string | null> => page.locator(`#values tr[data-path="${p.replace(/["\\]/g, '\\$&')}"] td.v`).textContent();
    expect(await cell('/v/nz')).toBe('-0');
    expect(await cell('/v/nan')).toBe('NaN');
    expect(await cell('/v/inf')).toBe('-Infinity');
    expect(await cell('/v/sub')).toBe('5e-324');
    expect(await cell('/v/big')).toBe('9007199254740993');
    expect(await cell('/v/bytes')).toBe('<4 bytes>');
    // A bidi override would draw the value backwards ('live'): it is shown as its escape, in the value's JSON text (audit11).
    expect(await cell('/v/rtl')).toBe('"\\u202eevil\\u202c"');
    // The tree shows the hostile names as leaves.
    await page.fill('#glob', '/evil/**');
    await expect.poll(() => page.locator('#tree input[data-path]').count()).toBe(PATHS.length);
    expect((await page.locator('#tree input[data-path]').evaluateAll((els: any[]) => els.map((e) => e.dataset.path))).sort()).toEqual([...PATHS].sort());
    await noInjection(page);
    expect(await page.evaluate(() => window.__csp)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows hostile bookmark notes as text and never links a bookmark URL outside the page', async () => {
    for (const [i, p] of PAYLOADS.entries()) {
      const url = i % 2 === 0 ? `javascript:window.__pwned=${20 + i}` : `pos=${T0}&x="><img src=x onerror=window.__pwned=${40 + i}>`;
      const res = await api(server.url, 'POST', '/api/v1/bookmarks', { ts: T0 + S, note: p, url });
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    }
    const { page, errors } = await open('?pos=end&state=pause');
    await expect.poll(() => page.locator('#bm-list li').count()).toBe(PAYLOADS.length);
    const notes: string[] = await page.locator('#bm-list .bm-note').allTextContents();
    expect([...notes].sort()).toEqual([...PAYLOADS].sort());
    for (const href of await page.locator('#bm-list a.bm-link').evaluateAll((els: any[]) => els.map((a) => a.href))) {
      const u = new URL(href);
      expect(u.origin).toBe(server.url);
      expect(u.pathname).toBe('/');
    }
    await noInjection(page);
    expect(await page.evaluate(() => window.__csp)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('runs no injected script even where markup got into the page (its Content-Security-Policy)', async () => {
    const { page, errors } = await open('?pos=end&state=pause');
    await page.evaluate(() => {
      const box = document.createElement('div');
      box.innerHTML = '<img src="data:," onerror="window.__pwned=90"><a id="js" href="javascript:window.__pwned=91">x</a>';
      document.body.append(box);
    });
    await page.click('#js');
    await expect.poll(() => page.evaluate(() => window.__csp.length)).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(await page.evaluate(() => window.__csp.every((v: string) => v.startsWith('script-src')))).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
