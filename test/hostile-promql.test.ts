/**
 * No PromQL label regex can hold the event loop: one whose repetitions would cost thousands
 * of steps per character is refused at once with bad_data (promqlRegexRepeatsMax), and one
 * within the bound over a catalog of long label values is matched in slices, so /health
 * answers while it runs, for queries and the metadata endpoints alike.
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LONG_LABEL_IMPORTS, longLabelFill, startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { SERVER_LIMITS } from '../server/limits.js';

/** /health must answer at all within this while a query runs (not a timing target). */
const HEALTH_ANSWER_MS = 5_000;
/** Series of the archive, each with an `instance` of VALUE_CHARS characters. */
const SERIES = 1500;
const VALUE_CHARS = 400;

let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startArchiveServer(longLabelFill(SERIES, VALUE_CHARS), { imports: LONG_LABEL_IMPORTS });
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

function healthAnswers(): Promise<boolean> {
  return server.healthAnswers(HEALTH_ANSWER_MS);
}

function post(route: string, form: Record<string, string>): Promise<Response> {
  return fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
}

/** `n` repetitions that never match a value of a's (it has no x). */
const wide = (n: number): string => `${'.*'.repeat(n)}x`;

describe('label regexes', () => {
  it('refuses a regex past promqlRegexRepeatsMax at once, in a query and in match[]', async () => {
    const re = wide(2000);
    expect(re.length).toBeLessThanOrEqual(SERVER_LIMITS.promqlRegexCharsMax);
    for (const [route, form] of [
      ['/api/v1/query', { query: `ifInOctets{instance=~"${re}"}` }],
      ['/api/v1/series', { 'match[]': `ifInOctets{instance=~"${re}"}` }],
    ] as const) {
      const answer = post(route, form);
      expect(await healthAnswers()).toBe(true);
      const res = await answer;
      expect(res.status).toBe(400);
      const body = (await res.json()) as { errorType: string; error: string };
      expect(body.errorType).toBe('bad_data');
      expect(body.error).toContain('promqlRegexRepeatsMax');
    }
  }, 60_000);

  const within = wide(SERVER_LIMITS.promqlRegexRepeatsMax - 1);
  const nowS = Math.floor(Date.now() / 1000);
  // Matching all of them takes seconds: the queries give up at their timeout, between two slices.
  for (const [route, form] of [
    ['/api/v1/query', { query: `count(ifInOctets{instance=~"${within}"})`, timeout: '1s' }],
    ['/api/v1/query_range', { query: `ifInOctets{instance!~"${within}"}`, start: String(nowS - 120), end: String(nowS), step: '60', timeout: '1s' }],
  ] as const) {
    it(`matches a regex within the bound over ${SERIES} long values in slices: ${route} times out, and /health answers meanwhile`, async () => {
      const answer = post(route, form);
      await new Promise((r) => setTimeout(r, 100));
      expect(await healthAnswers()).toBe(true);
      const res = await answer;
      expect(((await res.json()) as { errorType: string }).errorType).toBe('timeout');
    }, 60_000);
  }

  it(`matches a regex over ${SERIES} long values in slices: /api/v1/label/instance/values answers, and /health meanwhile`, async () => {
    // Seconds of matching in all (metadata requests have no timeout to shorten it).
    const some = wide(40);
    const answer = post('/api/v1/label/instance/values', { 'match[]': `{__name__=~"${some}|ifIn.*", instance=~"${some}|a.*"}` });
    await new Promise((r) => setTimeout(r, 100));
    expect(await healthAnswers()).toBe(true);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: string[] }).data).toHaveLength(SERIES);
  }, 60_000);
});
