/**
 * Prometheus remote write into Tapedeck: the decoder against the generated protobuf code,
 * the status semantics on hostile bodies through a real server, and end to end with a real
 * Prometheus whose remote_write points at Tapedeck while it scrapes a real target.
 */
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import fc from 'fast-check';
import snappy from 'snappy';
import { create, toBinary } from '@bufbuild/protobuf';
import { WriteRequestSchema, type WriteRequest } from '../protocol/prompb/gen/remote_pb.js';
import { decodeLabels, decodeWriteRequest } from '../protocol/prompb/write-request.js';
import { pathToSeries, seriesToPath } from '../protocol/prom-path.js';
import type { Batch } from '../protocol/value.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { slotUs } from '../server/sources/remote-write.js';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import { recordingServer } from './helpers/recording-server.js';
import { startPrometheus, type RunningPrometheus } from './helpers/prometheus.js';
import { until, waitFor } from './helpers/until.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`prom-remote-write property seed ${seed} (FC_SEED=${seed} replays)`);

/**
 * Prometheus' stale marker, the NaN with bits 0x7ff0000000000002. A JavaScript number does
 * not keep a NaN's payload through the protobuf encoder, so it is written by hand: the
 * sample is encoded with STALE as its value and those 8 bytes are then overwritten.
 */
const STALE = 1.25e-300;
const STALE_BYTES = Buffer.from([0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f]);
function withStaleMarkers(bytes: Uint8Array): Uint8Array {
  const b = Buffer.from(bytes);
  const probe = Buffer.alloc(8);
  probe.writeDoubleLE(STALE);
  for (let at = b.indexOf(probe); at >= 0; at = b.indexOf(probe, at + 8)) STALE_BYTES.copy(b, at);
  return b;
}

interface SeriesIn {
  labels: Record<string, string> | Array<[string, string]>;
  samples: Array<[number, number]>;
  histograms?: number;
  exemplars?: number;
}

/** A WriteRequest encoded by the code generated from the upstream .proto. */
function encode(series: SeriesIn[]): Uint8Array {
  const req: WriteRequest = create(WriteRequestSchema, {
    timeseries: series.map((s) => ({
      labels: (Array.isArray(s.labels) ? s.labels : Object.entries(s.labels)).map(([name, value]) => ({ name, value })),
      samples: s.samples.map(([tsMs, value]) => ({ value, timestamp: BigInt(tsMs) })),
      histograms: Array.from({ length: s.histograms ?? 0 }, () => ({ sum: 1, timestamp: 1n })),
      exemplars: Array.from({ length: s.exemplars ?? 0 }, () => ({ value: 1, timestamp: 1n, labels: [{ name: 'trace_id', value: 'abc' }] })),
    })),
  });
  return withStaleMarkers(toBinary(WriteRequestSchema, req));
}

const compress = (b: Uint8Array): Buffer => snappy.compressSync(Buffer.from(b));

let server: (RunningServer & { dir: string }) | undefined;
let prom: RunningPrometheus | undefined;
afterEach(async () => {
  await prom?.stop();
  prom = undefined;
  await server?.close();
  server = undefined;
});

async function rwServer(source: Record<string, unknown> = {}): Promise<RunningServer & { dir: string }> {
  server = await recordingServer({ sources: [{ name: 'prom', type: 'remote_write', required: false, ...source }] });
  return server;
}

async function post(body: Uint8Array, query = ''): Promise<{ status: number; body: { error?: { code: string; message: string } } | undefined; retryAfter: string | undefined }> {
  const r = await (server as RunningServer).app.inject({
    method: 'POST', url: `/api/v1/write${query}`, payload: Buffer.from(body),
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
  });
  return { status: r.statusCode, body: r.body === '' ? undefined : (JSON.parse(r.body) as { error?: { code: string; message: string } }), retryAfter: r.headers['retry-after'] as string | undefined };
}

async function recorded(s: RunningServer): Promise<Batch[]> {
  await s.archive.writer?.flush();
  const c = s.archive.cursor();
  await c.seek('beginning');
  const out: Batch[] = [];
  for (let b = await c.next(); b; b = await c.next()) out.push(b);
  return out;
}

describe('readiness', () => {
  it('does not wait on a remote_write source unless its entry says required (like push)', async () => {
    server = await recordingServer({ sources: [{ name: 'prom', type: 'remote_write' }] });
    expect((await server.app.inject({ url: '/ready' })).statusCode).toBe(200);
    await server.close();
    server = await recordingServer({ sources: [{ name: 'prom', type: 'remote_write', required: true }] });
    expect((await server.app.inject({ url: '/ready' })).statusCode).toBe(503);
  });
});

describe('WriteRequest decoder', () => {
  const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/);
  const series = fc.record({
    labels: fc.array(fc.tuple(labelName, fc.string({ maxLength: 12, unit: 'grapheme' })), { maxLength: 6 }),
    samples: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 45 }), fc.double()), { maxLength: 5 }),
  });

  it('reads what the generated code writes: labels, samples, timestamps, every double (seeded)', () => {
    fc.assert(fc.property(fc.array(series, { maxLength: 8 }), (input) => {
      const bytes = encode(input);
      const view = decodeWriteRequest(bytes, { samplesMax: 1e6, labelsPerSeriesMax: 128 });
      expect(view.series.length).toBe(input.length);
      input.forEach((s, i) => {
        const got = view.series[i]!;
        expect(decodeLabels(bytes, got.labelSpans)).toEqual(s.labels);
        expect(got.tsMs).toEqual(s.samples.map(([t]) => t));
        got.values.forEach((v, j) => expect(Object.is(v, s.samples[j]![1])).toBe(true));
      });
    }), { seed, numRuns: 300 });
  });

  it('gives the same key to the same label set and different keys to different ones', () => {
    const bytes = encode([{ labels: { __name__: 'a', x: '1' }, samples: [] }, { labels: { __name__: 'a', x: '1' }, samples: [] }, { labels: { __name__: 'a', x: '10' }, samples: [] }, { labels: { __name__: 'a', x1: '' }, samples: [] }]);
    const [a, b, c, d] = decodeWriteRequest(bytes, { samplesMax: 10, labelsPerSeriesMax: 10 }).series;
    expect(a!.key).toBe(b!.key);
    expect(a!.key).not.toBe(c!.key);
    expect(a!.key).not.toBe(d!.key);
  });

  it('decodes the stale marker as null and other NaNs as NaN', () => {
    const view = decodeWriteRequest(encode([{ labels: { __name__: 'up' }, samples: [[1, STALE], [2, NaN], [3, -0]] }]), { samplesMax: 10, labelsPerSeriesMax: 10 });
    expect(view.series[0]!.values[0]).toBeNull();
    expect(view.series[0]!.values[1]).toBeNaN();
    expect(Object.is(view.series[0]!.values[2], -0)).toBe(true);
  });

  it('refuses every truncation of a request and never reads past its end', () => {
    const bytes = encode([{ labels: { __name__: 'node_load1', instance: 'h:9100' }, samples: [[1_700_000_000_000, 0.5]] }]);
    for (let n = 1; n < bytes.length; n++) {
      let ok = true;
      try {
        const v = decodeWriteRequest(bytes.subarray(0, n), { samplesMax: 10, labelsPerSeriesMax: 10 });
        for (const s of v.series) decodeLabels(bytes.subarray(0, n), s.labelSpans);
      } catch (err) {
        ok = false;
        expect((err as { code?: string }).code).toBe('TPD_BAD_REMOTE_WRITE');
      }
      // The request is one TimeSeries field: every proper prefix cuts it.
      expect(ok).toBe(false);
    }
  });
});

describe('slots in the archive timeline', () => {
  it('stamps a batch at its millisecond, or the next free µs of it, and refuses an older millisecond', () => {
    expect(slotUs(5, 0)).toBe(5000);
    expect(slotUs(5, 4999)).toBe(5000);
    expect(slotUs(5, 5000)).toBe(5001);
    expect(slotUs(5, 5998)).toBe(5999);
    expect(slotUs(5, 5999)).toBeUndefined();
    expect(slotUs(5, 6000)).toBeUndefined();
  });
});

describe('POST /api/v1/write', () => {
  const T0 = 1_700_000_000_000;

  it('records one batch per timestamp in time order, each series at its path, and answers 204', async () => {
    const s = await rwServer({ ack: 'memory' });
    const body = compress(encode([
      { labels: { __name__: 'ifHCInOctets', ifName: 'Gi0/1', instance: 'sw1' }, samples: [[T0 + 2000, 20], [T0, 10]] },
      { labels: { job: 'snmp', __name__: 'up', empty: '' }, samples: [[T0, 1], [T0 + 1000, 1]] },
    ]));
    const r = await post(body);
    expect(r.status).toBe(204);
    const got = await recorded(s);
    const a = seriesToPath({ name: 'ifHCInOctets', labels: { ifName: 'Gi0/1', instance: 'sw1' } });
    expect(a).toBe('/prom/ifHCInOctets/ifName=Gi0%2F1/instance=sw1');
    expect(got).toEqual([
      { ts: T0 * 1000, updates: [[a, 10], ['/prom/up/job=snmp', 1]] },
      { ts: (T0 + 1000) * 1000, updates: [['/prom/up/job=snmp', 1]] },
      { ts: (T0 + 2000) * 1000, updates: [[a, 20]] },
    ]);
    expect(pathToSeries(a)).toEqual({ name: 'ifHCInOctets', labels: { ifName: 'Gi0/1', instance: 'sw1' } });
  });

  it('records the stale marker as null and a NaN sample as NaN', async () => {
    const s = await rwServer();
    expect((await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0, NaN], [T0 + 1, STALE]] }])))).status).toBe(204);
    const got = await recorded(s);
    expect(got.map((b) => b.updates[0]![1])).toEqual([NaN, null]);
  });

  it('answers 204 to an empty request and records nothing', async () => {
    const s = await rwServer();
    expect((await post(compress(new Uint8Array(0)))).status).toBe(204);
    expect((await post(compress(encode([{ labels: { __name__: 'a' }, samples: [] }])))).status).toBe(204);
    expect(await recorded(s)).toEqual([]);
  });

  /** A valid series: requests that also hold a bad one are refused whole, this one included. */
  const GOOD: SeriesIn = { labels: { __name__: 'good' }, samples: [[T0 - 1, 1]] };
  const refusals: Array<[string, () => Uint8Array, string, RegExp]> = [
    ['corrupt snappy', () => Buffer.from([0x10, 0xff, 0xff, 0xff, 0x01, 0x02]), 'TPD_BAD_REMOTE_WRITE', /snappy/],
    ['no snappy preamble', () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'TPD_BAD_REMOTE_WRITE', /snappy/],
    ['a snappy block declaring 4 GiB (a decompression bomb)', () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), 'TPD_BAD_REMOTE_WRITE', /remoteWriteDecodedBytesMax/],
    ['uncompressed protobuf', () => encode([{ labels: { __name__: 'a' }, samples: [[T0, 1]] }]), 'TPD_BAD_REMOTE_WRITE', /snappy/],
    ['truncated protobuf', () => compress(encode([{ labels: { __name__: 'a', b: 'c' }, samples: [[T0, 1]] }]).subarray(0, 9)), 'TPD_BAD_REMOTE_WRITE', /not a WriteRequest/],
    ['garbage protobuf (wire type 7)', () => compress(Buffer.from([0x0f, 0x01, 0x02])), 'TPD_BAD_REMOTE_WRITE', /wire type/],
    ['a series without __name__', () => compress(encode([GOOD, { labels: { job: 'x' }, samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /no __name__/],
    ['an empty __name__', () => compress(encode([GOOD, { labels: { __name__: '' }, samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /no __name__/],
    ['a duplicate label', () => compress(encode([GOOD, { labels: [['__name__', 'a'], ['x', '1'], ['x', '2']], samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /label "x" twice/],
    ['an empty label name', () => compress(encode([GOOD, { labels: [['__name__', 'a'], ['', '1']], samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /empty name/],
    [`${SERVER_LIMITS.remoteWriteLabelsPerSeriesMax + 1} labels`, () => compress(encode([GOOD, { labels: Object.fromEntries([['__name__', 'a'], ...Array.from({ length: SERVER_LIMITS.remoteWriteLabelsPerSeriesMax }, (_, i) => [`l${i}`, 'v'])]), samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /remoteWriteLabelsPerSeriesMax/],
    ['a label value longer than a path may be', () => compress(encode([GOOD, { labels: { __name__: 'a', x: 'v'.repeat(5000) }, samples: [[T0, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /pathCharsMax/],
    ['a native histogram', () => compress(encode([GOOD, { labels: { __name__: 'h' }, samples: [], histograms: 1 }])), 'TPD_BAD_REMOTE_WRITE', /native histograms/],
    ['two values of one series at one time', () => compress(encode([GOOD, { labels: { __name__: 'a' }, samples: [[T0, 1]] }, { labels: { __name__: 'a' }, samples: [[T0, 2]] }])), 'TPD_REMOTE_WRITE_OUT_OF_ORDER', /\/prom\/a has two different samples/],
    ['a negative timestamp', () => compress(encode([GOOD, { labels: { __name__: 'a' }, samples: [[-1, 1]] }])), 'TPD_BAD_REMOTE_WRITE', /out of range/],
  ];
  for (const [what, body, code, message] of refusals) {
    it(`refuses ${what} with 400 ${code} and records nothing of the request`, async () => {
      const s = await rwServer();
      const r = await post(body());
      expect(r.status).toBe(400);
      expect(r.body?.error?.code).toBe(code);
      expect(r.body?.error?.message).toMatch(message);
      expect(r.retryAfter).toBeUndefined();
      expect(await recorded(s)).toEqual([]);
    });
  }

  it('refuses invalid UTF-8 in a label value', async () => {
    const s = await rwServer();
    const bytes = encode([{ labels: { __name__: 'a', x: 'ab' }, samples: [[T0, 1]] }]);
    const at = Buffer.from(bytes).indexOf(Buffer.from('ab'));
    bytes[at] = 0xff;
    const r = await post(compress(bytes));
    expect([r.status, r.body?.error?.code]).toEqual([400, 'TPD_BAD_REMOTE_WRITE']);
    expect(r.body?.error?.message).toMatch(/UTF-8/);
    expect(await recorded(s)).toEqual([]);
  });

  it('keeps duplicate identical samples once and ignores exemplars', async () => {
    const s = await rwServer();
    const r = await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0, 1]], exemplars: 2 }, { labels: { __name__: 'a' }, samples: [[T0, 1]] }])));
    expect(r.status).toBe(204);
    expect(await recorded(s)).toEqual([{ ts: T0 * 1000, updates: [['/prom/a', 1]] }]);
  });

  it('refuses a request older than the archive end naming the series, and records the next scrape\'s samples in the same ms after it', async () => {
    const s = await rwServer();
    expect((await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0 + 10, 1]] }])))).status).toBe(204);
    const old = await post(compress(encode([{ labels: { __name__: 'b' }, samples: [[T0 + 9, 2], [T0 + 20, 3]] }])));
    expect(old.status).toBe(400);
    expect(old.body?.error?.code).toBe('TPD_REMOTE_WRITE_OUT_OF_ORDER');
    expect(old.body?.error?.message).toContain('/prom/b');
    // The same millisecond again (another request of the same scrape): the next µs of that ms.
    expect((await post(compress(encode([{ labels: { __name__: 'c' }, samples: [[T0 + 10, 4]] }])))).status).toBe(204);
    const got = await recorded(s);
    expect(got).toEqual([
      { ts: (T0 + 10) * 1000, updates: [['/prom/a', 1]] },
      { ts: (T0 + 10) * 1000 + 1, updates: [['/prom/c', 4]] },
    ]);
    expect(got.map((b) => Math.floor(b.ts / 1000))).toEqual([T0 + 10, T0 + 10]);
  });

  it('answers 204 again to the retry of a request it recorded, without recording it twice', async () => {
    const s = await rwServer();
    const body = compress(encode([{ labels: { __name__: 'a' }, samples: [[T0, 1], [T0 + 1, 2]] }]));
    expect((await post(body)).status).toBe(204);
    expect((await post(body)).status).toBe(204);
    expect(await recorded(s)).toHaveLength(2);
  });

  it('takes ?ack=memory and ?ack=durable and refuses another ack', async () => {
    await rwServer();
    expect((await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0, 1]] }])), '?ack=memory')).status).toBe(204);
    expect((await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0 + 1, 1]] }])), '?ack=durable')).status).toBe(204);
    const r = await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0 + 2, 1]] }])), '?ack=never');
    expect([r.status, r.body?.error?.code]).toEqual([400, 'TPD_BAD_ARGUMENT']);
  });

  it('answers 415 to a JSON body or no body at all', async () => {
    const s = await rwServer();
    for (const init of [{ body: '{"timeseries":[]}', headers: { 'content-type': 'application/json' } }, {}]) {
      const r = await fetch(`${s.url}/api/v1/write`, { method: 'POST', ...init });
      expect(r.status).toBe(415);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TPD_UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('answers 404 TPD_NO_REMOTE_WRITE_SOURCE without a remote_write source', async () => {
    server = await recordingServer();
    const r = await post(compress(encode([{ labels: { __name__: 'a' }, samples: [[T0, 1]] }])));
    expect([r.status, r.body?.error?.code]).toEqual([404, 'TPD_NO_REMOTE_WRITE_SOURCE']);
  });

  it('records nothing of a body cut off by a client that disconnects, and goes on serving', async () => {
    const s = await rwServer();
    const body = compress(encode(Array.from({ length: 2000 }, (_, i) => ({ labels: { __name__: 'm', i: String(i) }, samples: [[T0, i]] }))));
    const url = new URL(s.url);
    await new Promise<void>((resolve) => {
      const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: '/api/v1/write', headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } });
      req.on('error', () => resolve());
      req.write(body.subarray(0, body.length >> 1), () => {
        req.destroy();
        resolve();
      });
    });
    const ok = await fetch(`${s.url}/api/v1/write`, { method: 'POST', body: compress(encode([{ labels: { __name__: 'after' }, samples: [[T0, 1]] }])), headers: { 'content-type': 'application/x-protobuf' } });
    expect(ok.status).toBe(204);
    expect(await recorded(s)).toEqual([{ ts: T0 * 1000, updates: [['/prom/after', 1]] }]);
  });
});

/** A tiny exposition endpoint with known values: each scrape moves the counter on by one. */
async function expositionServer(): Promise<{ url: string; scrapes: () => number; close(): Promise<void> }> {
  let n = 0;
  const srv = http.createServer((_req, res) => {
    n++;
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end([
      '# HELP tpd_test_total A counter moved on by each scrape.',
      '# TYPE tpd_test_total counter',
      `tpd_test_total{port="Gi0/1"} ${n}`,
      `tpd_test_total{port="Gi0/2"} ${n * 0.1}`,
      '# TYPE tpd_test_odd gauge',
      'tpd_test_odd{v="quote\\"back\\\\slash\\nnewline"} +Inf',
      'tpd_test_odd{v="nan"} NaN',
      'tpd_test_odd{v="neg"} -1e-300',
      '',
    ].join('\n'));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  return { url: `127.0.0.1:${port}`, scrapes: () => n, close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }) };
}

/** A sample value as Prometheus' JSON API writes it. */
function promValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

describe('remote write, property', () => {
  it('records every sample of in-order requests at its series path and millisecond, hostile labels and values included (seeded)', { timeout: 120_000 }, async () => {
    const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,6}$/).filter((n) => n !== '__name__');
    const hostile = fc.oneof(fc.string({ minLength: 1, maxLength: 10, unit: 'grapheme' }), fc.constantFrom('a/b', 'x=y', '%41', '*', '{a,b}', 'tab\there', 'nl\nx', '..', 'é✓'));
    const seriesArb = fc.record({ name: hostile, labels: fc.dictionary(labelName, hostile, { maxKeys: 4 }) });
    const value = fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0));
    const requestArb = fc.array(fc.record({ series: fc.integer({ min: 0, max: 5 }), dt: fc.integer({ min: 0, max: 3 }), value }), { minLength: 1, maxLength: 12 });
    await fc.assert(fc.asyncProperty(fc.uniqueArray(seriesArb, { minLength: 1, maxLength: 6, selector: (x) => seriesToPath(x) }), fc.array(requestArb, { minLength: 1, maxLength: 5 }), async (series, requests) => {
      const s = await rwServer({ ack: 'memory' });
      try {
        const want = new Map<string, Array<[number, number]>>();
        let t = 1_700_000_000_000;
        for (const req of requests) {
          // Each request starts at or after the previous one's last millisecond (in order, like one shard).
          const samples = new Map<string, Map<number, number>>();
          for (const x of req) {
            t += x.dt;
            const ser = series[x.series % series.length] as { name: string; labels: Record<string, string> };
            const path = seriesToPath(ser);
            if (!samples.has(path)) samples.set(path, new Map());
            samples.get(path)?.set(t, x.value);
          }
          const body: SeriesIn[] = [];
          for (const ser of series) {
            const m = samples.get(seriesToPath(ser));
            if (m) body.push({ labels: { ...ser.labels, __name__: ser.name }, samples: [...m.entries()] });
          }
          const r = await post(compress(encode(body)));
          expect(r.status, JSON.stringify(r.body)).toBe(204);
          for (const [path, m] of samples) for (const [ms, v] of m) {
            if (!want.has(path)) want.set(path, []);
            want.get(path)?.push([ms, v]);
          }
        }
        const got = new Map<string, Array<[number, number]>>();
        let lastUs = 0;
        for (const b of await recorded(s)) {
          expect(b.ts).toBeGreaterThan(lastUs);
          lastUs = b.ts;
          for (const [p, v] of b.updates) {
            if (!got.has(p)) got.set(p, []);
            got.get(p)?.push([Math.floor(b.ts / 1000), v as number]);
          }
        }
        for (const samples of want.values()) samples.sort((a, b) => a[0] - b[0]);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [p, samples] of want) {
          const mine = got.get(p) ?? [];
          expect(mine.map((x) => x[0]), p).toEqual(samples.map((x) => x[0]));
          mine.forEach(([, v], i) => expect(Object.is(v, samples[i]?.[1]), `${p}[${i}]`).toBe(true));
          expect(pathToSeries(p)).toBeDefined();
        }
      } finally {
        await s.close();
        server = undefined;
      }
    }), { seed, numRuns: 12 });
  });
});

describe('with a real Prometheus', () => {
  it('records what Prometheus scraped, sample for sample, at the same millisecond, through remote_write', { timeout: 120_000 }, async () => {
    const s = await rwServer();
    const expo = await expositionServer();
    try {
      prom = await startPrometheus([
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: expo',
        '    scrape_interval: 1s',
        '    static_configs:',
        `      - targets: ['${expo.url}']`,
        'remote_write:',
        `  - url: ${s.url}/api/v1/write`,
        '    queue_config: { min_shards: 1, max_shards: 1, max_samples_per_send: 7, batch_send_deadline: 1s }',
        '',
      ].join('\n'));
      // Enough scrapes recorded that several requests split a scrape (7 samples per send).
      const counter = seriesToPath({ name: 'tpd_test_total', labels: { instance: expo.url, job: 'expo', port: 'Gi0/1' } });
      await until(() => (s.recorder?.latest.get(counter) as number | undefined ?? 0) >= 6, 90_000, `6 scrapes of ${counter} in Tapedeck (Prometheus logs: ${prom?.logs().slice(-500) ?? ''})`);
      const batches = await recorded(s);
      // Everything before the last recorded millisecond is complete (one shard sends in order).
      const cutMs = Math.floor((batches.at(-1) as Batch).ts / 1000) - 1;
      const ours = new Map<string, Array<[number, number]>>();
      for (const b of batches) {
        const ms = Math.floor(b.ts / 1000);
        if (ms > cutMs) continue;
        for (const [p, v] of b.updates) {
          expect(typeof v).toBe('number'); // no stale markers: the target never went away
          if (!ours.has(p)) ours.set(p, []);
          ours.get(p)?.push([ms, v as number]);
        }
      }
      const q = new URLSearchParams({ query: '{job="expo"}[1h]', time: (cutMs / 1000).toFixed(3) });
      const answer = await (await fetch(`${prom.url}/api/v1/query?${q.toString()}`)).json() as { status: string; data: { resultType: string; result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } };
      expect(answer.status).toBe('success');
      const theirs = new Map<string, Array<[number, number]>>();
      for (const r of answer.data.result) {
        const { __name__: name, ...labels } = r.metric;
        theirs.set(seriesToPath({ name: name as string, labels }), r.values.map(([t, v]) => [Math.round(t * 1000), promValue(v)]));
      }
      // Prometheus' own scrape series (up, scrape_duration_seconds, ...) come along too.
      expect([...theirs.keys()].sort()).toEqual([...ours.keys()].sort());
      expect(theirs.size).toBeGreaterThanOrEqual(5 + 5);
      for (const [p, samples] of theirs) {
        const mine = ours.get(p) ?? [];
        expect(mine.length, p).toBe(samples.length);
        samples.forEach(([t, v], i) => {
          expect(mine[i]?.[0], `${p} sample ${i} time`).toBe(t);
          expect(Object.is(mine[i]?.[1], v), `${p} sample ${i}: ${String(mine[i]?.[1])} vs ${String(v)}`).toBe(true);
        });
      }
      const odd = seriesToPath({ name: 'tpd_test_odd', labels: { instance: expo.url, job: 'expo', v: 'quote"back\\slash\nnewline' } });
      expect(odd).toContain('/v=quote"back\\slash%0Anewline');
      expect(ours.get(odd)?.[0]?.[1]).toBe(Infinity);
      // The target goes away: Prometheus writes its stale markers, Tapedeck records null.
      await expo.close();
      const up = seriesToPath({ name: 'up', labels: { instance: expo.url, job: 'expo' } });
      await until(() => s.recorder?.latest.get(counter) === null && s.recorder.latest.get(up) === 0, 60_000, `${counter} stale (null) and up = 0 in Tapedeck`);
    } finally {
      await prom?.stop();
      prom = undefined;
      await expo.close();
    }
  });
});

describe('on a full disk (a real 4 MiB tmpfs)', () => {
  const tmpfs = useTmpfs('tapedeck-rw-tmpfs-', 'remote-write disk-full test');

  /** A request of `times` timestamps from `t0`, `seriesN` series each, values that do not compress. */
  function request(t0: number, times: number, seriesN: number): Buffer {
    return compress(encode(Array.from({ length: seriesN }, (_, i) => ({
      labels: { __name__: 'octets', port: String(i) },
      samples: Array.from({ length: times }, (_, k): [number, number] => [t0 + k, Math.sin(i * 7919 + k) * 1e9]),
    }))));
  }

  it('answers 507 with Retry-After while the disk is full, and the retries record every sample exactly once', async (ctx: TestContext) => {
    if (!tmpfs.mounted) ctx.skip();
    const config = resolveConfig({
      archive_directory: join(tmpfs.dir, 'archive'),
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'prom', type: 'remote_write', required: false }],
    });
    server = { ...(await startServer(config, { logger: pino({ level: 'silent' }) })), dir: join(tmpfs.dir, 'archive') };
    server.archive.writer?.setDiskFullLimits({ retryMs: 10, retryMaxMs: 40, bufferBytesMax: 64 * 1024, ackWaitMs: 200 });
    const T0 = 1_700_000_000_000;
    expect((await post(request(T0, 5, 10))).status).toBe(204);
    const filler = await fillDisk(tmpfs.dir);
    // Recorded but not durable: 507, and Prometheus will retry.
    const first = request(T0 + 100, 50, 100);
    let r = await post(first);
    expect(r.status).toBe(507);
    expect(r.body?.error?.code).toBe('TPD_DISK_FULL');
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    // The disk is known full now: a large request is cut short by the writer's buffer limit.
    const second = request(T0 + 1000, 200, 200);
    r = await post(second);
    expect(r.status).toBe(507);
    await rm(filler);
    // Prometheus retries both, in order, until they are taken.
    await waitFor(async () => (await post(first)).status === 204 || undefined, 30_000, 'first retry taken');
    await waitFor(async () => (await post(second)).status === 204 || undefined, 30_000, 'second retry taken');
    const got = await recorded(server);
    const times = got.map((b) => b.ts / 1000);
    expect(times).toEqual([...Array.from({ length: 5 }, (_, k) => T0 + k), ...Array.from({ length: 50 }, (_, k) => T0 + 100 + k), ...Array.from({ length: 200 }, (_, k) => T0 + 1000 + k)]);
    expect(got.at(-1)?.updates).toHaveLength(200);
    expect(got.every((b) => b.updates.length === (b.ts / 1000 < T0 + 100 ? 10 : b.ts / 1000 < T0 + 1000 ? 100 : 200))).toBe(true);
  });
});
