/**
 * A shard is a peer, not trusted with a merged read (docs/cluster.md, "The partial marker"):
 * a hostile or broken one that answers a malformed Tapedeck-Horizon, dribbles its JSON answer
 * a byte at a time, or answers its probe with something that is not a probe (too large, the
 * wrong shape) is named missing, and the merged answer holds exactly the other shard's.
 * The hostile shard is a plain HTTP server on a real socket; the good one a real Tapedeck
 * server over a real archive; the merging node a real front node (StaticDirectory).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVER_LIMITS } from '../server/limits.js';
import { frontNode } from './helpers/merge-cluster.js';
import { formatTs } from '../protocol/time.js';
import { SHARD_BATCHES_MEDIA_TYPE } from '../server/cluster/shard-batches.js';
import { api, startServer, TestWs } from './helpers/server.js';

const T0 = 1_760_000_000_000_000;
const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
const closers: Array<() => unknown> = [];
afterEach(async () => {
  Object.assign(limits, saved);
  for (const c of closers.splice(0).reverse()) await c();
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A shard that answers its probe as a recording shard would, and `route` its own way. */
async function hostileShard(route: Handler, probe?: Handler): Promise<string> {
  const srv = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/api/v1/shard') {
      if (probe) return probe(req, res);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ horizon_us: T0 + 5, recording: false }));
    }
    route(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => {
    srv.closeAllConnections();
    srv.close(r);
  }));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

/** The good shard ("a", first in id order) and the hostile one ("b") behind a front node. */
async function cluster(hostileUrl: string): Promise<string> {
  const good = await startServer([{ ts: T0, updates: [['/good/x', 1]] }, { ts: T0 + 1, updates: [['/good/y', 2.5]] }]);
  closers.push(() => good.close());
  const front = await frontNode([{ id: 'a', url: good.url }, { id: 'b', url: hostileUrl }]);
  closers.push(() => front.close());
  return front.url;
}

const PATHS_BODY = JSON.stringify({ paths: ['/hostile/z'], count: 1, truncated: false });

describe('a hostile shard is named missing, never merged', () => {
  it.each([
    ['digits then a letter (no time; the old pattern backtracked over it)', `${'9'.repeat(8000)}x`],
    ['a time past 2^53', `2026-01-01T00:00:00Z ${'9'.repeat(20)}`],
    ['a time of 17 digits', `2026-01-01T00:00:00Z 12345678901234567`],
    ['a negative time', '2026-01-01T00:00:00Z -5'],
  ])('a malformed Tapedeck-Horizon: %s', async (_what, horizon) => {
    const url = await cluster(await hostileShard((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'tapedeck-horizon': horizon });
      res.end(PATHS_BODY);
    }));
    const r = await api(url, 'GET', '/api/v1/paths');
    expect(r.status).toBe(200);
    expect(r.body.paths).toEqual(['/good/x', '/good/y']);
    expect(r.body.partial).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 'b', reason: 'malformed Tapedeck-Horizon from /api/v1/paths' }] });
  });

  it('a well-formed Tapedeck-Horizon is still read exactly (2^53 - 1)', async () => {
    const url = await cluster(await hostileShard((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'tapedeck-horizon': `2255-06-05T23:47:34.740991Z ${Number.MAX_SAFE_INTEGER}` });
      res.end(PATHS_BODY);
    }));
    const r = await api(url, 'GET', '/api/v1/paths');
    expect(r.body.paths).toEqual(['/good/x', '/good/y', '/hostile/z']);
    expect(r.body.partial).toBeUndefined();
  });

  it('a JSON answer dribbled a byte at a time is not waited for past clusterShardJsonAnswerMs', async () => {
    limits.clusterShardJsonAnswerMs = 4_000;
    const url = await cluster(await hostileShard((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Each byte well within clusterShardIdleTimeoutMs of the one before: never idle, never done.
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
    }));
    const r = await api(url, 'GET', '/api/v1/paths');
    expect(r.status).toBe(200);
    expect(r.body.paths).toEqual(['/good/x', '/good/y']);
    expect(r.body.partial.missing).toEqual([{ shard: 'b', reason: 'no whole answer within 4000 ms' }]);
  }, 15_000);

  it.each(['ndjson', 'csv', 'parquet'])('a %s history record dribbled a byte at a time is not waited for past clusterShardRecordMs', async (format) => {
    limits.clusterShardRecordMs = 4_000;
    const url = await cluster(await hostileShard((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Never idle, never a whole record: a line without its end, a batch record without its bytes.
      res.write(format === 'parquet' ? Buffer.from([0, 0, 0, 100]) : format === 'csv' ? `ts,time,path,value\n${T0 + 3}` : `{"ts":${T0 + 3}`);
      const timer = setInterval(() => res.write(format === 'parquet' ? Buffer.from([0xc0]) : ' '), 100);
      res.on('close', () => clearInterval(timer));
    }));
    const res = await fetch(`${url}/api/v1/history?from=${T0}&format=${format}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('tapedeck-partial')).toBe('TPD_SHARDS_MISSING: b (no whole record within 4000 ms)');
    await res.arrayBuffer();
  }, 15_000);

  it('a merged session whose shard dribbles its batch goes on without it, naming it, past clusterShardRecordMs', async () => {
    limits.clusterShardRecordMs = 4_000;
    const url = await cluster(await hostileShard((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const json = (v: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'tapedeck-recording': 'false' });
        res.end(JSON.stringify(v));
      };
      if (path === '/api/v1/paths') return json({ paths: [], count: 0, truncated: false });
      if (path === '/api/v1/state') return json({ ts: null, values: {} });
      if (path === '/api/v1/coverage') return json({ horizon_us: null, runs: [], gaps: [], outages: [] });
      res.writeHead(200, { 'content-type': SHARD_BATCHES_MEDIA_TYPE, 'tapedeck-recording': 'false' });
      res.write(Buffer.from([0, 0, 0, 100]));
      const timer = setInterval(() => res.write(Buffer.from([0xc0])), 100);
      res.on('close', () => clearInterval(timer));
    }));
    const s = await api(url, 'POST', '/api/v1/sessions', { speed: 'unlimited', end: formatTs(T0 + 2) });
    expect(s.status).toBe(201);
    const m = await TestWs.open(url + s.body.stream);
    closers.push(() => m.close());
    const lost = await m.next((x) => x.type === 'info' && x.code === 'TPD_SHARDS_MISSING', 10_000);
    expect(lost.message).toMatch(/shard b is missing \(no whole record within 4000 ms\)/);
    expect((await m.batches(2, 10_000)).map((b) => b.ts)).toEqual([T0, T0 + 1]);
  }, 20_000);

  it('answers being read at once hold at most clusterShardAnswersHeldBytesMax, all requests together', async () => {
    limits.clusterShardAnswersHeldBytesMax = 3 * 1024 * 1024;
    const held: Array<() => void> = [];
    const pad = 'x'.repeat(2 * 1024 * 1024);
    const url = await cluster(await hostileShard((_req, res) => {
      // Two of these at once hold 4 MiB in the merging node until they end.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"paths":["/hostile/z"],"count":1,"truncated":false,"pad":"${pad}`);
      held.push(() => res.end('"}'));
    }));
    const answers = [api(url, 'GET', '/api/v1/paths'), api(url, 'GET', '/api/v1/paths')];
    // The answer that passed the bound comes at once; then the other shard's body may end.
    await Promise.race(answers);
    for (const end of held) end();
    const got = await Promise.all(answers);
    const reasons = got.map((r) => r.body.partial?.missing?.[0]?.reason ?? null).sort();
    expect(reasons).toEqual([`answers being read hold over ${3 * 1024 * 1024} bytes`, null]);
    for (const r of got) expect(r.body.paths).toEqual(r.body.partial ? ['/good/x', '/good/y'] : ['/good/x', '/good/y', '/hostile/z']);
  });

  it.each([
    ['larger than clusterShardProbeBytesMax', JSON.stringify({ horizon_us: T0, recording: false, pad: 'x'.repeat(8 * 1024 * 1024) })],
    ['a horizon that is not a time', JSON.stringify({ horizon_us: 'soon', recording: false })],
    ['a horizon past 2^53', `{"horizon_us":${'9'.repeat(30)},"recording":false}`],
    ['no recording flag', JSON.stringify({ horizon_us: T0 })],
  ])('a probe answer %s leaves the shard not live', async (_what, body) => {
    const url = await cluster(await hostileShard((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(PATHS_BODY);
    }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    }));
    const r = await api(url, 'GET', '/api/v1/paths');
    expect(r.body.paths).toEqual(['/good/x', '/good/y']);
    expect(r.body.partial.missing).toEqual([{ shard: 'b', reason: 'not live (lease expired or probe failed)' }]);
  });
});
