/**
 * The web player's Export control in a real browser (Debian's Chromium via playwright-core):
 * it downloads GET /api/v1/history for the filter box and the start/end markers, in the
 * chosen format, and the file holds exactly those updates (Parquet read back by DuckDB).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Batch } from '../protocol/value.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';

const run = promisify(execFile);

declare const document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null };
declare const window: { tapedeck: { exportUrl(): string; model: { controls: { start: unknown; end: unknown } | null } } };

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;
const batches: Batch[] = Array.from({ length: 20 }, (_, i) => ({
  ts: T0 + i * S,
  updates: [['/dev/a', i], ['/dev/b', `b${i}`], ['/other/x', -i]],
}));

let browser: TestBrowser;
let server: TestServer;

beforeAll(async () => {
  browser = await launchBrowser();
  server = await startServer(batches);
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
});

/** Clicks Export and saves the download; returns its path and suggested name. */
async function clickExport(page: Page, dir: string): Promise<{ file: string; name: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /^Export/ }).click()]);
  const file = join(dir, download.suggestedFilename());
  await download.saveAs(file);
  return { file, name: download.suggestedFilename() };
}

describe('web player export', () => {
  it('downloads the filtered paths between the markers as Parquet and CSV', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const from = T0 + 5 * S;
    const to = T0 + 9 * S;
    await page.goto(`${server.url}/?pos=${from}&state=pause&start=${from}&end=${to}`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    await page.waitForFunction(() => window.tapedeck.model.controls?.end !== 'unbounded' && window.tapedeck.model.controls?.start !== 'unbounded');
    await page.locator('#glob').fill('/dev/*');

    const url = new URL(await page.evaluate(() => window.tapedeck.exportUrl()), server.url);
    expect(url.pathname).toBe('/api/v1/history');
    expect(url.searchParams.get('format')).toBe('parquet');
    expect(url.searchParams.getAll('glob')).toEqual(['/dev/*']);

    const dir = await tmpDir();
    const parquet = await clickExport(page, dir);
    expect(parquet.name).toBe('tapedeck.parquet');
    const py = `import duckdb, json, sys
rows = duckdb.connect().execute("SELECT epoch_us(ts), path, kind, num, str FROM read_parquet(?) ORDER BY 1, 2", [sys.argv[1]]).fetchall()
print(json.dumps(rows))`;
    const rows = JSON.parse((await run('python3', ['-c', py, parquet.file])).stdout) as unknown[];
    const want = batches
      .filter((b) => b.ts >= from && b.ts <= to)
      .flatMap((b) => [[b.ts, '/dev/a', 'number', b.updates[0]![1], null], [b.ts, '/dev/b', 'string', null, b.updates[1]![1]]]);
    expect(rows).toEqual(want);

    await page.selectOption('#export-format', 'csv');
    const csv = await clickExport(page, dir);
    expect(csv.name).toBe('tapedeck.csv');
    const lines = (await readFile(csv.file, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe('ts,time,path,value');
    expect(lines).toHaveLength(1 + want.length);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('refuses a malformed filter in a banner instead of downloading an error', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/?pos=beginning&state=pause`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    await page.locator('#glob').fill('/dev/[');
    let downloads = 0;
    page.on('download', () => downloads++);
    await page.getByRole('button', { name: /^Export/ }).click();
    await expect.poll(() => page.locator('#banner').textContent()).toMatch(/^export: /);
    expect(await page.locator('#banner').isVisible()).toBe(true);
    expect(downloads).toBe(0);
    await page.close();
  });
});
