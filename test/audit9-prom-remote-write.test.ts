/**
 * Remote write requests at the edges of what a receiver takes, sent to the real Prometheus
 * 2.42 (its remote-write receiver) and to Tapedeck's remote_write source: names and label
 * values Prometheus' data model does not allow, empty values, special floats, timestamps
 * negative, repeated or out of order within a series, series without samples or without a
 * name. Both must take or refuse each request the same way (2xx or 4xx), but for the three
 * Tapedeck refuses on purpose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../server/main.js';
import { encodeWriteRequest, snappyLiteral, startReceiver, type PromSeries } from './helpers/promql-peers.js';
import type { RunningPrometheus } from './helpers/prometheus.js';
import { recordingServer } from './helpers/recording-server.js';

const T = Date.now() - 60_000;

const REQUESTS: Array<[string, PromSeries[]]> = [
  ['plain', [{ labels: { __name__: 'a', x: '1' }, samples: [[T, 1]] }]],
  ['a metric name with a dash', [{ labels: { __name__: 'a-b' }, samples: [[T, 1]] }]],
  ['a metric name starting with a digit', [{ labels: { __name__: '1a' }, samples: [[T, 1]] }]],
  ['a label name with a dash', [{ labels: { __name__: 'b', 'x-y': '1' }, samples: [[T, 1]] }]],
  ['a label name starting with a digit', [{ labels: { __name__: 'b', '1x': '1' }, samples: [[T, 1]] }]],
  ['an empty label value', [{ labels: { __name__: 'c', x: '' }, samples: [[T, 1]] }]],
  ['a reserved label name', [{ labels: { __name__: 'c', __x: '1' }, samples: [[T, 1]] }]],
  ['a series without samples', [{ labels: { __name__: 'd' }, samples: [] }, { labels: { __name__: 'd2' }, samples: [[T, 1]] }]],
  ['special values', [{ labels: { __name__: 'e', k: 'nan' }, samples: [[T, NaN]] }, { labels: { __name__: 'e', k: 'inf' }, samples: [[T, Infinity]] }, { labels: { __name__: 'e', k: 'stale' }, samples: [[T, 'stale']] }]],
  ['a negative timestamp', [{ labels: { __name__: 'f' }, samples: [[-1000, 1]] }]],
  ['timestamp 0', [{ labels: { __name__: 'f0' }, samples: [[0, 1]] }]],
  ['samples out of order within a series', [{ labels: { __name__: 'g' }, samples: [[T + 2000, 1], [T + 1000, 2]] }]],
  ['one timestamp twice, one value', [{ labels: { __name__: 'i' }, samples: [[T + 4000, 1], [T + 4000, 1]] }]],
  ['a value label of 2 000 characters', [{ labels: { __name__: 'j', x: 'v'.repeat(2000) }, samples: [[T + 5000, 1]] }]],
  ['a label value that is not UTF-8-clean text (NUL)', [{ labels: { __name__: 'k', x: 'a\u0000b' }, samples: [[T + 6000, 1]] }]],
];

/**
 * Refused here and taken by Prometheus 2.42, as docs/prometheus.md decides: a series without a
 * name has no path (/prom/<name>/...), and two different values of a series at one time
 * would need one of them dropped (Prometheus keeps the first silently).
 */
const REFUSED_HERE: Array<[string, PromSeries[]]> = [
  ['an empty metric name', [{ labels: { __name__: '', x: '1' }, samples: [[T, 1]] }]],
  ['no metric name', [{ labels: { x: '1' }, samples: [[T, 1]] }]],
  ['one timestamp twice, two values', [{ labels: { __name__: 'h' }, samples: [[T + 3000, 1], [T + 3000, 2]] }]],
];

let prom: RunningPrometheus;
let tapedeck: RunningServer & { dir: string };

beforeAll(async () => {
  [prom, tapedeck] = await Promise.all([startReceiver(), recordingServer({ sources: [{ name: 'rw', type: 'remote_write' }] })]);
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), tapedeck?.close()]);
});

async function post(base: string, series: PromSeries[]): Promise<{ status: number; text: string }> {
  const r = await fetch(`${base}/api/v1/write`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    body: snappyLiteral(encodeWriteRequest(series)),
  });
  return { status: r.status, text: (await r.text()).slice(0, 300) };
}

describe('remote write at the edges, Tapedeck against Prometheus 2.42', () => {
  it('takes or refuses each request as Prometheus does', async () => {
    const failures: string[] = [];
    for (const [what, series] of REQUESTS) {
      const [want, got] = await Promise.all([post(prom.url, series), post(tapedeck.url, series)]);
      if (Math.floor(want.status / 100) !== Math.floor(got.status / 100)) failures.push(`${what}: ${got.status} ${got.text}; Prometheus ${want.status} ${want.text}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('refuses what docs/prometheus.md says it refuses, with 400', async () => {
    for (const [what, series] of REFUSED_HERE) expect((await post(tapedeck.url, series)).status, what).toBe(400);
  });
});
