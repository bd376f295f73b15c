/**
 * Prometheus label values are paths here (`/prom/<name>/<label>=<value>/...`,
 * protocol/prom-path.ts): every label value a remote write or a scrape may carry (path
 * separators, `%`, `=`, glob characters, control characters, NUL, U+FEFF, spaces at either
 * end, unicode) must come back from the Prometheus API as the same label set, and each
 * series' samples (numbers only: -0, subnormals, ±Inf, NaN) as the same numbers. Seeded
 * random values beside the fixed ones (AUDIT17_LABELS_SEED replays).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import snappy from 'snappy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WriteRequestSchema } from '../protocol/prompb/gen/remote_pb.js';
import { pathToSeries, seriesToPath } from '../protocol/prom-path.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { until } from './helpers/until.js';
import { rng } from './helpers/workload.js';

const seed = scheduleSeed('AUDIT17_LABELS_SEED', 'audit17-values-prom-labels');

const FIXED = ['a/b', '/', '//', '%', '%25', '%2F', '=', 'a=b', '*', '?', '[x]', '{y}', '**', '\n', '\t', '\u0000', 'a\u0000b', '\u007f', '\u0085', 'é', '𝄞', ' lead', 'trail ', '\\', '"', '\ufeff', '\ufeffx', '\u2028', '.', '..', '-0', 'NaN', '12'];

function randomValues(n: number): string[] {
  const r = rng(seed);
  const units = ['a', '/', '%', '=', '*', '\u0000', '\u001f', 'é', '𝄞', ' ', '\\', '"', '\ufeff', '2', 'F'];
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * 6) }, () => units[Math.floor(r() * units.length)] as string).join(''));
}

const SAMPLES = [-0, 5e-324, -Infinity, Infinity, NaN, 0.1, 1e21, 2 ** 53 + 2, -1.5e-7];

let srv: Awaited<ReturnType<typeof recordingServer>>;
beforeEach(async () => {
  srv = await recordingServer({ sources: [{ name: 'push', type: 'push' }, { name: 'prom', type: 'remote_write' }] });
});
afterEach(async () => {
  await srv.close();
});

interface PromSeries { metric: Record<string, string>; value?: [number, string] }

async function promQuery(query: string, timeS: number): Promise<PromSeries[]> {
  const r = await fetch(`${srv.url}/api/v1/query?${new URLSearchParams({ query, time: String(timeS) })}`);
  const j = (await r.json()) as { status: string; data: { result: PromSeries[] }; error?: string };
  if (j.status !== 'success') throw new Error(`${query}: ${j.error}`);
  return j.data.result;
}

function sampleText(v: number): string | number {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return v;
}

describe('audit17: label values through remote write and back from the Prometheus API', () => {
  it('every label value is a path level and the same label again; samples the same numbers', async () => {
    const values = [...FIXED, ...randomValues(40)].filter((v, i, a) => a.indexOf(v) === i);
    // The mapping alone first: one to one.
    for (const v of values) {
      const p = seriesToPath({ name: 'lv', labels: { v } });
      expect(pathToSeries(p), JSON.stringify(v)).toEqual({ name: 'lv', labels: { v } });
    }
    const tMs = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const req = create(WriteRequestSchema, {
      timeseries: values.map((v, i) => ({
        labels: [{ name: '__name__', value: 'lv' }, { name: 'i', value: String(i).padStart(3, '0') }, { name: 'v', value: v }],
        samples: [{ value: SAMPLES[i % SAMPLES.length] as number, timestamp: BigInt(tMs) }],
      })),
    });
    const r = await srv.app.inject({
      method: 'POST', url: '/api/v1/write?source=prom', payload: snappy.compressSync(Buffer.from(toBinary(WriteRequestSchema, req))),
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    });
    expect(r.statusCode, r.body).toBe(204);
    const got = await promQuery('lv', tMs / 1000 + 1);
    expect(got).toHaveLength(values.length);
    const byI = new Map(got.map((s) => [s.metric.i as string, s]));
    values.forEach((v, i) => {
      const s = byI.get(String(i).padStart(3, '0'));
      expect(s?.metric, JSON.stringify(v)).toEqual({ __name__: 'lv', i: String(i).padStart(3, '0'), v });
      const want = SAMPLES[i % SAMPLES.length] as number;
      const text = s?.value?.[1] as string;
      expect(text === 'NaN' || text === '+Inf' || text === '-Inf' ? text : Number(text), `${JSON.stringify(v)} sample`).toEqual(sampleText(want));
      if (Object.is(want, -0)) expect(text).toBe('-0');
    });
    // Selected by the label value itself, exact (=) and by a regex matching it literally.
    for (const v of FIXED) {
      const q = `lv{v=${JSON.stringify(v)}}`;
      const one = await promQuery(q, tMs / 1000 + 1);
      expect(one.map((s) => s.metric.v), q).toEqual([v]);
    }
  });
});

describe('audit17: label values through a scrape', () => {
  let upstream: Server;
  afterEach(async () => {
    upstream?.closeAllConnections();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  });

  it('escaped label values in the exposition come back as the same labels', async () => {
    // The text format escapes only \\, \" and \n in a label value; anything else is literal UTF-8.
    const values = FIXED.filter((v) => !v.includes('\u0000'));
    const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const body = values.map((v, i) => `sv{i="${String(i).padStart(3, '0')}",v="${esc(v)}"} ${i}\n`).join('');
    upstream = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/metrics`;
    await srv.close();
    // Committed every 100 ms: the query API reads what is committed.
    srv = await recordingServer({ record: { spec: ['/**'], flush_interval: '100ms' }, sources: [{ name: 'scrape', type: 'prometheus-scrape', targets: [url], interval: '100ms', job: 'j' }] });
    await until(async () => (await promQuery('sv', Date.now() / 1000)).length === values.length, 20_000, 'every series scraped');
    const got = await promQuery('sv', Date.now() / 1000);
    const byI = new Map(got.map((s) => [s.metric.i as string, s]));
    values.forEach((v, i) => {
      const s = byI.get(String(i).padStart(3, '0'));
      expect(s?.metric.v, JSON.stringify(v)).toBe(v);
      expect(s?.value?.[1]).toBe(String(i));
    });
  });
});

describe('audit17: two samples of one series at one time in a remote write', () => {
  /** A request of one series `dup` with these samples, their value bytes written as given (NaN payloads kept). */
  function request(samples: Array<[bigint, number]>): Buffer {
    const marks = samples.map((_s, i) => 1000 + i);
    const req = create(WriteRequestSchema, { timeseries: [{ labels: [{ name: '__name__', value: 'dup' }], samples: marks.map((m) => ({ value: m, timestamp: 1_763_000_000_000n })) }] });
    const bytes = Buffer.from(toBinary(WriteRequestSchema, req));
    // Each placeholder's 8 bytes (tag 0x09, then the double) replaced by the wanted bits.
    samples.forEach(([bits], i) => {
      const ph = Buffer.alloc(8);
      ph.writeDoubleLE(marks[i] as number);
      const at = bytes.indexOf(ph);
      expect(at).toBeGreaterThan(0);
      bytes.writeBigUInt64LE(bits, at);
    });
    return snappy.compressSync(bytes);
  }

  async function post(b: Buffer): Promise<{ status: number; body: string }> {
    const r = await srv.app.inject({
      method: 'POST', url: '/api/v1/write?source=prom', payload: b,
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    });
    return { status: r.statusCode, body: r.body };
  }

  it('NaNs of two payloads are two values: refused as any two different samples; the same payload twice is one update with its bits', async () => {
    const refused = await post(request([[0x7ff8000000000001n, 0], [0x7ff8000000000002n, 0]]));
    expect(refused.status, refused.body).toBe(400);
    expect(refused.body).toContain('TPD_REMOTE_WRITE_OUT_OF_ORDER');
    const [signed, plain] = [0xfff8000000000000n, 0x7ff8000000000000n];
    expect((await post(request([[signed, 0], [plain, 0]]))).status).toBe(400);
    const ok = await post(request([[0x7ff8000000000003n, 0], [0x7ff8000000000003n, 0]]));
    expect(ok.status, ok.body).toBe(204);
    await srv.archive.writer?.flush();
    const c = srv.archive.cursor();
    const got: unknown[] = [];
    for (let b = await c.next(); b; b = await c.next()) for (const [p, v] of b.updates) if (p === '/prom/dup') got.push(v);
    expect(got).toHaveLength(1);
    const f = new Float64Array(1);
    f[0] = got[0] as number;
    expect(new BigUint64Array(f.buffer)[0]).toBe(0x7ff8000000000003n);
  });
});
