/**
 * No PromQL query text can hold the event loop: the upstream grammar's error recovery costs
 * ~16 µs a character of garbage, so a query of promqlQueryCharsMax took a second or two in
 * one piece and a few at once held the server; it is parsed in slices now, in queries and
 * in match[] alike, so /health answers while garbage is refused with bad_data.
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
const SERIES = 10;
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

describe('query text', () => {
  const garbage = ['"', '{', '1s'].map((unit) => unit.repeat(Math.floor(SERVER_LIMITS.promqlQueryCharsMax / unit.length) - 1));
  it('parses garbage of promqlQueryCharsMax in slices: 6 at once, as a query and as match[], are refused with bad_data, and /health answers meanwhile', async () => {
    const answers = garbage.flatMap((text) => [post('/api/v1/query', { query: text }), post('/api/v1/series', { 'match[]': text })]);
    await new Promise((r) => setTimeout(r, 100));
    expect(await healthAnswers()).toBe(true);
    for (const res of await Promise.all(answers)) {
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errorType: string }).errorType).toBe('bad_data');
    }
  }, 60_000);
});
