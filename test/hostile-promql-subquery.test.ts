/**
 * Subqueries multiply a query's work, and stay bounded: one that would evaluate more steps
 * than promqlSubqueryStepsMax (all its subqueries together, nested ones included) is refused
 * before it runs, one whose points pass promqlSamplesMax is refused in Prometheus' shape
 * (422 execution, "query processing would load too many samples into memory"), and one
 * within the bounds but long is evaluated in slices: /health answers while it runs, and it
 * stops once its client leaves (tapedeck_requests_canceled_total). After each the server
 * answers the next query right.
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too. Its promqlSamplesMax is lowered to SAMPLES_MAX (set
 * in the child) so that a subquery of 100 series reaches it.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { until } from './helpers/until.js';
import { SERVER_LIMITS } from '../server/limits.js';

const T0_MS = 1_700_000_000_000;
const SERIES = 100;
/** Samples of each series, 15 s apart: an hour. */
const SAMPLES = 240;
const SAMPLES_MAX = 1_000_000;
/** /health must answer at all within this while a query runs (not a timing target). */
const HEALTH_ANSWER_MS = 5_000;
/** Generous: a canceled query stops within its next slice (not a timing target). */
const STOPPED_WITHIN_MS = 20_000;
const END_S = String((T0_MS + SAMPLES * 15_000) / 1000);

let server: ChildServer;

beforeAll(async () => {
  const fill = `SERVER_LIMITS.promqlSamplesMax = ${SAMPLES_MAX};
for (let b = 0; b < ${SAMPLES}; b++) {
  const updates = [];
  for (let i = 0; i < ${SERIES}; i++) updates.push([seriesToPath({ name: 'sq_gauge', labels: { i: String(i) } }), b + i]);
  archive.writer.append(updates, (${T0_MS} + b * 15_000) * 1000);
}`;
  server = await startArchiveServer(fill, { imports: { SERVER_LIMITS: 'server/limits.ts', seriesToPath: 'protocol/prom-path.ts' } });
}, 60_000);

afterAll(() => server?.close());

async function query(params: Record<string, string>): Promise<{ status: number; body: { status: string; errorType?: string; error?: string; data?: { result: unknown } } }> {
  const route = 'step' in params ? 'query_range' : 'query';
  const res = await fetch(`${server.url}/api/v1/${route}`, { method: 'POST', body: new URLSearchParams(params) });
  return { status: res.status, body: (await res.json()) as { status: string; errorType?: string; error?: string } };
}

/** The server answers a normal query right: 100 series at the end, and a subquery within the bounds. */
async function answersRight(): Promise<void> {
  const count = await query({ query: 'count(sq_gauge)', time: END_S });
  expect(count.status).toBe(200);
  expect(count.body.data?.result).toEqual([{ metric: {}, value: [Number(END_S), String(SERIES)] }]);
  // i="7": values b + 7 at T0 + b·15 s; the subquery's last step, at a multiple of 1m, is END_S - 20 s, where b = 238.
  const max = await query({ query: 'max_over_time(sq_gauge{i="7"}[10m:1m])', time: END_S });
  expect(max.body.data?.result).toEqual([{ metric: { i: '7' }, value: [Number(END_S), String(238 + 7)] }]);
  expect(await server.healthAnswers(HEALTH_ANSWER_MS)).toBe(true);
  expect(server.exitCode).toBeUndefined();
}

describe('subqueries past the bounds', () => {
  it(`refuses at once a subquery of more steps than promqlSubqueryStepsMax (${SERVER_LIMITS.promqlSubqueryStepsMax}), nested or in a range query`, async () => {
    for (const params of [
      // 8.64·10¹¹ steps.
      { query: 'max_over_time(sq_gauge[10000d:1ms])', time: END_S },
      // The inner one: 31 days at 1 s, 2.7·10⁶ steps (the outer one only 43 201).
      { query: 'max_over_time(max_over_time(sq_gauge[1d:1s])[30d:1m])', time: END_S },
      // Over the range query's steps too: 2 h at 1 ms.
      { query: 'max_over_time(sq_gauge[1h:1ms])', start: String(Number(END_S) - 3600), end: END_S, step: '60' },
      // A bare one (an instant query's matrix).
      { query: 'sq_gauge[1y:10ms]', time: END_S },
    ]) {
      const r = await query(params);
      expect(r.status, params.query).toBe(422);
      expect(r.body.errorType).toBe('execution');
      expect(r.body.error).toContain(`promqlSubqueryStepsMax (${SERVER_LIMITS.promqlSubqueryStepsMax})`);
    }
    await answersRight();
  }, 60_000);

  it('refuses a subquery whose points pass promqlSamplesMax, in Prometheus\' shape', async () => {
    // 36 001 steps of 100 series (each has a value within the lookback from T0 on): 3.6·10⁶ points.
    for (const q of ['max_over_time(sq_gauge[1h:100ms])', 'sq_gauge[1h:100ms]', 'sum(max_over_time(sq_gauge[1h:100ms]))']) {
      const r = await query({ query: q, time: END_S });
      expect(r.status, q).toBe(422);
      expect(r.body.errorType).toBe('execution');
      expect(r.body.error).toContain('query processing would load too many samples into memory in query execution');
      expect(r.body.error).toContain('promqlSamplesMax');
    }
    await answersRight();
  }, 60_000);
});

/** Sends a GET over a raw socket and returns the socket, to be closed unread (a client that hangs up). */
function hangUpLater(path: string): Promise<Socket> {
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function canceledRunning(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = /^tapedeck_requests_canceled_total\{at="running"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('a long subquery within the bounds', () => {
  it('is evaluated in slices (/health answers meanwhile) and stops once its client leaves', async () => {
    // 20 days at 1 s: 1 728 001 steps (within promqlSubqueryStepsMax), each over 100 series, no point kept: a minute or more of work.
    const heavy = 'count_over_time((sq_gauge > 1e300)[20d:1s])';
    expect(20 * 86_400 + 1).toBeLessThan(SERVER_LIMITS.promqlSubqueryStepsMax);
    const before = await canceledRunning();
    const socket = await hangUpLater(`/api/v1/query?${new URLSearchParams({ query: heavy, time: END_S }).toString()}`);
    // The query runs (it holds a place of the gate) and the server answers other requests meanwhile.
    for (let i = 0; i < 3; i++) expect(await server.healthAnswers(HEALTH_ANSWER_MS)).toBe(true);
    // Hung up long before the evaluation could end: it is counted as canceled only if it stops at a slice.
    socket.destroy();
    await until(async () => (await canceledRunning()) > before, STOPPED_WITHIN_MS, 'the subquery counted as canceled');
    await answersRight();
  }, 120_000);
});
