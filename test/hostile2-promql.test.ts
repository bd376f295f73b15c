/**
 * The Prometheus metadata endpoints (/api/v1/series, /labels, /label/<name>/values) parse
 * and match each of their match[] selectors as a query does: they count against
 * promqlConcurrentQueriesMax with the queries (past it, 503 unavailable), and a request takes
 * at most promqlMatchersMax match[] (past it, 400 bad_data, in Prometheus' error shape).
 *
 * The server runs in a child process (the sources through tsx), so its requests run
 * concurrently with this test's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { request } from 'node:http';
import { SERVER_LIMITS } from '../server/limits.js';

const METADATA = ['/api/v1/series', '/api/v1/labels', '/api/v1/label/instance/values'];


let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startArchiveServer(`const updates = [];
for (let i = 0; i < 10; i++) updates.push([seriesToPath({ name: 'ifInOctets', labels: { instance: 'i' + i } }), i]);
archive.writer.append(updates, Date.now() * 1000 - 60_000_000);`, { imports: { seriesToPath: 'protocol/prom-path.ts' } });
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

function post(route: string, matches: string[]): Promise<Response> {
  const form = new URLSearchParams();
  for (const m of matches) form.append('match[]', m);
  return fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
}

/** A POST of one match[] on a connection of its own, sent at once. */
function postOwnSocket(route: string, match: string): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams({ 'match[]': match }).toString();
  return new Promise((resolve, reject) => {
    const req = request(url + route, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('metadata requests', () => {
  it('take at most promqlMatchersMax match[]: one more is 400 bad_data in Prometheus shape, as many answer', async () => {
    const max = SERVER_LIMITS.promqlMatchersMax;
    const selectors = Array.from({ length: max + 1 }, (_, i) => `ifInOctets{instance="i${i % 10}"}`);
    for (const route of METADATA) {
      const refused = await post(route, selectors);
      expect(refused.status).toBe(400);
      expect(refused.headers.get('tapedeck-error-code')).toBe('TPD_BAD_ARGUMENT');
      const body = (await refused.json()) as { status: string; errorType: string; error: string };
      expect(body.status).toBe('error');
      expect(body.errorType).toBe('bad_data');
      expect(body.error).toContain('promqlMatchersMax');
      // In the URL too (a GET), and counted over form and URL together.
      const query = selectors.map((s) => `match[]=${encodeURIComponent(s)}`);
      expect((await fetch(`${url}${route}?${query.join('&')}`)).status).toBe(400);
      const split = await fetch(`${url}${route}?${query.slice(0, 1).join('&')}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: selectors.slice(1).map((s) => `match[]=${encodeURIComponent(s)}`).join('&'),
      });
      expect(split.status).toBe(400);
      const taken = await post(route, selectors.slice(0, max));
      expect(taken.status).toBe(200);
    }
    const listed = (await (await post('/api/v1/label/instance/values', selectors.slice(0, max))).json()) as { data: string[] };
    expect(listed.data).toEqual(Array.from({ length: 10 }, (_, i) => `i${i}`));
  }, 30_000);

  it('count against promqlConcurrentQueriesMax: past it, more at once are told 503 unavailable to retry', async () => {
    // Text the grammar reads for a while, in slices: each request holds the gate until it is refused.
    const garbage = '('.repeat(32 * 1024); // each parse holds the gate over many slices, so the requests overlap
    const n = SERVER_LIMITS.promqlConcurrentQueriesMax * 3;
    // Once alone first: the child's first parses of it run before V8 optimises the parser.
    for (let i = 0; i < 3; i++) expect((await post('/api/v1/series', [garbage])).status).toBe(400);
    // The first promqlConcurrentQueriesMax hold the gate until their parse fails; every
    // answer is one of the two. A burst whose requests happen not to overlap (a loaded
    // machine delivers them apart) refuses none: up to 5 bursts, and one must have refused.
    let busy = 0;
    for (let burst = 0; burst < 5 && busy === 0; burst++) {
      const answers = await Promise.all(Array.from({ length: n }, (_, i) => postOwnSocket(METADATA[i % METADATA.length] as string, garbage)));
      const kinds = answers.map((a) => `${a.status} ${(JSON.parse(a.body) as { errorType: string }).errorType}`);
      busy = kinds.filter((k) => k === '503 unavailable').length;
      expect(kinds.filter((k) => k === '400 bad_data').length).toBe(n - busy);
      expect(n - busy).toBeGreaterThanOrEqual(SERVER_LIMITS.promqlConcurrentQueriesMax);
    }
    expect(busy).toBeGreaterThan(0);
    const after = await post('/api/v1/series', ['ifInOctets']);
    expect(after.status).toBe(200);
  }, 120_000);
});
