/**
 * NaN payloads through msgpack and the general remote-write decoder, where only numbers ever
 * pass (this file runs in a process of its own, so no allocation site has learned a
 * non-number): V8 changes a NaN stored in an array that holds only doubles (protocol/value.ts
 * valueArray). The msgpack reader (every msgpack ingest, the SDK's frame decoder, array
 * values read back from the archive), a session's msgpack state and batch frames over a real
 * WebSocket, and remote-write samples in a request the general decoder reads (one with
 * metadata) keep every bit. Seeded; the seed is printed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeWriteRequest } from '../protocol/prompb/write-request.js';
import { decodeMsgpack, encodeMsgpack } from '../protocol/value-msgpack.js';
import { valueArray, type Batch, type Value } from '../protocol/value.js';
import { Archive } from '../storage/archive.js';
import { FRAGILE_NANS, numberBits } from './helpers/nan.js';
import { scheduleSeed } from './helpers/seed.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T0 = 1_765_000_000_000_000;
const bitsOf = numberBits;
const FRAGILE = FRAGILE_NANS;

/** n numbers, every third a fragile NaN, in generic elements (as a caller holding them must). */
function numbers(r: () => number, n: number): Value[] {
  const out = valueArray(n);
  for (let i = 0; i < n; i++) out[i] = i % 3 === 1 ? (FRAGILE[Math.floor(r() * FRAGILE.length)] as number) : Math.round(r() * 1e4) / 10;
  return out;
}

const deepBits = (v: unknown): unknown => (Array.isArray(v) ? v.map(deepBits) : bitsOf(v));

let server: TestServer | undefined;
let ws: TestWs | undefined;
afterEach(async () => {
  ws?.close();
  ws = undefined;
  await server?.close();
  server = undefined;
});

describe('NaN payloads where only numbers pass', () => {
  it('msgpack arrays of numbers decode bit for bit, nested too, and array values read back from an archive', async () => {
    const seed = scheduleSeed('NAN_MSGPACK_SEED', 'NaN payloads through msgpack');
    const r = rng(seed);
    for (let round = 0; round < 2000; round++) {
      const flat = numbers(r, 1 + Math.floor(r() * 12));
      const nested = valueArray(3);
      nested[0] = numbers(r, 2);
      nested[1] = numbers(r, 3);
      nested[2] = numbers(r, 1);
      // A NaN first, last, and alone (the reader moves the items to generic elements at the first NaN).
      const edges = valueArray(3);
      edges[0] = FRAGILE[round % FRAGILE.length] as number;
      edges[1] = round;
      edges[2] = FRAGILE[(round + 1) % FRAGILE.length] as number;
      const alone = valueArray(1);
      alone[0] = FRAGILE[(round + 2) % FRAGILE.length] as number;
      for (const v of [flat, nested, edges, alone]) expect(deepBits(decodeMsgpack(encodeMsgpack(v))), `round ${round}`).toStrictEqual(deepBits(v));
    }
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const want: Value[][] = [];
    for (let i = 0; i < 300; i++) {
      const v = numbers(r, 2 + (i % 4));
      want.push(v as Value[]);
      a.writer!.append([[`/arr/p${i % 7}`, v]], T0 + i * 1000);
    }
    await a.close();
    const ro = await Archive.open(dir, { readonly: true });
    try {
      const c = ro.cursor();
      for (const [i, v] of want.entries()) {
        const b = await c.next();
        expect(deepBits(b?.updates[0]?.[1]), `array value ${i}`).toStrictEqual(deepBits(v));
      }
    } finally {
      await ro.close();
    }
  });

  it('a msgpack session sends its state and batches bit for bit', { timeout: 60_000 }, async () => {
    const seed = scheduleSeed('NAN_MSGPACK_SEED', 'NaN payloads through a msgpack session');
    const r = rng(seed);
    const paths = Array.from({ length: 24 }, (_, i) => `/n/p${i}`);
    const batches: Batch[] = [];
    for (let b = 0; b < 200; b++) {
      const vals = numbers(r, paths.length);
      batches.push({ ts: T0 + b * 1_000_000, updates: paths.map((p, i) => [p, vals[i] as Value]) });
    }
    server = await startServer(batches);
    const mid = 120;
    const created = await api(server.url, 'POST', '/api/v1/sessions', { pos: (batches[mid] as Batch).ts, state: 'pause' });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // TestWs reads frames with the msgpack reader and keeps values in pairs and objects.
    ws = await TestWs.open(`${server.url}/api/v1/sessions/${id}/stream`, 'msgpack');
    const state = await ws.next((f) => f.type === 'state', 30_000);
    expect(state, 'a state frame').toBeDefined();
    // The state at batch mid: the newest batch at or before the position.
    const at = batches.findIndex((b) => b.ts === state.ts);
    expect(at).toBeGreaterThanOrEqual(0);
    const wantState = Object.fromEntries((batches[at] as Batch).updates.map(([p, v]) => [p, bitsOf(v)]));
    expect(Object.fromEntries(Object.entries(state.values as Record<string, Value>).map(([p, v]) => [p, bitsOf(v)]))).toStrictEqual(wantState);
    expect(Object.values(wantState).filter((b) => b === '7ff0000000000001' || b === '7ff0000000000002' || b === 'fff0000000001234' || b === '7ff4000000000000').length, 'the state holds signalling NaNs').toBeGreaterThan(0);
    // Then every later batch.
    const burst = await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: batches.length - at - 1 });
    expect(burst.status).toBe(200);
    const got = await ws.batches(batches.length - at - 1, 30_000);
    expect(got.length).toBe(batches.length - at - 1);
    for (const [k, b] of got.entries()) {
      const want = batches[at + 1 + k] as Batch;
      expect(b.ts).toBe(want.ts);
      expect(b.updates.map(([p, v]) => `${p}=${bitsOf(v)}`), `batch ${at + 1 + k}`).toStrictEqual(want.updates.map(([p, v]) => `${p}=${bitsOf(v)}`));
    }
  });

  it('remote-write samples read by the general decoder keep their NaN bits (the stale marker is null)', () => {
    // A WriteRequest with one series of samples and a metadata entry (field 3; the server's
    // fast scan leaves such a request to this decoder).
    const samples = Float64Array.of(FRAGILE[0] as number, 1.5, FRAGILE[2] as number, FRAGILE[3] as number, FRAGILE[4] as number, FRAGILE[5] as number, FRAGILE[1] as number); // not a [] literal: it would hold doubles
    const bytes: number[] = [];
    const varint = (out: number[], n: number): void => {
      while (n > 127) {
        out.push((n & 127) | 128);
        n = Math.floor(n / 128);
      }
      out.push(n);
    };
    const field = (out: number[], tag: number, body: number[]): void => {
      varint(out, tag);
      varint(out, body.length);
      out.push(...body);
    };
    const text = (s: string): number[] => [...Buffer.from(s, 'utf8')];
    const series: number[] = [];
    const label: number[] = [];
    field(label, (1 << 3) | 2, text('__name__'));
    field(label, (2 << 3) | 2, text('m'));
    field(series, (1 << 3) | 2, label);
    for (const [i, v] of samples.entries()) {
      const sample: number[] = [(1 << 3) | 1];
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      sample.push(...b);
      sample.push((2 << 3) | 0);
      varint(sample, 1_765_000_000_000 + i);
      field(series, (2 << 3) | 2, sample);
    }
    field(bytes, (1 << 3) | 2, series);
    const meta: number[] = [];
    field(meta, (2 << 3) | 2, text('m'));
    field(bytes, (3 << 3) | 2, meta);
    const req = decodeWriteRequest(Uint8Array.from(bytes), { samplesMax: 100, labelsPerSeriesMax: 10 });
    const got = req.series[0]?.values ?? [];
    expect(got.map((v) => (v === null ? 'null' : bitsOf(v)))).toStrictEqual([...samples.keys()].map((i) => (i === samples.length - 1 ? 'null' : bitsOf(samples[i]))));
    expect(bitsOf(samples[0])).toBe('7ff0000000000001');
  });
});
