/**
 * Query strings and form bodies whose %XX escapes do not decode (not hex, cut short, not
 * UTF-8) are refused with 400 TPD_BAD_REQUEST at every route, never read as literal text
 * (Node's querystring kept `%ED%A0%80` as the glob text "%ED%A0%80") or as U+FFFD
 * (URLSearchParams, which the Prometheus routes read); well-formed escapes still decode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/server.js';

const T_US = 1_700_000_000_000_000;

describe('percent-encoding of query strings and form bodies', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer([{ ts: T_US, updates: [['/a/€', 1], ['/a/b', 2]] }]);
  }, 60_000);

  afterAll(async () => {
    await srv?.close();
  });

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(srv.url + path);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it.each([
    '/api/v1/paths?glob=%ED%A0%80',
    '/api/v1/paths?glob=%2Fa%2F%E',
    '/api/v1/paths?glob=%ZZ',
    '/api/v1/paths?glob=%2Fa%2F*&x=%C3',
    '/api/v1/query?query=up%FF',
    '/api/v1/query_range?query=up&start=1&end=2&step=%',
    '/api/v1/series?match[]=%80up',
    '/api/v1/state?at=%E2%82',
  ])('refuses %s', async (path) => {
    const r = await get(path);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: { code: 'TPD_BAD_REQUEST' } });
  });

  it('decodes well-formed escapes as before', async () => {
    const r = await get('/api/v1/paths?glob=%2Fa%2F%E2%82%AC');
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).toContain('/a/€');
    const q = await get('/api/v1/query?query=vector(1)%2B1&time=1');
    expect(q.status).toBe(200);
  });

  it('refuses a Prometheus form body with a malformed escape, takes a good one', async () => {
    const post = (body: string): Promise<Response> =>
      fetch(`${srv.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const bad = await post('query=up%E2%82&time=1');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'TPD_BAD_REQUEST' } });
    const good = await post('query=vector(1)%2B1&time=1');
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ status: 'success', data: { result: [{ value: [1, '2'] }] } });
  });
});
