/**
 * The auth matrix: every route the server documents (and its two WebSocket endpoints),
 * without a token, with an unknown token, and with each scope. The expected scope of each
 * route is written here by hand, not derived from the server's own table, and a route the
 * server documents without an entry here fails the test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, type TestServer, authedCall } from './helpers/server.js';
import { randomBatches } from './helpers/workload.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { FailureCounter } from '../server/ops/auth.js';

const TOKENS = [
  { name: 'reader', token: 'read-token-0123456789', scopes: ['read' as const] },
  { name: 'reader2', token: 'read-token-9876543210', scopes: ['read' as const] },
  { name: 'pusher', token: 'ingest-token-0123456789', scopes: ['ingest' as const] },
  { name: 'boss', token: 'admin-token-0123456789', scopes: ['admin' as const] },
];
const TOKEN = Object.fromEntries(TOKENS.map((t) => [t.name, t.token])) as Record<'reader' | 'reader2' | 'pusher' | 'boss', string>;

/**
 * What each route needs. `owner`: a read token that created the session, or an admin
 * token. Bodies and queries are valid where the route takes them, so "allowed" answers are
 * never 401/403 (ingest answers 404 here: this server has no push source).
 */
type Need = 'public' | 'read' | 'ingest' | 'admin' | 'owner';
const EXPECTED: Record<string, { need: Need; body?: unknown; query?: string }> = {
  'GET /health': { need: 'public' },
  'GET /ready': { need: 'public' },
  'GET /metrics': { need: 'read' },
  'GET /stats': { need: 'read' },
  'GET /api/v1/archive': { need: 'read' },
  'GET /api/v1/paths': { need: 'read', query: '?glob=/**' },
  'GET /api/v1/state': { need: 'read', query: '?glob=/**' },
  'GET /api/v1/history': { need: 'read', query: '?from=-1m' },
  'GET /api/v1/diff': { need: 'read', query: '?start=-1m' },
  'GET /api/v1/bookmarks': { need: 'read' },
  'POST /api/v1/bookmarks': { need: 'ingest', body: { ts: 1, note: 'matrix' } },
  'DELETE /api/v1/bookmarks/{id}': { need: 'ingest' },
  'GET /api/v1/layouts': { need: 'read' },
  'GET /api/v1/layouts/{name}': { need: 'read' },
  'PUT /api/v1/layouts/{name}': { need: 'ingest', body: { layout: { panels: [] } } },
  'DELETE /api/v1/layouts/{name}': { need: 'ingest' },
  'GET /api/v1/sources': { need: 'read' },
  'GET /api/v1/coverage': { need: 'read' },
  'GET /api/v1/shard': { need: 'read' },
  'GET /api/v1/shard/batches': { need: 'read', query: '?from=0' },
  'GET /api/v1/shard/before': { need: 'read', query: '?ts=0&n=1' },
  'POST /api/v1/shard/updated': { need: 'read', body: { at_us: null, paths: ['/x'] } },
  'GET /api/v1/ha': { need: 'read' },
  'POST /api/v1/ha/control': { need: 'admin', body: { action: 'release' } },
  'POST /api/v1/sessions': { need: 'read', body: { state: 'pause' } },
  'GET /api/v1/sessions': { need: 'admin' },
  'GET /api/v1/sessions/{id}': { need: 'owner' },
  'PATCH /api/v1/sessions/{id}': { need: 'owner', body: { speed: 2 } },
  'DELETE /api/v1/sessions/{id}': { need: 'owner' },
  'POST /api/v1/ingest': { need: 'ingest', body: '{"updates":{"/x":1}}\n' },
  'POST /api/v1/write': { need: 'ingest' },
  'GET /api/v1/query': { need: 'read', query: '?query=1' },
  'POST /api/v1/query': { need: 'read', query: '?query=1' },
  'GET /api/v1/query_range': { need: 'read', query: '?query=1&start=0&end=60&step=15' },
  'POST /api/v1/query_range': { need: 'read', query: '?query=1&start=0&end=60&step=15' },
  'GET /api/v1/series': { need: 'read', query: '?match[]=up' },
  'POST /api/v1/series': { need: 'read', query: '?match[]=up' },
  'GET /api/v1/labels': { need: 'read' },
  'POST /api/v1/labels': { need: 'read' },
  'GET /api/v1/label/{name}/values': { need: 'read' },
  'POST /api/v1/label/{name}/values': { need: 'read' },
  'GET /api/v1/status/buildinfo': { need: 'read' },
  'GET /api/v1/metadata': { need: 'read' },
  'GET /api/v1/query_exemplars': { need: 'read', query: '?query=up&start=0&end=60' },
  'POST /api/v1/query_exemplars': { need: 'read', query: '?query=up&start=0&end=60' },
  'WS /api/v1/sessions/{id}/stream': { need: 'owner' },
  'WS /api/v1/ingest/ws': { need: 'ingest' },
};

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke at arbitrary JSON bodies
const call = (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> => authedCall(server!.url, method, path, token, body);

/** The status of a WebSocket upgrade: 101 when it opened, else the HTTP answer's status. */
function upgrade(path: string, token?: string): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server!.url.replace('http', 'ws') + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        req.destroy();
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          // no JSON body
        }
        resolve({ status: res.statusCode ?? 0, ...(code ? { code } : {}) });
      });
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', (err) => {
      if (!ws.listenerCount('unexpected-response')) reject(err);
    });
  });
}

describe('auth matrix', () => {
  it('knows every route the server documents', async () => {
    server = await startServer(randomBatches(1, 5), { tokens: TOKENS });
    const doc = (await call('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    // @fastify/websocket keeps WebSocket routes out of the OpenAPI document (docs/playback.md
    // and docs/recording.md describe them); they are in the matrix all the same.
    const expected = Object.keys(EXPECTED).filter((k) => !k.startsWith('WS '));
    expect(documented.filter((r) => r !== 'HEAD /health').sort()).toEqual(expected.sort());
  });

  it('answers each route 401 without or with an unknown token, 403 without the scope, and lets each scope through', async () => {
    server = await startServer(randomBatches(1, 20), { tokens: TOKENS });
    let checked = 0;
    for (const [route, spec] of Object.entries(EXPECTED)) {
      const [method, template] = route.split(' ') as [string, string];
      // A fresh session owned by `reader` for each call (DELETE removes it).
      const session = async (): Promise<string> => {
        const s = await call('POST', '/api/v1/sessions', TOKEN.reader, { state: 'pause' });
        expect(s.status).toBe(201);
        return template.replace('{id}', s.body.id as string);
      };
      const attempt = async (token?: string): Promise<{ status: number; code?: string }> => {
        // Bookmark ids and layout names need not exist: an allowed caller gets 404, never 401/403.
        const concrete = template.replace('/bookmarks/{id}', '/bookmarks/no-such-id').replace('{name}', 'matrix');
        const path = (concrete.includes('{id}') ? await session() : concrete) + (spec.query ?? '');
        if (method === 'WS') return upgrade(path, token);
        const r = await call(method, path, token, spec.body);
        return { status: r.status, code: r.body?.error?.code };
      };
      const none = await attempt();
      const unknown = await attempt('not-a-token');
      if (spec.need === 'public') {
        expect(none.status, `${route} without a token`).toBeLessThan(400);
        checked++;
        continue;
      }
      expect(none, `${route} without a token`).toEqual({ status: 401, code: 'TPD_UNAUTHORIZED' });
      expect(unknown, `${route} with an unknown token`).toEqual({ status: 401, code: 'TPD_UNAUTHORIZED' });
      for (const who of ['reader', 'reader2', 'pusher', 'boss'] as const) {
        const scope = TOKENS.find((t) => t.name === who)!.scopes[0];
        const allowed = scope === 'admin'
          || (spec.need === 'owner' ? who === 'reader' : scope === spec.need);
        const r = await attempt(TOKEN[who]);
        if (allowed) {
          expect([401, 403], `${route} as ${who}: ${r.status} ${r.code}`).not.toContain(r.status);
        } else {
          expect(r, `${route} as ${who}`).toEqual({ status: 403, code: 'TPD_FORBIDDEN' });
        }
        checked++;
      }
    }
    expect(checked).toBe(2 + (Object.keys(EXPECTED).length - 2) * 4);
  });

  it('answers 429 to an address past the failed-authentication limit, even with a valid token, until the minute is over', async () => {
    server = await startServer(randomBatches(1, 5), { tokens: TOKENS });
    const max = SERVER_LIMITS.authFailuresPerMinuteMax;
    for (let i = 0; i < max; i++) expect((await call('GET', '/api/v1/archive', `guess-${i}`)).status).toBe(401);
    expect(await call('GET', '/api/v1/archive', 'guess-last')).toMatchObject({ status: 429, body: { error: { code: 'TPD_RATE_LIMITED' } } });
    // A right guess now would not get through either.
    expect((await call('GET', '/api/v1/archive', TOKEN.reader)).status).toBe(429);
    expect((await call('GET', '/health')).status).toBe(200);
  });
});

describe('failed-authentication lockout', () => {
  const max = SERVER_LIMITS.authFailuresPerMinuteMax;
  const keysMax = SERVER_LIMITS.authFailureAddressesMax;

  it('keeps a locked-out address locked while more addresses than the table holds fail, and forgets it after the window', () => {
    let nowMs = 1_000_000;
    const failures = new FailureCounter(max, 60_000, keysMax, () => nowMs);
    for (let i = 0; i < max; i++) failures.add('203.0.113.7');
    expect(failures.blocked('203.0.113.7')).toBe(true);
    for (let i = 0; i <= keysMax; i++) failures.add(`198.51.${i >> 8}.${i & 255}`);
    expect(failures.blocked('203.0.113.7')).toBe(true);
    // Bounded: the oldest counts went, one at a time.
    expect(failures.size).toEqual({ counting: keysMax, locked: 1 });
    expect(failures.blocked('198.51.0.0')).toBe(false);
    nowMs += 60_000;
    expect(failures.blocked('203.0.113.7')).toBe(false);
  });

  it('evicts the oldest count, not every count, when a new address fails in a full table', () => {
    let nowMs = 0;
    const failures = new FailureCounter(3, 60_000, 4, () => nowMs);
    for (const k of ['a', 'b', 'c', 'd']) failures.add(k);
    failures.add('b'); // b: 2 failures
    failures.add('e'); // evicts a (the oldest), not b
    failures.add('b'); // b: 3 failures -> locked
    expect(failures.blocked('b')).toBe(true);
    expect(failures.size).toEqual({ counting: 3, locked: 1 });
    nowMs = 60_000;
    failures.add('c'); // a new window: c moves to the back
    for (const k of ['f', 'g', 'h']) failures.add(k); // evict d, e: c would have gone first
    failures.add('c');
    failures.add('c');
    expect(failures.blocked('c')).toBe(true);
  });

  it('keeps an address locked out through the server after 10 001 other addresses fail (no flush of the table)', async () => {
    server = await startServer(randomBatches(1, 5), { tokens: TOKENS });
    const app = server.app;
    const get = (remoteAddress: string, token: string): Promise<number> =>
      app.inject({ method: 'GET', url: '/api/v1/archive', remoteAddress, headers: { authorization: `Bearer ${token}` } }).then((r) => r.statusCode);
    for (let i = 0; i < max; i++) expect(await get('203.0.113.7', `guess-${i}`)).toBe(401);
    expect(await get('203.0.113.7', TOKEN.reader)).toBe(429);
    for (let i = 0; i <= keysMax; i++) expect(await get(`198.51.${i >> 8}.${i & 255}`, 'wrong')).toBe(401);
    expect(await get('203.0.113.7', TOKEN.reader)).toBe(429);
    expect(await get('192.0.2.1', TOKEN.reader)).toBe(200);
  });
});
