/**
 * The web player's history requests against hostile path names, in a real browser over a
 * real server: a recorded name may hold what a glob reserves (`?[]{}`), `*` and `**`, more
 * segments (2 000) or bytes than a glob may have, and a selection of many long names makes a
 * long URL. The charts' loadHistory (clients/web/history.js, as the page loads it) must bring
 * each path's own history back, exactly, whatever the other paths asked with it are called.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Value } from '../protocol/value.js';
import { valueToJson } from '../protocol/value-json.js';
import { compileSpec } from '../protocol/glob.js';
import { buildWebProtocol } from '../scripts/build-web.mjs';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { startServer, type TestServer } from './helpers/server.js';

await buildWebProtocol();
const { pathGlob, historyQueries, HISTORY_QUERY_CHARS_MAX } = await import('../clients/web/history.js');

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;
const N = 5;
const HOSTILE = [
  '/h/what?',
  '/h/[x]',
  '/h/{a,b}',
  '/h/a**b',
  '/h/**',
  '/h/*',
  '/h/sp ace/%2F/é/\u{1F600}',
  '/deep' + '/d'.repeat(2000),
  '/long/' + 'x'.repeat(4000),
  '/wide/' + '\u4e2d'.repeat(1300),
  ...Array.from({ length: 12 }, (_, i) => `/many/${i}/` + '\u00e9'.repeat(900)),
];
const PLAIN = ['/h/plain', '/h/what', '/h/x'];
const ALL = [...HOSTILE, ...PLAIN];
/** Path k's value in batch i: numbers, a string and an odd value. */
const valueOf = (k: number, i: number): Value => (k % 3 === 0 ? `${k}:${i}` : k % 3 === 1 ? k * 1000 + i : i === 2 ? -0 : i + 0.5);

let browser: TestBrowser;
let server: TestServer;

beforeAll(async () => {
  browser = await launchBrowser();
  server = await startServer(Array.from({ length: N }, (_, i) => ({ ts: T0 + i * S, updates: ALL.map((p, k) => [p, valueOf(k, i)] as [string, Value]) })));
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
});

describe('web player history with hostile path names', () => {
  it('asks for each path with a glob the server takes that selects it', () => {
    for (const p of ALL) expect(compileSpec([pathGlob(p)])(p), p.slice(0, 80)).toBe(true);
    const qs: string[] = historyQueries(ALL, 0, T0);
    for (const q of qs) expect(q.length).toBeLessThanOrEqual(HISTORY_QUERY_CHARS_MAX);
    expect(qs.length).toBeGreaterThan(1);
  });

  it('brings back every path\'s own history, exactly, in one call for all of them', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/health`); // an origin to load the module from, not the player
    const cases: string[][] = [ALL, ...HOSTILE.map((p) => [p, '/h/plain'])];
    for (const paths of cases) {
      // As a string: the test's transform would rewrite a dynamic import() in a function.
      const got: Record<string, { tsUs: number[]; wire: unknown[] }> | null = await page.evaluate(`(async () => {
        const { loadHistory } = await import('/history.js');
        const m = await loadHistory(location.origin, ${JSON.stringify(paths)}, 0, ${T0 + N * S});
        return m === null ? null : Object.fromEntries(m);
      })()`);
      expect(got, paths[0]!.slice(0, 80)).not.toBeNull();
      expect(Object.keys(got!).sort()).toEqual([...paths].sort());
      for (const p of paths) {
        const k = ALL.indexOf(p);
        expect(got![p]!.tsUs, p.slice(0, 80)).toEqual(Array.from({ length: N }, (_, i) => T0 + i * S));
        expect(got![p]!.wire, p.slice(0, 80)).toEqual(Array.from({ length: N }, (_, i) => valueToJson(valueOf(k, i))));
      }
    }
    await page.close();
  });

  it('says the server\'s code when the history route refuses, rather than nothing', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/health`);
    const got: string = await page.evaluate(`(async () => {
      const { loadHistory } = await import('/history.js');
      try {
        const m = await loadHistory(location.origin, ['/h/plain'], 0, ${2 ** 60});
        return 'answered ' + (m === null ? 'null' : 'values');
      } catch (err) {
        return err.code + ' | ' + err.message;
      }
    })()`);
    expect(got).toMatch(/^(TPD_[A-Z_]+) \| \1: ./);
    await page.close();
  });
});
