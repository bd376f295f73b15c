/**
 * The web player's older `select=` parameter (docs/web-player.md, "Shareable moments"): a
 * path holding a comma is selected as itself. Alone, `select` is the comma list older links
 * wrote, cut only at a comma before a `/` (every path starts with one); repeated, each is one
 * path as it is, like `path=` and the REST API's repeated `glob=`. In Node
 * (clients/web/url-state.js) and in Chromium over a real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacySelection, readUrlState } from '../clients/web/url-state.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { startServer, type TestServer } from './helpers/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects */
declare const document: any;
declare const window: any;

const selected = (query: string): string[] | null => readUrlState(new URLSearchParams(query)).selection;

describe('select= in the URL', () => {
  it('keeps a comma inside a path, and still reads the comma lists older links wrote', () => {
    expect(selected('select=/if/eth0,1')).toEqual(['/if/eth0,1']);
    expect(selected(`select=${encodeURIComponent('/m,n')}`)).toEqual(['/m,n']);
    expect(selected('select=/a/b,/c')).toEqual(['/a/b', '/c']);
    expect(selected('select=/a,b,/c,d,e')).toEqual(['/a,b', '/c,d,e']);
    expect(selected('select=,/a,,/b')).toEqual(['/a,', '/b']);
    // Repeated: each one path as it is, commas and `,/` included.
    expect(selected('select=/a,b&select=/c')).toEqual(['/a,b', '/c']);
    expect(selected(`select=${encodeURIComponent('/x,/y')}&select=/z`)).toEqual(['/x,/y', '/z']);
    // path= wins; neither: null (the tab's last selection).
    expect(selected('path=/p,q&select=/a,/b')).toEqual(['/p,q']);
    expect(selected('pos=1')).toBeNull();
    expect(legacySelection([''])).toEqual([]);
  });
});

describe('select= in the web player', () => {
  let browser: TestBrowser;
  let server: TestServer;
  beforeAll(async () => {
    browser = await launchBrowser();
    server = await startServer([{ ts: 1_763_000_000_000_000, updates: [['/if/eth0,1', 1], ['/if/eth0', 2], ['/m,n', 3], ['/z', 4], ['/1', 5]] }]);
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });

  async function rowsOf(query: string): Promise<Array<[string, string]>> {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${server.url}/?pos=end&state=pause&${query}`);
      await page.waitForFunction(() => window.tapedeck?.model.controls !== null && document.getElementById('pos-time')?.dataset.us !== '');
      // Every row's value is in (the rows come at once, the values with the state frame).
      await page.waitForFunction(() => [...document.querySelectorAll('#values tbody tr')].every((tr: any) => tr.querySelector('td.v')?.dataset.json));
      expect(errors).toEqual([]);
      return await page.evaluate(() => [...document.querySelectorAll('#values tbody tr')].map((tr: any) => [tr.dataset.path, tr.querySelector('td.v').dataset.json]));
    } finally {
      await page.close();
    }
  }

  it('shows a path holding a comma, alone or among repeated select= parameters', async () => {
    expect(await rowsOf('select=/if/eth0,1')).toEqual([['/if/eth0,1', '1']]);
    expect((await rowsOf('select=/m,n&select=/z')).sort()).toEqual([['/m,n', '3'], ['/z', '4']]);
    expect((await rowsOf('select=/if/eth0,/1')).sort()).toEqual([['/1', '5'], ['/if/eth0', '2']]);
  }, 60_000);
});
