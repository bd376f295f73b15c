/**
 * Names that are members of Object.prototype (`constructor`, `__proto__`, `toString`, ...)
 * as metric names, label names and label values: written to a real Prometheus 2.42 and to
 * Tapedeck by remote write, then asked of both through the same query API requests. The
 * upstream grammar's keyword lookups found Object.prototype's members for `constructor`
 * and `__proto__` (server/promql/grammar.ts), so Tapedeck refused those metric names as a
 * parse error where Prometheus answers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQuery } from '../server/promql/parse.js';
import { wrappedSpecializers } from '../server/promql/grammar.js';
import { remoteWrite, startReceiver, type PromSeries } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';
import { recordingServer } from './helpers/recording-server.js';

const NAMES = ['constructor', '__proto__', 'Constructor', '__PROTO__', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf', 'prototype'];
const T0 = (Math.floor(Date.now() / 60_000) - 30) * 60_000;

/** Every name as a metric, with a label of each name whose value is a name too; a sample every 15 s for 10 minutes. */
function seriesOf(): PromSeries[] {
  return NAMES.flatMap((name, i) => [0, 1].map((k) => ({
    labels: { __name__: name, [NAMES[(i + 1) % NAMES.length] as string]: NAMES[(i + k) % NAMES.length] as string, k: String(k) },
    samples: Array.from({ length: 41 }, (_, j): [number, number] => [T0 + j * 15_000, (i + 1) * 100 + j * (k + 1)]),
  })));
}

const QUERIES = [
  ...NAMES,
  ...NAMES.map((n) => `rate(${n}[5m])`),
  ...NAMES.map((n) => `sum by (${NAMES[(NAMES.indexOf(n) + 1) % NAMES.length]}) (${n})`),
  ...NAMES.map((n) => `${n}{k="1"} offset 1m`),
  '{__name__=~"constructor|__proto__|toString"}',
  'count by (__name__) ({__name__=~".+"})',
  'constructor + on (k) group_left __proto__',
  'max_over_time(__proto__[2m]) > bool 150',
  // Labels a series does not have, named like Object.prototype's members.
  'sum by (constructor) (toString)',
  'sum by (__proto__, toString) ({__name__=~".+"})',
  'sum without (constructor, __proto__) ({__name__=~".+"})',
  'max by (hasOwnProperty) (valueOf)',
  'topk by (constructor) (1, {__name__=~".+"})',
  'toString + on (constructor, k) valueOf',
  'toString + ignoring (__proto__, toString, valueOf) valueOf',
  'label_replace(toString, "constructor", "$1", "k", "(.*)")',
  'label_replace(toString, "x", "<$1>", "constructor", "(.*)")',
  'label_replace(toString, "__proto__", "p$1", "__proto__", "(.*)")',
  'label_join(valueOf, "constructor", "-", "__proto__", "k", "toString")',
  'absent(nothing{constructor="a", __proto__="b"})',
  'absent_over_time(nothing{toString="a"}[1m])',
  '{__name__=~".+", constructor=""}',
  '{__name__=~".+", __proto__!=""}',
  'count by (constructor) ({__name__=~".+", constructor=~".*"})',
];

describe('Object.prototype member names in the grammar', () => {
  it('the grammar wraps both of its keyword lookups, and parses each name as a metric name', () => {
    expect(wrappedSpecializers).toBe(2);
    for (const n of NAMES) expect(parseQuery(n), n).toMatchObject({ kind: 'vector' });
    for (const n of NAMES) expect(parseQuery(`rate(${n}[5m] offset 1m)`), n).toMatchObject({ kind: 'range_fn' });
  });
});

interface Answer { status: string; data?: unknown; errorType?: string | undefined }

async function ask(base: string, path: string, params: Record<string, string>): Promise<Answer> {
  const r = await fetch(`${base}${path}?${new URLSearchParams(params)}`);
  const j = (await r.json()) as Answer;
  // Series come in an order neither side promises: sort them by their labels.
  const d = j.data as { result?: Array<{ metric: Record<string, string> }> } | unknown[] | undefined;
  const key = (m: Record<string, string>): string => JSON.stringify(Object.entries(m).sort());
  if (d && !Array.isArray(d) && Array.isArray(d.result)) d.result.sort((a, b) => (key(a.metric) < key(b.metric) ? -1 : 1));
  if (Array.isArray(d)) d.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return { status: j.status, data: j.data, errorType: j.errorType };
}

describe('Object.prototype member names, Tapedeck against Prometheus 2.42', () => {
  let prom: RunningPrometheus;
  let tapedeck: Awaited<ReturnType<typeof recordingServer>>;

  // Per test: recordingServer's directory goes after each test (test/helpers/tmp.ts).
  beforeEach(async () => {
    [prom, tapedeck] = await Promise.all([startReceiver(), recordingServer({ sources: [{ name: 'prom', type: 'remote_write' }] })]);
    const series = seriesOf();
    await remoteWrite(`${prom.url}/api/v1/write`, series);
    await remoteWrite(`${tapedeck.url}/api/v1/write?source=prom&ack=durable`, series);
  }, 120_000);

  afterEach(async () => {
    await Promise.all([prom?.stop(), tapedeck?.close()]);
  });

  it('answers every query with the same series, times and values', async () => {
    const endS = (T0 + 600_000) / 1000;
    for (const query of QUERIES) {
      for (const [path, params] of [
        ['/api/v1/query', { query, time: String(endS - 30) }],
        ['/api/v1/query_range', { query, start: String(endS - 540), end: String(endS), step: '30' }],
      ] as const) {
        const [want, got] = await Promise.all([ask(prom.url, path, params), ask(tapedeck.url, path, params)]);
        expect(want.status, `${path} ${query}: Prometheus ${JSON.stringify(want)}`).toBe('success');
        expect(got, `${path} ${query}`).toEqual(want);
      }
    }
  }, 120_000);

  it('lists the same names, label names and series', async () => {
    const range = { start: String(T0 / 1000 - 60), end: String(T0 / 1000 + 700) };
    for (const [path, params] of [
      ['/api/v1/labels', range],
      ['/api/v1/label/__name__/values', range],
      ...NAMES.map((n) => [`/api/v1/label/${n}/values`, range] as const),
      ...NAMES.map((n) => ['/api/v1/series', { 'match[]': n, ...range }] as const),
    ] as const) {
      const [want, got] = await Promise.all([ask(prom.url, path, params), ask(tapedeck.url, path, params)]);
      expect(want.status, `${path} ${JSON.stringify(params)}`).toBe('success');
      expect(got, `${path} ${JSON.stringify(params)}`).toEqual(want);
    }
  }, 120_000);
});
