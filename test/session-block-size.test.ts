/**
 * Paced and burst replay send the same frames, byte for byte, whatever the block size the
 * archive was written with (16 384 or 32 768 updates) and however many sessions share its
 * blocks through a block cache too small for them (storage/block-cache.ts: blocks evicted
 * but still held are shared, not decoded again). Every `batch` frame is also compared with
 * an oracle that never touches storage: the recorded batch encoded by the plain msgpack
 * writer (test/helpers/msgpack-frame-oracle.ts) or the JSON frame writer. Values are
 * hostile: NaN payloads (Prometheus' signalling stale marker too), -0, strings, bytes,
 * objects, arrays, null, booleans, bigints past 2^53 and 2^64, integers of every width.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildServer } from '../server/app.js';
import { Archive } from '../storage/archive.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { encodeJsonRawFrame } from '../protocol/frames.js';
import { MsgpackWriter } from '../protocol/msgpack-frames.js';
import { decodeMsgpack } from '../protocol/value-msgpack.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { encodeRawFrame } from './helpers/msgpack-frame-oracle.js';
import { STALE_NAN } from './helpers/nan.js';
import { tmpDir } from './helpers/tmp.js';
import { randomValue, rng } from './helpers/workload.js';

const SEED = Number(process.env.BLOCK_SIZE_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`session-block-size: seed ${SEED} (replay with BLOCK_SIZE_SEED=${SEED})`);

const limits = STORAGE_LIMITS as { -readonly [K in keyof typeof STORAGE_LIMITS]: number };
const saved = { ...limits };
afterEach(() => Object.assign(limits, saved));

function nanWithPayload(bits: bigint): number {
  return new Float64Array(new BigUint64Array([bits]).buffer)[0] as number;
}

const EDGES: Value[] = [nanWithPayload(0x7ff8000000000123n), nanWithPayload(0xfff8000000000000n), STALE_NAN, NaN, -0, 0, Infinity, -Infinity, 2 ** 53, -(2 ** 53) - 2, 2 ** 63, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 70n, -(2n ** 70n), 1e-300, 5e-324, '', 'é\u0000"\\', null, true, false, new Uint8Array([0, 255]), { a: [1, -0, 'x'], b: null }, []];

function value(r: () => number, stretch: number): Value {
  const k = r();
  // Stretches of plain decimals (blocks decoded into plain arrays) between hostile ones.
  if (stretch % 3 === 0) return Math.round((r() - 0.3) * 10_000) / 10;
  if (k < 0.3) return EDGES[Math.floor(r() * EDGES.length)] as Value;
  if (k < 0.55) return randomValue(r);
  if (k < 0.75) return Math.round((r() - 0.5) * 2 ** (1 + Math.floor(r() * 52)));
  return Math.round(r() * 10_000) / 100;
}

/** Batches 100 us apart (speed 1000 plays them 0.1 us apart: pacing never waits long), 0 to 11 updates. */
function batches(seed: number, n: number, t0: number): Batch[] {
  const r = rng(seed);
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) {
    const updates: Update[] = [];
    const m = Math.floor(r() * 12);
    for (let j = 0; j < m; j++) updates.push([`/dev-${Math.floor(r() * 30)}/m${Math.floor(r() * 8)}`, value(r, Math.floor(i / 900))]);
    out.push({ ts: t0 + i * 100, updates });
  }
  return out;
}

const T0 = 1_763_000_000_000_000;
const N = 12_000;
const WANT = batches(SEED, N, T0);

async function write(blockUpdates: number): Promise<string> {
  limits.blockUpdatesTarget = blockUpdates;
  const dir = await tmpDir('tapedeck-block-size-');
  const w = await Archive.open(dir, { imageFrequencyBytes: 64 * 1024 * 1024 });
  for (const b of WANT) w.writer!.append(b.updates, b.ts);
  await w.close();
  limits.blockUpdatesTarget = saved.blockUpdatesTarget;
  return dir;
}

interface Played {
  /** Every frame as sent, in order. */
  frames: Buffer[];
  /** The `batch` frames only. */
  batchFrames: Buffer[];
}

/** Plays one session to its `end` bound and keeps every frame's bytes. */
function play(url: string, id: string, format: 'json' | 'msgpack', coalesce: boolean, afterState?: (ws: WebSocket) => void): Promise<Played> {
  const ws = new WebSocket(`${url}/api/v1/sessions/${id}/stream?coalesce=${coalesce}${format === 'msgpack' ? '&format=msgpack' : ''}`);
  const out: Played = { frames: [], batchFrames: [] };
  let stateSeen = false;
  return new Promise((resolve, reject) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const f = (binary ? decodeMsgpack(data) : JSON.parse(data.toString('utf8'))) as { type: string; code?: string };
      out.frames.push(Buffer.from(data));
      if (f.type === 'batch' || f.type === 'batches') out.batchFrames.push(Buffer.from(data));
      if (f.type === 'state' && !stateSeen) {
        stateSeen = true;
        afterState?.(ws);
      }
      if (f.type === 'error') reject(new Error(`error frame ${data.toString()}`));
      // A session ends at its `end` bound; a burst that reaches it stops there and says so.
      if (f.type === 'end' || (f.type === 'info' && f.code === 'TPD_CLAMPED')) {
        ws.close();
        resolve(out);
      }
    });
    ws.once('error', reject);
  });
}

async function session(url: string, body: object): Promise<string> {
  const res = await fetch(`${url.replace('ws', 'http')}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The oracle's `batch` frames for WANT[from..], ids as the archive numbered its paths. */
function oracle(paths: readonly string[], format: 'json' | 'msgpack', from: number): Buffer[] {
  const idOf = new Map(paths.map((p, i) => [p, i]));
  const w = new MsgpackWriter();
  const out: Buffer[] = [];
  for (const b of WANT.slice(from)) {
    const ids = Uint32Array.from(b.updates, (u) => idOf.get(u[0]) as number);
    // Generic elements, as storage's decoder keeps blocks with a signalling NaN: numbers boxed, bits kept.
    const values: Value[] = new Array<Value>(b.updates.length).fill(null);
    b.updates.forEach((u, i) => (values[i] = u[1]));
    const view = { ts: b.ts, ids, values, from: 0, to: ids.length };
    out.push(format === 'msgpack' ? Buffer.from(encodeRawFrame(w, [view], undefined)) : Buffer.from(encodeJsonRawFrame([view], paths, undefined), 'utf8'));
  }
  return out;
}

/** Several sessions at once from several starting batches, on a server whose block cache holds at most `cacheUpdates`. */
async function playAll(dir: string, cacheUpdates: number): Promise<{ paths: string[]; blocks: number; runs: Map<string, Played> }> {
  limits.decodedCacheUpdatesMax = cacheUpdates;
  const archive = await Archive.open(dir, { readonly: true });
  limits.decodedCacheUpdatesMax = saved.decodedCacheUpdatesMax;
  const app = await buildServer({ archive });
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const end = (WANT[N - 1] as Batch).ts;
    const runs = new Map<string, Played>();
    const starts = [0, 1, 2500, 2501, 5000, 7777, 11_000];
    const jobs: Array<Promise<void>> = [];
    for (const format of ['msgpack', 'json'] as const) {
      for (const from of starts) {
        // Paced at speed 1000, one batch a frame; the first batch is the one after the state at `pos`.
        const pos = from === 0 ? 'beginning' : (WANT[from - 1] as Batch).ts;
        const id = await session(url, { speed: 1000, pos, end });
        jobs.push(play(url, id, format, false).then((p) => void runs.set(`paced ${format} ${from}`, p)));
      }
      // A burst past the end bound, coalesced (frames of up to frameBatchesMax batches), from a paused session.
      const id = await session(url, { state: 'pause', end: (WANT[9000] as Batch).ts });
      jobs.push(play(url, id, format, true, (ws) => ws.send(JSON.stringify({ type: 'control', set: { burst: 10_000 } }))).then((p) => void runs.set(`burst ${format}`, p)));
    }
    await Promise.all(jobs);
    let blocks = 0;
    for (let f = archive.fileList.first(); f; f = archive.fileList.after(f.seq)) blocks += archive.table(f).deltas.length;
    return { paths: [...archive.paths], blocks, runs };
  } finally {
    await app.close();
    await archive.close();
  }
}

describe('replay frames across block sizes', () => {
  it('are the same bytes at 16 384 and 32 768 updates a block, shared blocks or not, and equal the oracle', async () => {
    const small = await write(16_384);
    const large = await write(32_768);
    const totalUpdates = WANT.reduce((s, b) => s + b.updates.length, 0);
    // The cache holds a fraction of one large block (every block only weakly held), then all of them.
    const played = [await playAll(small, 20_000), await playAll(large, 20_000), await playAll(large, 4 * totalUpdates), await playAll(small, 1_000)];
    const base = played[0]!;
    // The sizes differ: half as many blocks (give or take the last one) at 32 768.
    expect(played[1]!.blocks).toBeLessThan(base.blocks);
    expect(played[1]!.blocks).toBeGreaterThan(1);
    for (const [name, run] of base.runs) {
      const from = name.startsWith('paced') ? Number(name.split(' ')[2]) : 0;
      const format = name.split(' ')[1] as 'json' | 'msgpack';
      if (name.startsWith('paced')) {
        const want = oracle(base.paths, format, from);
        expect(run.batchFrames.length, name).toBe(want.length);
        run.batchFrames.forEach((f, i) => expect(f.equals(want[i]!), `${name}: batch ${from + i}`).toBe(true));
      }
      for (const [k, other] of played.slice(1).entries()) {
        expect(other.paths).toEqual(base.paths);
        const o = other.runs.get(name)!;
        expect(o.frames.length, `${name} (${k + 1})`).toBe(run.frames.length);
        o.frames.forEach((f, i) => expect(f.equals(run.frames[i]!), `${name} (${k + 1}): frame ${i}`).toBe(true));
      }
    }
  }, 300_000);
});
