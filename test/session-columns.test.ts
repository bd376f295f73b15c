/**
 * Unpaced replay from blocks read as columns (server/sessions/columns.ts, storage's
 * Cursor.nextColumns): the frames are the bytes the batch-by-batch encoders give for the
 * same batches (msgpack, NaN payloads included, and JSON), and a session that holds a block
 * it has not finished sending loses and repeats no batch when a pause, an end inside the
 * block or a reconnect cuts in: the cursor goes back after the last batch sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildServer } from '../server/app.js';
import { Archive } from '../storage/archive.js';
import type { RawBatch } from '../storage/cursor.js';
import { encodeJsonColumnsRawFrame, encodeJsonColumnsViewFrame, encodeMsgpackColumnsRawFrame, encodeMsgpackColumnsViewFrame, type FrameLayout } from '../protocol/frame-columns.js';
import { FrameDecoder, encodeJsonColumnFrameBytes, encodeJsonRawFrame, type DecodedFrame } from '../protocol/frames.js';
import { encodeColumnFrame, type ColumnBatchesView } from '../protocol/msgpack-batch-frame.js';
import { MsgpackWriter, encodeMsgpackFrame } from '../protocol/msgpack-frames.js';
import { decodeMsgpack } from '../protocol/value-msgpack.js';
import { encodeRawFrame } from './helpers/msgpack-frame-oracle.js';
import { JsonBytesWriter } from '../protocol/value-json-bytes.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { naiveState, readAll } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { numberBits } from './helpers/nan.js';
import { valueDiff } from './helpers/values.js';
import { randomBatches, randomValue, rng } from './helpers/workload.js';

const SEED = Number(process.env.COLUMNS_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`session-columns: seed ${SEED} (replay with COLUMNS_SEED=${SEED})`);

function nanWithPayload(bits: bigint): number {
  const f = new Float64Array(1);
  new BigUint64Array(f.buffer)[0] = bits;
  return f[0] as number;
}

/** Values replay meets: decimals, integers of every width, NaN payloads, -0, and hostile values of every type. */
function value(r: () => number, mixed: boolean): Value {
  const k = r();
  if (mixed && k < 0.35) return randomValue(r);
  if (k < 0.5) return Math.round((r() - 0.3) * 10_000) / 10;
  if (k < 0.6) return Math.round((r() - 0.5) * 2 ** (1 + Math.floor(r() * 52)));
  if (k < 0.65) return [nanWithPayload(0x7ff8000000000123n), nanWithPayload(0xfff8000000000000n), NaN, -0, Infinity, -Infinity][Math.floor(r() * 6)] as number;
  if (k < 0.8) return Math.round(r() * 100) / 100;
  return (r() - 0.5) * 1e9;
}

/**
 * Stretches of numeric polls and of mixed batches: blocks with no, few and many values that
 * are not numbers, some with a path updated twice in a batch.
 */
function batches(seed: number, n: number): Batch[] {
  const r = rng(seed);
  const out: Batch[] = [];
  let ts = 1_763_000_000_000_000;
  for (let i = 0; i < n; i++) {
    ts += 1 + Math.floor(r() * 1_000_000);
    const mixed = Math.floor(i / 700) % 2 === 1;
    const updates: Update[] = [];
    const m = Math.floor(r() * 7);
    for (let j = 0; j < m; j++) updates.push([`/dev-${Math.floor(r() * 40)}/m${j}`, value(r, mixed)]);
    // A path twice in a batch: blocks the column reader refuses and the codec reads.
    if (mixed && m > 0 && r() < 0.1) updates.push([(updates[0] as Update)[0], value(r, mixed)]);
    out.push({ ts, updates });
  }
  return out;
}

/** A column view of raw batches, built here (not by storage): numbers into a Float64Array, the rest aside. */
function viewOf(raws: readonly RawBatch[]): ColumnBatchesView {
  const n = raws.reduce((s, b) => s + b.to - b.from, 0);
  const v = { ts: new Float64Array(raws.length), starts: new Uint32Array(raws.length + 1), ids: new Uint32Array(n), nums: new Float64Array(n), otherCount: 0, otherAt: [] as number[], others: [] as Value[] };
  let u = 0;
  raws.forEach((b, k) => {
    v.ts[k] = b.ts;
    v.starts[k] = u;
    for (let i = b.from; i < b.to; i++, u++) {
      v.ids[u] = b.ids[i] as number;
      const x = b.values[i] as Value;
      if (typeof x === 'number') v.nums[u] = x;
      else {
        v.otherAt.push(u);
        v.others.push(x);
      }
    }
  });
  v.starts[raws.length] = u;
  v.otherCount = v.others.length;
  return v;
}

let dir: string;
let archive: Archive;
let app: Awaited<ReturnType<typeof buildServer>>;
let url: string;
let want: Batch[];

beforeAll(async () => {
  dir = await tmpDir('tapedeck-columns-');
  // Large images: blocks end at the updates target (thousands of batches, many frames each).
  const w = await Archive.open(dir, { imageFrequencyBytes: 64 * 1024 * 1024 });
  // First the workload of the storage tests (skewed paths, often twice in a batch: blocks
  // with thousands of values that are not numbers, and blocks the codec reads), then ours.
  const first = randomBatches(SEED, 1500, { startTs: 1_700_000_000_000_000 });
  for (const b of [...first, ...batches(SEED, 6000)]) w.writer!.append(b.updates, b.ts);
  await w.close();
  archive = await Archive.open(dir, { readonly: true });
  want = await readAll(archive.cursor());
  app = await buildServer({ archive });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
  await archive?.close();
});

/** Every batch of the archive as the cursor hands it out, and the same as a column view. */
async function rawsAndView(): Promise<{ raws: RawBatch[]; view: ColumnBatchesView }> {
  const raws: RawBatch[] = [];
  const c = archive.cursor();
  for (let b = await c.nextRaw(); b; b = await c.nextRaw()) raws.push(b);
  return { raws, view: viewOf(raws) };
}

describe('column frames', () => {
  it('are the bytes of the batch-by-batch encoders for the same batches (msgpack with NaN payloads, JSON)', async () => {
    const { raws, view } = await rawsAndView();
    const r = rng(SEED + 1);
    const [m1, m2, j1] = [new MsgpackWriter(), new MsgpackWriter(), new JsonBytesWriter()];
    for (let i = 0; i < 3000; i++) {
      const k0 = Math.floor(r() * raws.length);
      const k1 = Math.min(raws.length, k0 + 1 + Math.floor(r() * (r() < 0.5 ? 3 : 300)));
      const part = raws.slice(k0, k1);
      expect(Buffer.from(encodeColumnFrame(m1, view, k0, k1)).equals(Buffer.from(encodeRawFrame(m2, part, undefined))), `msgpack [${k0}, ${k1})`).toBe(true);
      expect(Buffer.from(encodeJsonColumnFrameBytes(j1, view, k0, k1, archive.paths)).equals(Buffer.from(encodeJsonRawFrame(part, archive.paths, undefined))), `json [${k0}, ${k1})`).toBe(true);
    }
  });

  it('in the columns layout decode to the frames of the pairs layout, value for value and NaN bit for bit, filtered or not', async () => {
    const { raws, view } = await rawsAndView();
    const r = rng(SEED + 2);
    const [m1, m2, j1] = [new MsgpackWriter(), new MsgpackWriter(), new JsonBytesWriter()];
    const told = encodeMsgpackFrame(new MsgpackWriter(), { type: 'paths', paths: archive.paths.map((p, id) => [id, p]) });
    // Decoded by the one decoder, the msgpack ones with every path told first.
    const decode = (bytes: Uint8Array, binary: boolean): DecodedFrame[] => {
      const d = new FrameDecoder();
      if (binary) d.decode(told, true);
      return d.decode(bytes, binary);
    };
    for (let i = 0; i < 600; i++) {
      const k0 = Math.floor(r() * raws.length);
      const k1 = Math.min(raws.length, k0 + 1 + Math.floor(r() * (r() < 0.5 ? 3 : 300)));
      const part = raws.slice(k0, k1);
      const match = r() < 0.5 ? undefined : (id: number): boolean => id % 3 !== 0;
      const pairsMp = decode(encodeRawFrame(m2, part, match), true);
      const pairsJson = decode(new TextEncoder().encode(encodeJsonRawFrame(part, archive.paths, match)), false);
      const where = `[${k0}, ${k1})${match ? ' filtered' : ''}`;
      expect(exactFrames(decode(encodeMsgpackColumnsRawFrame(m1, part, match), true)), `msgpack raw ${where}`).toEqual(exactFrames(pairsMp));
      expect(exactFrames(decode(encodeJsonColumnsRawFrame(j1, part, archive.paths, match), false)), `json raw ${where}`).toEqual(exactFrames(pairsJson));
      if (match) continue;
      expect(exactFrames(decode(encodeMsgpackColumnsViewFrame(m1, view, k0, k1), true)), `msgpack view ${where}`).toEqual(exactFrames(pairsMp));
      expect(exactFrames(decode(encodeJsonColumnsViewFrame(j1, view, k0, k1, archive.paths), false)), `json view ${where}`).toEqual(exactFrames(pairsJson));
    }
  });
});

/** A stream that decodes every frame as the SDK does (paths resolved, values revived). */
class Stream {
  readonly frames: DecodedFrame[] = [];
  /** The keys of every batch as sent (`ts,updates` in the pairs layout). */
  readonly batchKeys = new Set<string>();
  private readonly dec = new FrameDecoder();
  private waiter: (() => void) | undefined;
  readonly ws: WebSocket;

  constructor(id: string, readonly format: 'json' | 'msgpack', coalesce: boolean, layout: FrameLayout = 'pairs') {
    this.ws = new WebSocket(`${url}/api/v1/sessions/${id}/stream?coalesce=${coalesce}&layout=${layout}${format === 'msgpack' ? '&format=msgpack' : ''}`);
    this.ws.on('message', (data: Buffer, binary: boolean) => {
      const raw = (binary ? decodeMsgpack(data) : JSON.parse(data.toString())) as { type: string; batches?: object[] };
      if (raw.type === 'batch') this.batchKeys.add(Object.keys(raw).filter((k) => k !== 'type').join(','));
      for (const b of raw.type === 'batches' ? (raw.batches ?? []) : []) this.batchKeys.add(Object.keys(b).join(','));
      this.frames.push(...this.dec.decode(data, binary));
      this.waiter?.();
    });
  }

  /** Waits (for frames, not time) until `pred` holds for a frame at or after `from`; its index. */
  async until(pred: (f: DecodedFrame) => boolean, from = 0): Promise<number> {
    for (;;) {
      const i = this.frames.findIndex((f, k) => k >= from && pred(f));
      if (i >= 0) return i;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  control(set: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ type: 'control', set }));
  }

  batches(from = 0, to = this.frames.length): Array<{ ts: number; updates: Array<[string, Value]> }> {
    return this.frames.slice(from, to).filter((f): f is Extract<DecodedFrame, { type: 'batch' }> => f.type === 'batch');
  }
}

async function session(body: object): Promise<string> {
  const res = await fetch(`${url.replace('ws', 'http')}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The received batches are want[first, first + n), value for value (JSON cannot carry NaN payloads; Object.is otherwise). */
function expectRun(got: Array<{ ts: number; updates: Array<[string, Value]> }>, first: number): void {
  for (let i = 0; i < got.length; i++) {
    const w = want[first + i] as Batch;
    const g = got[i] as { ts: number; updates: Array<[string, Value]> };
    expect(g.ts, `batch ${first + i}`).toBe(w.ts);
    expect(g.updates.map((u) => u[0])).toEqual(w.updates.map((u) => u[0]));
    g.updates.forEach((u, j) => expect(valueDiff(w.updates[j]?.[1] as Value, u[1]), `batch ${first + i} update ${j}`).toBeUndefined());
  }
}

/** Frames with each number as its bits (NaN payloads, -0), for toEqual. */
function exactFrames(frames: DecodedFrame[]): unknown[] {
  const exact = (v: Value): unknown => (typeof v === 'number' ? `f64:${numberBits(v)}` : v);
  return frames.map((f) => (f.type === 'batch' ? { ts: f.ts, updates: f.updates.map(([p, v]) => [p, exact(v)]) } : f));
}

describe('the layout parameter', () => {
  it('refuses a layout it does not know before the upgrade, with the stable code', async () => {
    const id = await session({ speed: 'unlimited' });
    for (const bad of ['rows', 'COLUMNS', '', 'columns,pairs', 'columns&layout=pairs', 'columns&layout=columns']) {
      const status = await new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
        const ws = new WebSocket(`${url}/api/v1/sessions/${id}/stream?layout=${encodeURIComponent(bad).replaceAll('%26', '&').replaceAll('%3D', '=')}`);
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error?: { code?: string } }).error?.code }));
        });
        ws.once('open', () => reject(new Error(`layout=${bad} was accepted`)));
        ws.once('error', () => undefined);
      });
      expect(status, `layout=${bad}`).toEqual({ status: 400, code: 'TPD_BAD_REQUEST' });
    }
  });
});

const isEnd = (f: DecodedFrame): boolean => f.type === 'end';
const controlsWith = (state: string) => (f: DecodedFrame): boolean => f.type === 'controls' && f.controls.state === state;
/** An unbounded session that ran out of batches tails the archive. */
const isTail = controlsWith('tail');

describe.each([
  ['msgpack', 'pairs'],
  ['json', 'pairs'],
  ['msgpack', 'columns'],
  ['json', 'columns'],
] as const)('unpaced replay from columns (%s, layout %s)', (format, layout) => {
  it('delivers every batch once, in order, value for value, coalesced or not', async () => {
    for (const coalesce of [true, false]) {
      const s = new Stream(await session({ speed: 'unlimited' }), format, coalesce, layout);
      await s.until(isTail);
      const got = s.batches();
      expect(got.length).toBe(want.length);
      expectRun(got, 0);
      expect([...s.batchKeys]).toEqual([layout === 'pairs' ? 'ts,updates' : format === 'json' ? 'ts,paths,values' : 'ts,ids,values']);
      if (!coalesce) expect(s.frames.filter((f) => f.type === 'batch').length).toBe(want.length);
      s.ws.close();
    }
  });

  it('a pause mid-block shows the last batch sent, and play goes on from the next one', async () => {
    const s = new Stream(await session({ speed: 'unlimited' }), format, true, layout);
    // Pause after the first few frames: the session is somewhere inside a block by then.
    await s.until((f) => f.type === 'batch' && f.ts > (want[40] as Batch).ts);
    s.control({ state: 'pause' });
    const paused = await s.until(controlsWith('pause'));
    const before = s.batches(0, paused);
    const shown = s.frames[paused] as Extract<DecodedFrame, { type: 'controls' }>;
    expect(shown.controls.posUs).toBe(before[before.length - 1]?.ts);
    s.control({ state: 'play' });
    await s.until(isTail, paused);
    const got = s.batches();
    expect(got.length).toBe(want.length);
    expectRun(got, 0);
    s.ws.close();
  });

  it('a change to a paced speed mid-block goes on from the batch after the last one sent', async () => {
    const s = new Stream(await session({ speed: 'unlimited' }), format, true, layout);
    await s.until((f) => f.type === 'batch' && f.ts > (want[2000] as Batch).ts);
    s.control({ speed: 1000 });
    await s.until(isTail);
    const got = s.batches();
    expect(got.length).toBe(want.length);
    expectRun(got, 0);
    s.ws.close();
  });

  it('stops at an end inside a block, and goes on from the batch after it when the end moves', async () => {
    const cut = 1234;
    const s = new Stream(await session({ speed: 'unlimited', end: (want[cut] as Batch).ts }), format, true, layout);
    const ended = await s.until(isEnd);
    expect(s.batches(0, ended).length).toBe(cut + 1);
    s.control({ end: (want[4000] as Batch).ts, state: 'play' });
    await s.until(isEnd, ended + 1);
    const got = s.batches();
    expect(got.length).toBe(4001);
    expectRun(got, 0);
    s.ws.close();
  });

  it('a reconnect mid-block gets the state at the last batch sent, then the batch after it', async () => {
    const id = await session({ speed: 'unlimited' });
    const a = new Stream(id, format, true, layout);
    await a.until((f) => f.type === 'batch' && f.ts > (want[100] as Batch).ts);
    const b = new Stream(id, format, true, layout);
    const st = await b.until((f) => f.type === 'state');
    await b.until(isTail, st);
    const state = b.frames[st] as Extract<DecodedFrame, { type: 'state' }>;
    const first = want.findIndex((x) => x.ts > (state.ts as number));
    expect(first).toBeGreaterThan(100);
    // What the first stream got ends where the state stands (it may have more in flight).
    const seen = a.batches();
    expect(seen.length).toBeGreaterThanOrEqual(first);
    expect(seen[first - 1]?.ts).toBe(state.ts);
    const naive = naiveState(want, state.ts);
    const shown = Object.entries(state.values);
    // A state frame shows null for a path with no value yet, and for one whose value is null.
    expect(shown.filter(([, v]) => v !== null).length).toBe([...naive.values()].filter((v) => v !== null).length);
    for (const [p, v] of shown) expect(valueDiff(naive.has(p) ? (naive.get(p) as Value) : null, v), p).toBeUndefined();
    const rest = b.batches(st);
    expect(rest.length).toBe(want.length - first);
    expectRun(rest, first);
    a.ws.close();
    b.ws.close();
  });
});
