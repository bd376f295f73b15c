/**
 * /state and /diff answers are written whole as JSON: values of a few MB (a string of
 * control characters is six times longer as JSON) made one past V8's longest string, and
 * the server answered 500 TPD_INTERNAL ("a bug in Tapedeck") after seconds of building it
 * (40 paths of 3 M control characters: /state?at=now 1.3 s, /diff 2.8 s). Past
 * jsonAnswerCharsMax (shortened here) they are refused 422 TPD_ANSWER_TOO_LARGE, naming
 * the limit and what to do; narrower globs and /history still answer every value exactly.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Batch } from '../protocol/value.js';
import { valueFromJson } from '../protocol/value-json.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = limits.jsonAnswerCharsMax;
const T0 = 1_763_000_000_000_000;
/** 200 000 control characters: 1.2 M characters as JSON. */
const BIG = '\u0001'.repeat(200_000);

let server: TestServer;

beforeAll(async () => {
  const batches: Batch[] = [];
  for (let i = 0; i < 8; i++) batches.push({ ts: T0 + i, updates: [[`/b/p${i}`, `${BIG}${i}`]] });
  batches.push({ ts: T0 + 8, updates: [['/b/p0', `${BIG}changed`]] });
  server = await startServer(batches);
});

afterAll(async () => {
  await server?.close();
});

afterEach(() => {
  limits.jsonAnswerCharsMax = saved;
});

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await request(`${server.url}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

describe('JSON answers past jsonAnswerCharsMax', () => {
  it('refuse /state and /diff with 422 TPD_ANSWER_TOO_LARGE, never a 500', async () => {
    limits.jsonAnswerCharsMax = 2 * 1024 * 1024;
    for (const path of ['/api/v1/state', `/api/v1/state?at=${T0 + 8}`, '/api/v1/diff', `/api/v1/diff?start=${T0 + 6}`]) {
      const { status, body } = await get(path);
      expect(status, `${path}: ${body.slice(0, 200)}`).toBe(422);
      const { error } = JSON.parse(body) as { error: { code: string; message: string } };
      expect(error.code).toBe('TPD_ANSWER_TOO_LARGE');
      expect(error.message).toContain('jsonAnswerCharsMax');
      expect(error.message).toContain('/api/v1/history');
    }
  });

  it('answer every value exactly below the limit: narrower globs, and /history of all', async () => {
    limits.jsonAnswerCharsMax = 4 * 1024 * 1024;
    const state = await get(`/api/v1/state?at=${T0 + 8}&glob=/b/p1&glob=/b/p2`);
    expect(state.status).toBe(200);
    const values = (JSON.parse(state.body) as { values: Record<string, unknown> }).values;
    expect(Object.keys(values)).toEqual(['/b/p1', '/b/p2']);
    expect(valueFromJson(values['/b/p2'], '/b/p2')).toBe(`${BIG}2`);
    const diff = await get(`/api/v1/diff?start=${T0 + 7}&glob=/b/p0`);
    expect(diff.status).toBe(200);
    const d = JSON.parse(diff.body) as { paths: Array<{ path: string; start: unknown; end: unknown; changes: number }>; counts: { changed: number } };
    expect(d.counts.changed).toBe(1);
    expect(d.paths[0]?.start).toBe(`${BIG}0`);
    expect(d.paths[0]?.end).toBe(`${BIG}changed`);
    const history = await get('/api/v1/history');
    expect(history.status).toBe(200);
    expect(history.body.length).toBeGreaterThan(9 * 1_200_000);
    expect(history.body.trim().split('\n')).toHaveLength(9);
  });

  it('answer the same as before for answers within the limit (key order, lists, warning)', async () => {
    const diff = await get('/api/v1/diff?glob=/nothing/here');
    expect(diff.status).toBe(200);
    expect(Object.keys(JSON.parse(diff.body) as object)).toEqual(['start', 'end', 'horizon', 'paths', 'appeared', 'disappeared', 'counts', 'truncated', 'warning']);
    const all = JSON.parse((await get(`/api/v1/diff?start=${T0 + 6}`)).body) as { paths: Array<{ path: string }>; appeared: string[]; counts: object };
    expect(all.paths.map((p) => p.path)).toEqual(['/b/p0', '/b/p7']);
    expect(all.appeared).toEqual(['/b/p7']);
    expect(all.counts).toEqual({ changed: 2, appeared: 1, disappeared: 0, unchanged: 6 });
  });
});

describe('/paths past jsonAnswerCharsMax', () => {
  it('lists paths up to the limit and says it is truncated, the count exact', async () => {
    limits.jsonAnswerCharsMax = 64 * 1024;
    const dir = await startServer([{ ts: T0, updates: Array.from({ length: 40 }, (_, i) => [`/c/${i}/${'\u0001'.repeat(1000)}`, i] as [string, number]) }]);
    try {
      const res = await request(`${dir.url}/api/v1/paths?glob=/c/**`);
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { paths: string[]; count: number; truncated: boolean };
      expect(body.count).toBe(40);
      expect(body.truncated).toBe(true);
      // Each path is about 6 000 characters of JSON: ten fit in 64 Ki.
      expect(body.paths).toHaveLength(10);
      expect(body.paths[3]).toBe(`/c/3/${'\u0001'.repeat(1000)}`);
    } finally {
      await dir.close();
    }
  });
});
