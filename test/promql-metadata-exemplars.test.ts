/**
 * /api/v1/metadata and /api/v1/query_exemplars, which Grafana's Prometheus data source asks
 * besides queries: differential against a real Prometheus (2.42, scraping nothing, so it
 * holds no metadata and no exemplars, as Tapedeck never does). Same requests, GET and form
 * POST: the same status, the same result, or an error of the same type.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/server.js';
import { startReceiver } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';

interface Answer {
  status: number;
  body: { status?: string; data?: unknown; errorType?: string };
}

async function ask(base: string, path: string, form?: string): Promise<Answer> {
  const res = form === undefined
    ? await fetch(base + path)
    : await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const text = await res.text();
  let body: Answer['body'];
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = { status: `not JSON: ${text.slice(0, 80)}` };
  }
  return { status: res.status, body };
}

/** What is compared: status, and the result or the error's type (messages may be worded apart). */
const shape = (a: Answer): unknown => ({ status: a.status, result: a.body.status === 'success' ? a.body.data : a.body.errorType ?? a.body.status });

const GETS = [
  '/api/v1/metadata',
  '/api/v1/metadata?metric=up',
  '/api/v1/metadata?limit=5',
  '/api/v1/metadata?limit=-1',
  '/api/v1/metadata?limit=abc',
  '/api/v1/metadata?limit=1.5',
  '/api/v1/query_exemplars?query=up',
  '/api/v1/query_exemplars?query=rate(req_total%5B5m%5D)&start=1700000000&end=1700003600',
  '/api/v1/query_exemplars?query=up&start=2023-11-14T22:13:20Z',
  '/api/v1/query_exemplars',
  '/api/v1/query_exemplars?query=rate(',
  '/api/v1/query_exemplars?query=rate(up)',
  '/api/v1/query_exemplars?query=up&start=abc',
  '/api/v1/query_exemplars?query=up&start=10&end=5',
];
const POSTS: Array<[string, string]> = [
  ['/api/v1/query_exemplars', 'query=up'],
  ['/api/v1/query_exemplars', 'query=sum(rate(x%5B1m%5D))&start=1&end=2'],
  ['/api/v1/query_exemplars', 'query=up&end=1&start=2'],
  ['/api/v1/query_exemplars', 'query=%7B'],
];

describe('metadata and exemplars answer as a Prometheus that holds none', () => {
  let prom: RunningPrometheus;
  let tapedeck: TestServer;

  beforeAll(async () => {
    [prom, tapedeck] = await Promise.all([startReceiver(), startServer([{ ts: 1_700_000_000_000_000, updates: [['/a/b', 1]] }])]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([prom?.stop(), tapedeck?.close()]);
  });

  it('GET: the same status and result, or an error of the same type', async () => {
    const differ: string[] = [];
    for (const path of GETS) {
      const [want, got] = await Promise.all([ask(prom.url, path), ask(tapedeck.url, path)]);
      if (JSON.stringify(shape(want)) !== JSON.stringify(shape(got))) differ.push(`${path}: Prometheus ${JSON.stringify(shape(want))}, Tapedeck ${JSON.stringify(shape(got))}`);
    }
    expect(differ, differ.join('\n')).toEqual([]);
    // Each kind of answer is exercised: successes with empty data, and bad_data refusals.
    const answers = await Promise.all(GETS.map((p) => ask(tapedeck.url, p)));
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(5);
    expect(answers.filter((a) => a.status === 400 && a.body.errorType === 'bad_data').length).toBeGreaterThanOrEqual(5);
  });

  it('form POST of query_exemplars: the same as Prometheus', async () => {
    for (const [path, form] of POSTS) {
      const [want, got] = await Promise.all([ask(prom.url, path, form), ask(tapedeck.url, path, form)]);
      expect(shape(got), `${path} ${form}`).toEqual(shape(want));
    }
  });

  it('a query outside the subset is refused naming the construct, as the query API does', async () => {
    const got = await ask(tapedeck.url, '/api/v1/query_exemplars?query=histogram_count(up)');
    expect(got.status).toBe(400);
    expect(got.body.errorType).toBe('bad_data');
    expect(JSON.stringify(got.body)).toMatch(/histogram_count.*not supported/);
  });
});
