/**
 * What a merging node reads from a shard's streamed answers (docs/cluster.md, "Merged
 * reads"): the batches wire (GET /api/v1/shard/batches) and history lines. A shard is a peer:
 * a batch time that is not an exact time, that does not increase, or that lies before where
 * the stream was asked to start is a shard fault (never a batch played twice or out of
 * order, never a rounded time); and a long record or line in small chunks costs its length
 * once (the readers joined every chunk to all before it, then searched the whole again:
 * quadratic in the chunks).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMsgpack } from '../protocol/value-msgpack.js';
import type { Value } from '../protocol/value.js';
import { lines } from '../server/cluster/merge-records.js';
import { SHARD_BATCHES_MEDIA_TYPE, decodeShardBatches } from '../server/cluster/shard-batches.js';
import { frontNode } from './helpers/merge-cluster.js';
import { startServer } from './helpers/server.js';

const T0 = 1_760_000_000_000_000;

/** One record of the wire: a 4-byte length and the msgpack of `v`. */
function record(v: Value): Buffer {
  const body = encodeMsgpack(v);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

async function* chunksOf(b: Buffer | string, size: number): AsyncGenerator<Buffer | string> {
  for (let i = 0; i < b.length; i += size) yield b.slice(i, i + size);
}

async function all<T>(g: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

const idOf = (p: string): number => (p === '/a' ? 0 : 1);

describe('the batches wire refuses times a shard cannot have sent', () => {
  it.each([
    ['the same time twice (a batch played twice)', [record([T0, [0], [1], [0, '/a']]), record([T0, [0], [2], []])], 0],
    ['a time going back', [record([T0 + 5, [0], [1], [0, '/a']]), record([T0 + 4, [0], [2], []])], 0],
    ['a time before where the stream starts', [record([T0 - 1, [0], [1], [0, '/a']])], T0],
    ['a time that is not an integer', [record([T0 + 0.5, [0], [1], [0, '/a']])], 0],
    ['a time past 2^53', [record([2n ** 60n, [0], [1], [0, '/a']])], 0],
    ['a negative time', [record([-5, [0], [1], [0, '/a']])], 0],
  ])('%s', async (_what, records, fromUs) => {
    const body = (async function* () {
      yield Buffer.concat(records);
    })();
    await expect(all(decodeShardBatches(body, 1 << 20, idOf, fromUs))).rejects.toMatchObject({ code: 'TPD_INTERNAL' });
  });

  it('reads increasing times from where the stream starts, exactly', async () => {
    const body = (async function* () {
      yield Buffer.concat([record([T0, [0], [1], [0, '/a']]), record([T0 + 1, [1], [2], [1, '/b']]), record([Number.MAX_SAFE_INTEGER, [0], [3], []])]);
    })();
    const got = await all(decodeShardBatches(body, 1 << 20, idOf, T0));
    expect(got.map((b) => [b.ts, [...b.ids], b.values])).toEqual([[T0, [0], [1]], [T0 + 1, [1], [2]], [Number.MAX_SAFE_INTEGER, [0], [3]]]);
  });
});

describe('a long record or line in small chunks is read in one pass', () => {
  const BIG = 24 * 1024 * 1024;
  const CHUNK = 4096;

  it('a batch of 24 MiB in 4 KiB chunks', async () => {
    const big = 'v'.repeat(BIG);
    const wire = Buffer.concat([record([T0, [0], [big], [0, '/a']]), record([T0 + 1, [0], [1], []])]);
    const got = await all(decodeShardBatches(chunksOf(wire, CHUNK) as AsyncIterable<Buffer>, 32 * 1024 * 1024, idOf));
    expect(got.map((b) => b.ts)).toEqual([T0, T0 + 1]);
    expect(got[0]!.values[0]).toBe(big);
  }, 10_000);

  it('a history line of 24 MiB in 4 KiB chunks, as bytes and as text', async () => {
    const line = `{"ts":${T0},"u":"${'é'.repeat(BIG / 2)}"}`;
    const text = `${line}\n{"ts":${T0 + 1}}\nlast`;
    for (const body of [Buffer.from(text), text]) {
      const got = await all(lines(chunksOf(body, CHUNK), 32 * 1024 * 1024));
      expect(got.length).toBe(3);
      expect(got[0] === line).toBe(true);
      expect(got.slice(1)).toEqual([`{"ts":${T0 + 1}}`, 'last']);
    }
  }, 10_000);
});

describe('merged history over a shard that repeats a batch', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  it('Parquet: the answer fails with a code (never a whole file holding the batch twice)', async () => {
    const hostile = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/api/v1/shard') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ horizon_us: T0 + 9, recording: false }));
      }
      res.writeHead(200, { 'content-type': SHARD_BATCHES_MEDIA_TYPE, 'tapedeck-recording': 'false' });
      res.end(Buffer.concat([record([T0 + 3, [0], [1], [0, '/h']]), record([T0 + 3, [0], [1], []])]));
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => {
      hostile.closeAllConnections();
      hostile.close(r);
    }));
    const good = await startServer([{ ts: T0, updates: [['/g', 1]] }, { ts: T0 + 6, updates: [['/g', 2]] }]);
    closers.push(() => good.close());
    const front = await frontNode([{ id: 'a', url: good.url }, { id: 'b', url: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}` }]);
    closers.push(() => front.close());
    const res = await fetch(`${front.url}/api/v1/history?from=${T0}&format=parquet`);
    // The Parquet writer had sent nothing yet: an error answer of its own, with its code.
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: { code: 'TPD_CLUSTER_UNAVAILABLE', message: expect.stringMatching(/^shard b was lost \(a shard sent malformed batches: a batch at \d+, not after \d+/) } });
  }, 20_000);
});
