/**
 * Values at the limits through the web player (docs/web-player.md, "Values"): values of
 * exactly valueDepthMax levels and the largest string and bytes one NDJSON line takes,
 * recorded through ingest, reach the page's value table as their exact JSON form (data-json)
 * and are revived by the page's own codec (the bundle of protocol/), not shown as raw tags.
 * Chromium over a real recording server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { valueToJson } from '../protocol/value-json.js';
import type { Update } from '../protocol/value.js';
import { buildWebProtocol } from '../scripts/build-web.mjs';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { deepUpdates, largestValues, ndjsonLine } from './helpers/limit-values.js';
import { recordingServer } from './helpers/recording-server.js';
import { postNdjson } from './helpers/value-outputs.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side objects */
declare const document: any;

// values.js imports the bundle of protocol/ (as test/web-values.test.ts does).
await buildWebProtocol();
const { formatValue } = await import('../clients/web/values.js');

const T0_US = 1_763_000_000_000_000;
const BIG = largestValues(T0_US + 1, '/big/str', '/big/bytes');
const BATCHES: Update[][] = [deepUpdates('/deep'), [BIG.str], [BIG.bytes]];
const ALL = BATCHES.flat();

describe('values at the limits in the web player', () => {
  let browser: TestBrowser;
  let srv: Awaited<ReturnType<typeof recordingServer>>;
  beforeAll(async () => {
    browser = await launchBrowser();
    srv = await recordingServer();
    for (let i = 0; i < BATCHES.length; i++) {
      const r = await postNdjson(srv.url, ndjsonLine(T0_US + i, BATCHES[i] as Update[]));
      expect(r.json).toMatchObject({ accepted_lines: 1, rejected_lines: 0 });
    }
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    await browser?.close();
  });

  it('shows each exactly as sent, revived by the page', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      const query = ALL.map(([p]) => `path=${encodeURIComponent(p)}`).join('&');
      await page.goto(`${srv.url}/?pos=end&state=pause&${query}`);
      await page.waitForFunction((n) => [...document.querySelectorAll('#values tbody tr')].filter((tr: any) => (tr.querySelector('td.v')?.dataset.json ?? 'null') !== 'null').length === n, ALL.length, { timeout: 60_000 });
      const rows = new Map<string, [string, string]>(await page.evaluate(() => [...document.querySelectorAll('#values tbody tr')].map((tr: any) => [tr.dataset.path, [tr.querySelector('td.v').dataset.json, tr.querySelector('td.v').textContent]])));
      for (const [p, v] of ALL) {
        const [json, text] = rows.get(p) ?? ['', ''];
        const wire = valueToJson(v);
        expect(json === JSON.stringify(wire), `${p}: data-json`).toBe(true);
        expect(text, p).toBe(formatValue(wire));
      }
      expect(rows.get('/big/bytes')?.[1]).toBe(`<${(BIG.bytes[1] as Uint8Array).length} bytes>`);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);
});
