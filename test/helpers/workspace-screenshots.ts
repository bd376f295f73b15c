/**
 * The screenshots of docs/web-player.md's workspace sections (bookmarks, what changed, the
 * keyboard help), taken in Debian's Chromium over a small made-up fabric archive. Run by
 * hand: node --import tsx test/helpers/workspace-screenshots.ts  (writes docs/img/*.png).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import type { Update } from '../../protocol/value.js';
import { launchBrowser } from './browser.js';
import { rng } from './workload.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the page's own objects */
declare const window: any;
declare const document: any;
/* eslint-enable @typescript-eslint/no-explicit-any */

const OUT = join(import.meta.dirname, '..', '..', 'docs', 'img');
const T0 = Date.UTC(2026, 10, 23, 14, 0, 0) * 1000;
const S = 1_000_000;
const r = rng(3);
const dir = await mkdtemp(join(tmpdir(), 'tapedeck-shots-'));
const archive = await Archive.open(dir, { flushIntervalMs: 0 });
const cpu = [31, 44, 27, 58];
for (let i = 0; i < 240; i++) {
  const ups: Update[] = [];
  for (let sw = 0; sw < 4; sw++) {
    cpu[sw] = Math.max(1, Math.min(99, (cpu[sw] as number) + Math.round((r() - 0.5) * 6) + (sw === 2 && i > 120 && i < 150 ? 4 : 0)));
    ups.push([`/fabric/sw-00${sw + 1}/cpu_util_pct`, cpu[sw] as number]);
    ups.push([`/fabric/sw-00${sw + 1}/oper_status`, sw === 2 && i >= 130 && i < 160 ? 'down' : 'up']);
  }
  if (i >= 100) ups.push(['/fabric/sw-005/cpu_util_pct', 12 + (i % 7)]);
  if (i < 180) ups.push(['/twin/flows/f-17/rate_bps', 1_000_000 + i * 1000]);
  else if (i === 180) ups.push(['/twin/flows/f-17/rate_bps', null]);
  archive.writer!.append(ups, T0 + i * 5 * S);
}
await archive.writer!.flush();
const app = await buildServer({ archive });
await app.listen({ port: 0, host: '127.0.0.1' });
const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const post = (body: unknown): Promise<Response> => fetch(`${url}/api/v1/bookmarks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
await post({ ts: T0 + 130 * 5 * S, note: 'sw-003 down: link flap on port 7' });
await post({ ts: T0 + 160 * 5 * S, note: 'sw-003 back after the reboot' });
await post({ ts: T0 + 60 * 5 * S, note: 'baseline before the change window' });

const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 820 });
  const start = T0 + 100 * 5 * S;
  const end = T0 + 200 * 5 * S;
  await page.goto(`${url}/?pos=${T0 + 140 * 5 * S}&state=pause&start=${start}&end=${end}&path=/fabric/sw-003/cpu_util_pct&path=/fabric/sw-003/oper_status`);
  await page.waitForFunction(() => window.tapedeck?.model.controls !== null && document.querySelectorAll('.tl-bookmark').length === 3);
  await page.locator('.tl-bookmark').first().hover();
  await page.screenshot({ path: join(OUT, 'workspace-bookmarks.png'), clip: { x: 0, y: 0, width: 1280, height: 470 } });
  await page.locator('body').press('d');
  await page.locator('#diff-table tbody tr').first().waitFor();
  await page.locator('#diff-table thead button[data-key="changes"]').click();
  await page.locator('#diff-table thead button[data-key="changes"]').click();
  await page.locator('#diff-panel').screenshot({ path: join(OUT, 'what-changed.png') });
  await page.locator('body').press('?');
  await page.locator('#help').waitFor({ state: 'visible' });
  await page.locator('#help').screenshot({ path: join(OUT, 'help-keys.png') });
} finally {
  await browser.close();
  await app.close();
  await archive.close();
  await rm(dir, { recursive: true, force: true });
}
