/**
 * label_replace / label_join against hostile arguments (their answers equal Prometheus' in
 * test/promql-diff.test.ts): a replacement of thousands of `$0`, or a join of thousands of
 * labels, over long label values is refused with 422 execution once a made value passes
 * promqlLabelValueCharsMax, built no further; the server answers the next query at once. And
 * Go's template expansion, case by case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_LIMITS } from '../server/limits.js';
import { expandTemplate } from '../server/promql/label-fns.js';
import { seriesToPath } from '../protocol/prom-path.js';
import { startServer, type TestServer } from './helpers/server.js';

const T_US = 1_700_000_000_000_000;
const LONG = 'x'.repeat(SERVER_LIMITS.promqlLabelValueCharsMax - 100);

describe('label_replace and label_join, hostile', () => {
  let srv: TestServer;

  beforeAll(async () => {
    const updates: Array<[string, number]> = [];
    for (let i = 0; i < 50; i++) updates.push([seriesToPath({ name: 'if_in', labels: { alias: `${LONG}${i}`, i: String(i) } }), i]);
    srv = await startServer([{ ts: T_US, updates }]);
  }, 60_000);

  afterAll(async () => {
    await srv?.close();
  });

  async function query(q: string): Promise<{ status: number; body: { status: string; errorType?: string; error?: string; data?: { result: Array<{ metric: Record<string, string> }> } } }> {
    const form = new URLSearchParams({ query: q, time: String(T_US / 1e6 + 1) });
    const res = await fetch(`${srv.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    return { status: res.status, body: (await res.json()) as never };
  }

  it('answers within the limit', async () => {
    const r = await query('label_replace(if_in, "short", "$1", "alias", "x*(\\\\d+)")');
    expect(r.status).toBe(200);
    expect(r.body.data?.result).toHaveLength(50);
    expect(new Set(r.body.data?.result.map((s) => s.metric.short))).toEqual(new Set(Array.from({ length: 50 }, (_, i) => String(i))));
    const j = await query('label_join(if_in, "both", ":", "i", "i")');
    expect(j.body.data?.result.find((s) => s.metric.i === '7')?.metric.both).toBe('7:7');
  });

  it('refuses a made value past promqlLabelValueCharsMax, and stays responsive', async () => {
    const many = '$0'.repeat(30_000);
    const started = Date.now();
    const r = await query(`label_replace(if_in, "big", "${many}", "alias", ".*")`);
    expect(r.status).toBe(422);
    expect(r.body.errorType).toBe('execution');
    expect(r.body.error).toContain('promqlLabelValueCharsMax');
    const j = await query(`label_join(if_in, "big", "-", ${Array.from({ length: 5000 }, () => '"alias"').join(', ')})`);
    expect(j.status).toBe(422);
    expect(j.body.error).toContain('promqlLabelValueCharsMax');
    const ok = await query('count(if_in)');
    expect(ok.status).toBe(200);
    // Not a timing assertion of a figure: a sanity bound far above the work (tens of ms).
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('expandTemplate, as Go regexp.ExpandString', () => {
  const m = /^(?<name>a)(b)?(c)$/.exec('ac') as RegExpExecArray;
  it.each([
    ['$1', 'a'],
    ['${1}x', 'ax'],
    ['$1x', ''], // the name "1x": no such group
    ['$$1', '$1'],
    ['$0', 'ac'],
    ['$2', ''], // did not take part
    ['$3', 'c'],
    ['$01', ''], // a leading zero makes it a name
    ['${name}-$name', 'a-a'],
    ['$', '$'],
    ['${', '${'],
    ['${1', '${1'],
    ['$-', '$-'],
    ['a$9b', 'a'],
    ['$é', ''],
  ])('%s', (template, want) => {
    expect(expandTemplate(template, m)).toBe(want);
  });
});
