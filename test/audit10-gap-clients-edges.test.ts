/**
 * The clients' side of the `gap` frame (protocol/frames.ts GapFrame, docs/playback.md "Gone
 * files"): when playback crosses archive files that are gone, the server sends the gap, the
 * state after it and plays on. The web player (Debian's Chromium via playwright-core) showed
 * nothing of it and the terminal player printed nothing: the hole looked like quiet data.
 * Now the page shows a notice with the times and the number of files, until dismissed, and
 * hatches the hole on the timeline; `tapedeck play` prints one `!! gap:` line and plays on.
 *
 * The archive: six files (five rotated, then `current`) of four batches a minute apart; the
 * third file is deleted while the server runs, before the session reaches it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { Archive } from '../storage/archive.js';
import { buildServer } from '../server/app.js';
import { formatTs } from '../protocol/time.js';
import { artifactPath, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { tapedeck } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

// Globals of the page, for the functions Playwright runs there (tests compile without the DOM lib).
declare const document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null };
declare const window: {
  gapsSeen: number;
  tapedeck: { session: { addEventListener(type: 'frame', fn: (ev: { detail: { type: string } }) => void): void } };
};

const T0 = 1_700_000_000_000_000; // 2023-11-14 22:13:20 UTC: in the past, so a bounded end ends the session
const STEP_US = 60_000_000;
const FILES = 6;
const PER_FILE = 4;
const GONE = 2;
const ts = (i: number): number => T0 + i * STEP_US;
const LAST = ts(FILES * PER_FILE - 1);
/** The gap the server reports: after the last batch of the file before the gone one, up to the gone file's last batch (the next file's opening image). */
const FROM_US = ts(GONE * PER_FILE - 1);
const TO_US = ts((GONE + 1) * PER_FILE - 1);

interface Rig { url: string; gone: string }

const open: Array<{ app: FastifyInstance; a: Archive }> = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.app.close();
    await r.a.close();
  }
});

/** Serves the archive and deletes file GONE (never opened: the warm-up opens only the newest rotated file and `current`). */
async function serveWithGoneFile(): Promise<Rig> {
  const dir = await tmpDir('tapedeck-gap-clients-');
  const w = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
  for (let f = 0; f < FILES; f++) {
    for (let i = 0; i < PER_FILE; i++) w.writer!.append([['/k/v', f * PER_FILE + i]], ts(f * PER_FILE + i));
    if (f < FILES - 1) await w.writer!.rotate();
  }
  await w.writer!.flush();
  await w.close();
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const app = await buildServer({ archive: a });
  await app.listen({ port: 0, host: '127.0.0.1' });
  open.push({ app, a });
  const gone = a.files.filter((f) => f.sealed)[GONE]!.name;
  await unlink(join(dir, gone));
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, gone };
}

/** Ended, and the position shown (drawn on the next animation frame) at the last batch. */
async function playedToTheEnd(page: Page): Promise<void> {
  await page.waitForFunction((last) => document.getElementById('conn')?.dataset.state === 'ended' && document.getElementById('pos-time')?.dataset.us === last, String(LAST));
}

describe('the web player meeting a gap frame', () => {
  let browser: TestBrowser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a dismissable notice with the times and the file count, hatches the hole on the timeline, and plays on', async () => {
    const r = await serveWithGoneFile();
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Playing at 1x: the second batch is a minute away, far from the gone file.
    await page.goto(`${r.url}/?pos=beginning&state=play&speed=1&end=${LAST}`);
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'playing');
    const notice = page.locator('#gap-notice');
    expect(await notice.isHidden()).toBe(true);
    // Unlimited: the session reads on into the gone file.
    await page.selectOption('#speed', 'unlimited');

    await notice.waitFor({ state: 'visible' });
    expect(await notice.locator('.gap-notice-text').textContent())
      .toBe('Data from 2023-11-14 22:20:20.000 UTC to 2023-11-14 22:24:20.000 UTC is unavailable (1 file)');
    expect(await notice.evaluate((e) => ({ ...e.dataset }))).toEqual({ fromUs: String(FROM_US), toUs: String(TO_US), files: '1' });
    expect(await notice.getAttribute('title')).toContain(r.gone);

    // The hole on the timeline: placed on the archive's range (first batch to last).
    const lost = page.locator('#tl-lost .tl-lost-range');
    expect(await lost.count()).toBe(1);
    expect(await lost.evaluate((e) => [e.dataset.startUs, e.dataset.endUs, e.style.left, e.style.width]))
      .toEqual([String(FROM_US), String(TO_US), expect.any(String), expect.any(String)]);
    const place = await lost.evaluate((e) => [e.style.left, e.style.width].map((p) => Number.parseFloat(p)));
    const span = LAST - T0;
    expect(place).toEqual([expect.closeTo(((FROM_US - T0) / span) * 100, 3), expect.closeTo(((TO_US - FROM_US) / span) * 100, 3)]);
    expect(await lost.getAttribute('title')).toBe(await notice.locator('.gap-notice-text').textContent());

    // Played on past the hole to the end.
    await playedToTheEnd(page);
    await page.screenshot({ path: await artifactPath('web-player-gap-notice.png'), fullPage: true });

    await notice.locator('.gap-notice-close').click();
    expect(await notice.isHidden()).toBe(true);
    // Played again over the same hole: still one mark, and the dismissed notice stays away.
    await page.evaluate(() => {
      window.gapsSeen = 0;
      window.tapedeck.session.addEventListener('frame', (ev) => { if (ev.detail.type === 'gap') window.gapsSeen++; });
    });
    await page.click('#btn-beginning');
    await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'paused');
    await page.click('#btn-play');
    await playedToTheEnd(page);
    expect(await page.evaluate(() => window.gapsSeen)).toBe(1);
    expect(await notice.isHidden()).toBe(true);
    expect(await lost.count()).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('tapedeck play meeting a gap frame', () => {
  it.each(['json', 'msgpack'] as const)('prints one gap line with the times and the file, then the state after it and every batch after it (%s)', async (format) => {
    const r = await serveWithGoneFile();
    const out = await tapedeck('play', r.url, '--pos', 'beginning', '--end', String(LAST), '--speed', 'unlimited', '--format', format);
    expect([out.code, out.stderr]).toEqual([0, '']);
    const lines = out.stdout.split('\n');
    const gapLines = lines.filter((l) => l.startsWith('!! gap:'));
    expect(gapLines).toEqual([`!! gap: data from ${formatTs(FROM_US)} to ${formatTs(TO_US)} is unavailable (1 file: ${r.gone}); playing on`]);
    // After it: the state at its end, then every batch after it, to the end.
    const after = lines.slice(lines.indexOf(gapLines[0]!) + 1).filter((l) => !l.startsWith('--'));
    expect(after[0]).toMatch(new RegExp(`^== state at ${formatTs(TO_US).replace(/\./g, '\\.')}: 1 paths`));
    const batchTimes = after.filter((l) => /^\d{4}-/.test(l)).map((l) => l.split(' ')[0]);
    const expected = [];
    for (let i = (GONE + 1) * PER_FILE; i < FILES * PER_FILE; i++) expected.push(formatTs(ts(i)));
    expect(batchTimes).toEqual(expected);
    expect(after.at(-2)).toBe('== end (end)');
  });
});
