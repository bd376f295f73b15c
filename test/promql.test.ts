/**
 * The Prometheus query API at a real server over a real archive: request forms, answers
 * and error shapes, the naming of non-Prometheus paths, what counts as a sample and as
 * staleness, the metadata endpoints, and hostile input (regexes, nesting, sizes, params).
 * Equality with Prometheus itself is test/promql-diff.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seriesToPath } from '../protocol/prom-path.js';
import type { Batch, Value } from '../protocol/value.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { compileLabelRegex } from '../server/promql/regex.js';
import { formatValue } from '../server/promql/format.js';
import { startServer, type TestServer } from './helpers/server.js';
import { STALE_NAN } from './helpers/nan.js';

const T0_MS = 1_700_000_000_000;

function batches(): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i <= 40; i++) {
    const t = T0_MS + i * 15_000;
    const updates: Array<[string, Value]> = [
      [seriesToPath({ name: 'up', labels: { job: 'node', instance: 'a/b=c' } }), 1],
      // The same labels under another name: dropping names makes two equal label sets.
      [seriesToPath({ name: 'up_copy', labels: { job: 'node', instance: 'a/b=c' } }), 2],
      ['/fabric/sw-1/cpu_util_pct', 40 + i],
      // Booleans are 1 and 0; text is staleness.
      ['/fabric/sw-1/link_up', i % 2 === 0],
      ['/fabric/sw-1/state', i < 20 ? i : 'down'],
      // null ends a series (staleness), as does Prometheus' stale-marker NaN; any other NaN is a sample.
      ['/lab/nulled', i === 20 ? null : i],
      ['/lab/stale_nan', i === 20 ? STALE_NAN : i],
      ['/lab/plain_nan', i === 20 ? NaN : i],
    ];
    out.push({ ts: t * 1000, updates });
  }
  return out;
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer(batches());
});
afterAll(async () => {
  await server.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Prometheus JSON answers
async function get(path: string, params: Record<string, string>): Promise<{ status: number; body: any; code: string | null }> {
  const r = await fetch(`${server.url}${path}?${new URLSearchParams(params)}`);
  return { status: r.status, body: await r.json(), code: r.headers.get('tapedeck-error-code') };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Prometheus JSON answers
async function post(path: string, params: Record<string, string>): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
  return { status: r.status, body: await r.json() };
}

const at = (sec: number): string => String((T0_MS + sec * 1000) / 1000);
const values = (body: { data: { result: Array<{ value: [number, string] }> } }): string[] => body.data.result.map((r) => r.value[1]);

describe('the query API', () => {
  it('answers a form POST as it answers a GET, and takes form values before URL ones', async () => {
    const params = { query: 'tapedeck_value{path="/fabric/sw-1/cpu_util_pct"}', time: at(300) };
    const g = await get('/api/v1/query', params);
    const p = await post('/api/v1/query', params);
    expect(g.status).toBe(200);
    expect(p).toEqual({ status: 200, body: g.body });
    expect(g.body).toEqual({ status: 'success', data: { resultType: 'vector', result: [{ metric: { __name__: 'tapedeck_value', path: '/fabric/sw-1/cpu_util_pct' }, value: [Number(at(300)), '60'] }] } });
    const r = await fetch(`${server.url}/api/v1/query?query=2`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'query=3&time=100' });
    expect(await r.json()).toEqual({ status: 'success', data: { resultType: 'scalar', result: [100, '3'] } });
  });

  it('keeps the name and labels of series that came from Prometheus, escaped characters included', async () => {
    const r = await get('/api/v1/query', { query: 'up{instance="a/b=c"}', time: at(0) });
    expect(r.body.data.result).toEqual([{ metric: { __name__: 'up', job: 'node', instance: 'a/b=c' }, value: [Number(at(0)), '1'] }]);
  });

  it('reads booleans as 1 and 0 and text as staleness', async () => {
    expect(values((await get('/api/v1/query', { query: 'tapedeck_value{path="/fabric/sw-1/link_up"}', time: at(15) })).body)).toEqual(['0']);
    expect(values((await get('/api/v1/query', { query: 'tapedeck_value{path="/fabric/sw-1/link_up"}', time: at(30) })).body)).toEqual(['1']);
    expect(values((await get('/api/v1/query', { query: 'tapedeck_value{path="/fabric/sw-1/state"}', time: at(19 * 15) })).body)).toEqual(['19']);
    // "down" at 20*15 s ends the series although 19 is within the lookback.
    expect(values((await get('/api/v1/query', { query: 'tapedeck_value{path="/fabric/sw-1/state"}', time: at(20 * 15 + 5) })).body)).toEqual([]);
  });

  it('ends a series at null and at the stale-marker NaN, and keeps any other NaN as a sample', async () => {
    const q = (path: string): Promise<string[]> => get('/api/v1/query', { query: `tapedeck_value{path="${path}"}`, time: at(20 * 15 + 5) }).then((r) => values(r.body));
    expect(await q('/lab/nulled')).toEqual([]);
    expect(await q('/lab/stale_nan')).toEqual([]);
    expect(await q('/lab/plain_nan')).toEqual(['NaN']);
    // Range selectors leave staleness out: samples 1..19 are in [5 s, 305 s], the marker is not counted.
    const q5m = (path: string): Promise<string[]> => get('/api/v1/query', { query: `count_over_time(tapedeck_value{path="${path}"}[5m])`, time: at(20 * 15 + 5) }).then((r) => values(r.body));
    expect(await q5m('/lab/stale_nan')).toEqual(['19']);
    expect(await q5m('/lab/nulled')).toEqual(['19']);
    expect(await q5m('/lab/plain_nan')).toEqual(['20']);
  });

  it('takes lookback_delta', async () => {
    const q = { query: 'tapedeck_value{path="/fabric/sw-1/cpu_util_pct"}', time: at(40 * 15 + 120) };
    expect(values((await get('/api/v1/query', q)).body)).toEqual(['80']);
    expect(values((await get('/api/v1/query', { ...q, lookback_delta: '1m' })).body)).toEqual([]);
  });

  it('answers a range query as a matrix, scalars as a series without labels', async () => {
    const r = await get('/api/v1/query_range', { query: '1', start: at(0), end: at(60), step: '30s' });
    expect(r.body).toEqual({ status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values: [[Number(at(0)), '1'], [Number(at(30)), '1'], [Number(at(60)), '1']] }] } });
  });

  it('lists series, label names and label values, narrowed by match[]', async () => {
    const s = await get('/api/v1/series', { 'match[]': 'up' });
    expect(s.body).toEqual({ status: 'success', data: [{ __name__: 'up', instance: 'a/b=c', job: 'node' }] });
    const names = await get('/api/v1/labels', {});
    expect(names.body.data).toEqual(['__name__', 'instance', 'job', 'path']);
    const v = await get('/api/v1/label/__name__/values', {});
    expect(v.body.data).toEqual(['tapedeck_value', 'up', 'up_copy']);
    const paths = await post('/api/v1/label/path/values', { 'match[]': 'tapedeck_value{path=~"/lab/.*"}' });
    expect(paths.body.data).toEqual(['/lab/nulled', '/lab/plain_nan', '/lab/stale_nan']);
    expect((await get('/api/v1/series', {})).body).toEqual({ status: 'error', errorType: 'bad_data', error: 'no match[] parameter provided' });
  });

  it('reports the Prometheus version whose PromQL it follows', async () => {
    const b = await get('/api/v1/status/buildinfo', {});
    expect(b.body.data.version).toBe('2.42.0');
  });
});

describe('refusals, in Prometheus error shape', () => {
  const refused = async (params: Record<string, string>, path = '/api/v1/query'): Promise<{ status: number; errorType: string; error: string; code: string | null }> => {
    const r = await get(path, params);
    expect(r.body.status, JSON.stringify(r.body)).toBe('error');
    expect(Object.keys(r.body).sort()).toEqual(['error', 'errorType', 'status']);
    return { status: r.status, errorType: r.body.errorType, error: r.body.error, code: r.code };
  };

  it('names the construct outside the subset', async () => {
    for (const [q, what] of [
      ['quantile_over_time("a", up[5m])', 'string literal'],
      ['histogram_count(up)', 'histogram_count'],
      ['histogram_fraction(0, 1, up)', 'histogram_fraction'],
      ['timestamp(up @ 100 offset 1m)', 'timestamp'],
      ['limitk(1, up)', 'limitk'],
    ] as const) {
      const r = await refused({ query: q });
      expect(r, q).toMatchObject({ status: 400, errorType: 'bad_data', code: 'TPD_BAD_ARGUMENT' });
      expect(r.error, q).toContain(what);
    }
  });

  it('refuses parse errors, bad parameters and missing ones', async () => {
    expect(await refused({ query: 'sum(' })).toMatchObject({ status: 400, errorType: 'bad_data' });
    expect((await refused({})).error).toBe('invalid parameter "query": parameter is missing');
    expect((await refused({ query: 'up', time: 'yesterday' })).error).toContain('invalid parameter "time"');
    expect((await refused({ query: 'up', time: 'NaN' })).error).toContain('invalid parameter "time"');
    const range = { query: 'up', start: at(60), end: at(0), step: '15s' };
    expect((await refused(range, '/api/v1/query_range')).error).toContain('end timestamp must not be before start time');
    expect((await refused({ ...range, end: at(120), step: '-1' }, '/api/v1/query_range')).error).toContain('zero or negative query resolution step');
    expect((await refused({ ...range, end: at(120), step: '1e300' }, '/api/v1/query_range')).error).toContain('invalid parameter "step"');
    expect((await refused({ query: 'up[5m]', start: at(0), end: at(60), step: '15s' }, '/api/v1/query_range')).error).toContain('invalid expression type "range vector" for range query');
  });

  it('refuses a range query past promqlPointsPerSeriesMax steps', async () => {
    const steps = SERVER_LIMITS.promqlPointsPerSeriesMax;
    // Prometheus' check: (end - start) / step past the limit, so 11 001 points are allowed (test/audit9-prom-api.test.ts).
    const r = await refused({ query: 'up', start: '0', end: String(steps + 1), step: '1' }, '/api/v1/query_range');
    expect(r.error).toContain('exceeded maximum resolution of 11,000 points per timeseries');
    // One step fewer is allowed.
    expect((await get('/api/v1/query_range', { query: 'up', start: '0', end: String(steps), step: '1' })).status).toBe(200);
  });

  it('refuses a query longer than promqlQueryCharsMax and one nested deeper than promqlNestingDepthMax', async () => {
    const long = `up${' '.repeat(SERVER_LIMITS.promqlQueryCharsMax)}`;
    const r = await fetch(`${server.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ query: long }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toContain('promqlQueryCharsMax');
    const nested = (n: number): string => `${'('.repeat(n)}1${')'.repeat(n)}`;
    expect((await post('/api/v1/query', { query: nested(SERVER_LIMITS.promqlNestingDepthMax) })).status).toBe(200);
    const d = await post('/api/v1/query', { query: nested(SERVER_LIMITS.promqlNestingDepthMax + 1) });
    expect(d).toMatchObject({ status: 400, body: { errorType: 'bad_data' } });
    expect(d.body.error).toContain('promqlNestingDepthMax');
    // Far deeper: refused (by the grammar or the bound), never a stack overflow.
    for (const q of [nested(100_000), `${'-'.repeat(100_000)}up`, `${'sum('.repeat(20_000)}up${')'.repeat(20_000)}`]) {
      expect((await post('/api/v1/query', { query: q.slice(0, SERVER_LIMITS.promqlQueryCharsMax) })).status).toBe(400);
    }
  });

  it('refuses a selector that matches everything', async () => {
    expect((await refused({ query: '{job=~".*"}' })).error).toBe('vector selector must contain at least one non-empty matcher');
  });

  it('refuses many-to-many matches and equal label sets as Prometheus does', async () => {
    const r = await refused({ query: 'tapedeck_value - on(__name__) tapedeck_value', time: at(60) });
    expect(r).toMatchObject({ status: 422, errorType: 'execution' });
    expect(r.error).toContain('many-to-many matching not allowed');
    const same = await refused({ query: 'abs({__name__=~"up.*"})', time: at(60) });
    expect(same).toMatchObject({ status: 422, errorType: 'execution', error: 'vector cannot contain metrics with the same labelset' });
  });
});

describe('user regexes', () => {
  it('run on the linear-time engine, anchored', () => {
    const re = compileLabelRegex('(a+)+b');
    expect(re.flags).toContain('l');
    expect(re.source).toBe('^(?:(a+)+b)$');
    // The classic catastrophic case answers (and fast: the engine cannot backtrack).
    expect(re.test(`${'a'.repeat(100_000)}c`)).toBe(false);
  });

  it('refuse what RE2 lacks or reads differently, naming it', () => {
    for (const [src, what] of [['(a)\\1', 'linear time'], ['(?=a)', 'group'], ['\\pL', '\\p'], ['[[:alpha:]]', 'POSIX'], ['a{1001}', 'repeat count'], ['(?m)^a', 'group']] as const) {
      expect(() => compileLabelRegex(src), src).toThrow(what);
    }
    expect(() => compileLabelRegex('a'.repeat(SERVER_LIMITS.promqlRegexCharsMax + 1))).toThrow('promqlRegexCharsMax');
  });

  it('read (?i) as both cases, in and out of classes', () => {
    const re = compileLabelRegex('(?i)sw-[a-c]x');
    expect(['SW-AX', 'sw-bX', 'Sw-Cx'].every((s) => re.test(s))).toBe(true);
    expect(re.test('sw-dx')).toBe(false);
  });

  it('keep the server answering a hostile regex over a long label value', async () => {
    const r = await get('/api/v1/query', { query: `tapedeck_value{path=~"(/|[a-z_]+|-|[0-9]+)+(x+x+)+y"}`, time: at(60) });
    expect(r.body).toEqual({ status: 'success', data: { resultType: 'vector', result: [] } });
  });
});

describe('number formatting', () => {
  it('writes values as Prometheus does: Go strconv.FormatFloat(v, "f", -1, 64), "e" below 1e-6 and from 1e21', () => {
    // What Prometheus 2.42 answers for these (test/values-edge-prom-text.test.ts asks it).
    expect([1e21, 1.5e-7, -2.5e22, 0.1, -0, NaN, Infinity, -Infinity, 123456789012345680000, 1e-6, 5e-324].map(formatValue)).toEqual([
      '1e+21', '1.5e-07', '-2.5e+22', '0.1', '-0', 'NaN', '+Inf', '-Inf', '123456789012345680000', '0.000001', '5e-324',
    ]);
  });
});

describe('topk and bottomk among equal values', () => {
  // Prometheus keeps a heap of k samples and replaces its top only with a strictly better
  // one, so among equal values the heap's shape decides (PROMQL_DIFF_SEED=860264 in
  // test/promql-diff.test.ts showed a stable sort choosing another series). Series are taken
  // in label order: a, b, c, d.
  let tied: TestServer;
  beforeAll(async () => {
    const values: Record<string, number> = { a: 5, b: 5, c: 6, d: 1 };
    tied = await startServer([{ ts: T0_MS * 1000, updates: Object.entries(values).map(([room, v]) => [seriesToPath({ name: 'tie', labels: { room } }), v] as [string, Value]) }]);
  });
  afterAll(async () => {
    await tied.close();
  });
  const rooms = async (query: string): Promise<string[]> => {
    const r = await fetch(`${tied.url}/api/v1/query?${new URLSearchParams({ query, time: at(0) })}`);
    const body = (await r.json()) as { data: { result: Array<{ metric: { room: string } }> } };
    return body.data.result.map((x) => x.metric.room).sort();
  };

  it('keeps the sample Prometheus keeps', async () => {
    // heap [a, b]; c beats the top (a) and replaces it, Fix sinks it below b: {b, c}.
    expect(await rooms('topk(2, tie)')).toEqual(['b', 'c']);
    // For the lowest the top is the largest: heap [a, b]; c does not beat a (5); d does,
    // replaces a, and Fix sinks it below b: {b, d}.
    expect(await rooms('bottomk(2, tie)')).toEqual(['b', 'd']);
    expect(await rooms('topk(3, tie)')).toEqual(['a', 'b', 'c']);
    expect(await rooms('topk(1, tie)')).toEqual(['c']);
  });
});
