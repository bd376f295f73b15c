/**
 * The query API's parameters at their edges, against the real Prometheus 2.42 loaded with the
 * same samples (test/helpers/promql-peers.ts): huge step counts (its 11 000 points a series),
 * steps below a millisecond, times at and past the time contract's ends (NaN, +-Inf, 1e20,
 * Prometheus' own min/max time texts), end before start, durations negative, zero and past
 * int64, a parameter given twice (form and URL, twice in the form), and match[] selecting
 * nothing. Each request goes to both: the same status and errorType, and when both answer,
 * the same data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seriesToPath } from '../protocol/prom-path.js';
import { startServer, type TestServer } from './helpers/server.js';
import { remoteWrite, startReceiver } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';

const T0_MS = 1_700_000_000_000;
const SAMPLES: Array<[number, number]> = Array.from({ length: 41 }, (_x, i) => [T0_MS + i * 15_000, i]);

let prom: RunningPrometheus;
let tapedeck: TestServer;

beforeAll(async () => {
  const path = seriesToPath({ name: 'm', labels: { a: '1' } });
  [prom, tapedeck] = await Promise.all([startReceiver(), startServer(SAMPLES.map(([t, v]) => ({ ts: t * 1000, updates: [[path, v]] })))]);
  await remoteWrite(`${prom.url}/api/v1/write`, [{ labels: { __name__: 'm', a: '1' }, samples: SAMPLES }]);
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), tapedeck?.close()]);
});

interface Answer { status: number; errorType: string | undefined; error: string | undefined; data: unknown }

async function ask(base: string, route: string, url: string, form?: string): Promise<Answer> {
  const res = await fetch(`${base}/api/v1/${route}${url === '' ? '' : `?${url}`}`, form === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body = (await res.json()) as { errorType?: string; error?: string; data?: unknown };
  return { status: res.status, errorType: body.errorType, error: body.error, data: body.data };
}

const S = (ms: number): string => String(ms / 1000);
const START = S(T0_MS);
const END = S(T0_MS + 600_000);
const q = (o: Record<string, string>): string => new URLSearchParams(o).toString();

/** [route, URL query, form body (POST) or undefined]. */
const CASES: Array<[string, string, string | undefined]> = [
  // Step counts: 11 000 points a series at most.
  ['query_range', q({ query: 'm', start: '0', end: '1e9', step: '1' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 10_999_000), step: '1' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 11_000_000), step: '1' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 11_001_000), step: '1' }), undefined],
  ['query_range', q({ query: '1', start: '-1e15', end: '1e15', step: '1e-3' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 10), step: '0.0015' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 10), step: '1ms' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END, step: '0' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END, step: '-15' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END, step: '1e300' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END, step: 'NaN' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END, step: 'Inf' }), undefined],
  ['query_range', q({ query: 'm', start: END, end: START, step: '15' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: START, step: '15' }), undefined],
  ['query_range', q({ query: 'm', start: START, step: '15' }), undefined],
  ['query_range', q({ query: 'm', start: START, end: END }), undefined],
  // Times at and past the contract's ends.
  ...['-292273086-05-16T16:47:06Z', '292277025-08-17T07:12:55.999999999Z', '-292273086-05-16T16:47:04.192Z', '1e-3', '-1', '0', '0x10', '8.6e12', '-8.6e12',
    '2023-11-14T22:13:20Z', '2023-11-14T22:13:20.123456789Z', '2023-11-14 22:13:20Z', '', ' 1700000000', '1700000000.0005', '1700000000.0015', '1700000000.0025']
    .map((time): [string, string, string | undefined] => ['query', q({ query: 'm', time }), undefined]),
  ['query_range', q({ query: 'm', start: '-292273086-05-16T16:47:06Z', end: '292277025-08-17T07:12:55.807Z', step: '1e12' }), undefined],
  // Durations.
  ...['-1', '0', '1ms', '5m', '0.0001', '1y1y'].map((lookback_delta): [string, string, string | undefined] => ['query', q({ query: 'm', time: END, lookback_delta }), undefined]),
  ...['-1', '0', '-0.0001', '1e30'].map((timeout): [string, string, string | undefined] => ['query', q({ query: 'm', time: END, timeout }), undefined]),
  // A parameter twice: the form's first value wins over the URL's, twice in one place the first.
  ['query', q({ query: 'm', time: END }), q({ query: 'm * 2' })],
  ['query', `${q({ query: 'm', time: END })}&query=m%20*%203`, undefined],
  ['query', q({ time: END }), `${q({ query: 'm + 1' })}&query=m%20*%203`],
  ['query', q({ query: 'm', time: END }), q({ time: S(T0_MS + 60_000) })],
  ['query', q({ query: 'm' }), `${q({ time: S(T0_MS + 60_000) })}&time=garbage`],
  ['query', q({ query: 'm', time: END }), q({ query: '' })],
  // match[] selecting nothing, or nothing at all.
  ['series', q({ 'match[]': 'nothing' }), undefined],
  ['series', q({ 'match[]': 'm{a="2"}' }), undefined],
  ['series', '', undefined],
  ['series', q({ 'match[]': '{a=""}' }), undefined],
  ['series', q({ 'match[]': 'm', start: END, end: START }), undefined],
  ['series', q({ 'match[]': 'm', start: S(T0_MS + 3_600_000), end: S(T0_MS + 7_200_000) }), undefined],
  ['series', q({ 'match[]': 'm', start: S(T0_MS - 7_200_000), end: S(T0_MS - 3_600_000) }), undefined],
  ['series', q({ 'match[]': 'm', start: S(T0_MS + 300_000), end: S(T0_MS + 301_000) }), undefined],
  ['labels', q({ 'match[]': 'm', start: S(T0_MS + 3_600_000) }), undefined],
  ['label/a/values', q({ start: S(T0_MS + 3_600_000) }), undefined],
  ['labels', q({ 'match[]': 'nothing' }), undefined],
  ['labels', q({ 'match[]': '{a=~".*"}' }), undefined],
  ['label/a/values', q({ 'match[]': 'nothing' }), undefined],
  ['label/nosuch/values', '', undefined],
];

/**
 * Where Tapedeck answers otherwise on purpose (docs/prometheus.md): a time past the archive's
 * contract (µs up to 2^53: |t| < 8.64e12 s) or not a number is refused, where Prometheus wraps
 * it into an int64 and answers for a time nobody asked (NaN, Inf, 1e20); a step below 1 ms is
 * refused, where Prometheus' engine divides by zero (422 "runtime error"); lookback_delta is
 * read as Prometheus reads it from 2.43 (2.42 ignores it); a timeout of NaN is refused (Go
 * makes it the most negative duration: 503); Prometheus' max time text with ms is taken.
 */
const OURS: Array<[string, string, number, string | undefined]> = [
  ...['NaN', 'Inf', '-Inf', '+Inf', '1e20', '-1e20', '9.2e15', '-9.2e15', '8.7e12'].map((time): [string, string, number, string] => ['query', q({ query: 'm', time }), 400, 'bad_data']),
  ['query_range', q({ query: 'm', start: 'NaN', end: END, step: '15' }), 400, 'bad_data'],
  ['series', q({ 'match[]': 'm', start: 'NaN' }), 400, 'bad_data'],
  ['label/a/values', q({ 'match[]': 'm', start: '1e20' }), 400, 'bad_data'],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 10), step: '0.0001' }), 400, 'bad_data'],
  ['query_range', q({ query: 'm', start: START, end: S(T0_MS + 10), step: '0.0009999' }), 400, 'bad_data'],
  ...['1e30', '-1e30', 'NaN'].map((lookback_delta): [string, string, number, string] => ['query', q({ query: 'm', time: END, lookback_delta }), 400, 'bad_data']),
  ['query', q({ query: 'm', time: END, timeout: 'NaN' }), 400, 'bad_data'],
  ['query', q({ query: 'm', time: '292277025-08-17T07:12:55.807Z' }), 200, undefined],
];

describe('the query API\'s parameters at their edges, Tapedeck against Prometheus 2.42', () => {
  it('answers the edges it decides otherwise as docs/prometheus.md says', async () => {
    for (const [route, url, status, errorType] of OURS) {
      const got = await ask(tapedeck.url, route, url);
      expect([got.status, got.errorType], `${route}?${decodeURIComponent(url)}: ${got.error ?? ''}`).toEqual([status, errorType]);
    }
  });

  it('answers each request with Prometheus\' status, error type and data', async () => {
    const failures: string[] = [];
    for (const [route, url, form] of CASES) {
      const [want, got] = await Promise.all([ask(prom.url, route, url, form), ask(tapedeck.url, route, url, form)]);
      const what = `${route}?${decodeURIComponent(url)}${form === undefined ? '' : ` form ${decodeURIComponent(form)}`}`;
      if (want.status !== got.status || want.errorType !== got.errorType) {
        failures.push(`${what}: ${got.status} ${got.errorType ?? ''} ${got.error ?? ''}; Prometheus ${want.status} ${want.errorType ?? ''} ${want.error ?? ''}`);
        continue;
      }
      if (JSON.stringify(want.data) !== JSON.stringify(got.data)) failures.push(`${what}: ${JSON.stringify(got.data).slice(0, 300)}; Prometheus ${JSON.stringify(want.data).slice(0, 300)}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  }, 60_000);
});
