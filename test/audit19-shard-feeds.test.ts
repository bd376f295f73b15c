/**
 * A shard's batches feeds (GET /api/v1/shard/batches) whose clients do not read them
 * (SERVER_LIMITS clusterShardFeed*). Measured before: a feed waits for its socket (TCP pushes
 * back, about one chunk queued in the shard's process), but a client that read the first
 * bytes and stopped held its feed, a cursor with its decoded block (about 1 MB) and the
 * kernels' buffers (about 4 MB on loopback) for ever, and any number were served: a hundred
 * held 100 MB of the shard's memory and 370 MB of the kernel's, never let go. Now each chunk
 * must be taken within clusterShardFeedStallMs (shortened here) plus its reading time, else
 * the connection is reset (logged `unresponsive`); at most clusterShardFeedsMax are served at
 * once (503 TPD_BUSY past it); and a merged session whose feed was cut while it was paused
 * reads on from its position, no shard named missing.
 */
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeShardBatches } from '../server/cluster/shard-batches.js';
import { SERVER_LIMITS } from '../server/limits.js';
import type { Batch } from '../protocol/value.js';
import { frontNode, inFlight } from './helpers/merge-cluster.js';
import { noiseBatches } from './helpers/noise-batches.js';
import { startServer, TestWs, api, type Frame, type TestServer } from './helpers/server.js';
import { until, waitFor } from './helpers/until.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
const T0 = 1_763_000_000_000_000;
const BATCHES = noiseBatches(T0);

let shard: TestServer;
let logs: Array<Record<string, unknown>>;
let feeds: () => number;
/** The shard's side of every connection, to read what it queues. */
let serverSockets: Set<Socket>;
const closers: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  logs = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  shard = await startServer(BATCHES, { loggerInstance: logger });
  feeds = inFlight(shard);
  serverSockets = new Set();
  shard.app.server.on('connection', (s: Socket) => {
    serverSockets.add(s);
    s.once('close', () => serverSockets.delete(s));
  });
});

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await shard.close();
  Object.assign(limits, saved);
});

/** A feed request over a raw socket that reads the first bytes and then stops reading. */
async function stuck(from = T0): Promise<Socket> {
  const u = new URL(shard.url);
  const s = connect(Number(u.port), u.hostname);
  closers.push(() => void s.destroy());
  s.on('error', () => undefined);
  s.write(`GET /api/v1/shard/batches?from=${from} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  s.pause();
  return s;
}

/** A whole feed read: its batches' times. */
async function feed(from = T0): Promise<number[]> {
  const res = await request(`${shard.url}/api/v1/shard/batches?from=${from}`);
  expect(res.statusCode).toBe(200);
  const ts: number[] = [];
  for await (const b of decodeShardBatches(res.body as AsyncIterable<Buffer>, SERVER_LIMITS.clusterShardLineCharsMax, () => 0, from)) ts.push(b.ts);
  return ts;
}

const cuts = (): Array<Record<string, unknown>> => logs.filter((l) => String(l.msg).startsWith('batches feed cut'));

describe('batches feeds nobody reads', () => {
  it('queue one chunk each in the shard, and are reset once they take none within clusterShardFeedStallMs; others are served meanwhile', async () => {
    limits.clusterShardFeedStallMs = 1000;
    limits.clusterShardFeedReadBytesPerSMin = 1024 * 1024 * 1024;
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => stuck(T0 + i * 10_000)));
    expect(feeds()).toBe(6);
    // Other work goes on: the shard's probe and a whole feed.
    expect((await api(shard.url, 'GET', '/api/v1/shard')).status).toBe(200);
    expect(await feed(T0 + 990_000)).toEqual(BATCHES.slice(990).map((b) => b.ts));
    // The stuck ones are reset, each logged with its reason; the shard holds nothing for them.
    await until(() => feeds() === 0, 15_000, 'the stuck feeds to be cut');
    expect(cuts()).toHaveLength(6);
    expect(cuts()[0]).toMatchObject({ reason: 'unresponsive', client: '127.0.0.1' });
    const ports = new Set(clients.map((c) => c.localPort));
    await until(() => ![...serverSockets].some((s) => ports.has(s.remotePort)), 5000, 'the shard to let their connections go');
    // Their clients see their body end short: never the chunked terminator.
    const bodies = await Promise.all(clients.map((s) => new Promise<string>((resolve) => {
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.once('close', () => resolve(text));
      s.resume();
    })));
    for (const b of bodies) expect(b.endsWith('\r\n0\r\n\r\n')).toBe(false);
    // A feed that reads is never cut, however long it takes overall.
    expect(await feed()).toHaveLength(BATCHES.length);
  }, 60_000);

  it('are served at most clusterShardFeedsMax at once: past it 503 TPD_BUSY with Retry-After; slots come back', async () => {
    limits.clusterShardFeedsMax = 3;
    // Refused before streaming (a bad glob): no slot kept.
    for (let i = 0; i < 5; i++) expect((await api(shard.url, 'GET', `/api/v1/shard/batches?from=${T0}&glob=${encodeURIComponent('[')}`)).status).toBe(400);
    const clients = await Promise.all([stuck(), stuck(T0 + 10_000), stuck(T0 + 20_000)]);
    // What the shard holds for each, past what the kernel took: the chunk in its socket, no more.
    await until(() => [...serverSockets].filter((s) => s.writableLength > 0).length === 3, 10_000, 'every feed to wait on its socket');
    for (const s of serverSockets) expect(s.writableLength).toBeLessThanOrEqual(2 * SERVER_LIMITS.clusterShardChunkBytesTarget);
    const busy = await request(`${shard.url}/api/v1/shard/batches?from=${T0}`);
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe(String(Math.ceil(SERVER_LIMITS.clusterShardRetryMs / 1000)));
    const { error } = (await busy.body.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('TPD_BUSY');
    expect(error.message).toContain('clusterShardFeedsMax');
    // Other routes are served.
    expect((await api(shard.url, 'GET', '/api/v1/shard')).status).toBe(200);
    for (const s of clients) s.destroy();
    const whole = await waitFor(async () => {
      const r = await request(`${shard.url}/api/v1/shard/batches?from=${T0}`);
      if (r.statusCode !== 200) {
        await r.body.dump();
        return undefined;
      }
      let n = 0;
      for await (const _b of decodeShardBatches(r.body as AsyncIterable<Buffer>, SERVER_LIMITS.clusterShardLineCharsMax, () => 0, T0)) n++;
      return n;
    }, 5000, 'a feed once the stuck clients left');
    expect(whole).toBe(BATCHES.length);
  }, 60_000);

  it('a merged session paused past the cut reads on from its position, no shard named missing', async () => {
    limits.clusterShardFeedStallMs = 1000;
    limits.clusterShardFeedReadBytesPerSMin = 1024 * 1024 * 1024;
    const front = await frontNode([{ id: 's0', url: shard.url }]);
    closers.push(() => front.close());
    const s = await api(front.url, 'POST', '/api/v1/sessions', { state: 'pause', pos: 'beginning' });
    expect(s.status).toBe(201);
    const w = await TestWs.open(front.url + (s.body as { stream: string }).stream);
    closers.push(() => w.close());
    await w.next((f) => f.type === 'state');
    // Ten batches in: the session's feed is open, the rest waits in the sockets, unread.
    w.send({ type: 'control', set: { pos: '+10' } });
    await w.next((f) => f.type === 'state');
    await until(() => cuts().length === 1, 15_000, 'the shard to cut the paused feed');
    w.send({ type: 'control', set: { speed: 'unlimited', state: 'play' } });
    const got: Batch[] = [];
    while (got.length < BATCHES.length - 10) {
      const f: Frame = await w.next((x) => x.type === 'batch' || x.type === 'batches', 30_000);
      got.push(...(f.type === 'batch' ? [{ ts: f.ts as number, updates: f.updates as Batch['updates'] }] : (f.batches as Batch[])));
    }
    expect(got.map((b) => b.ts)).toEqual(BATCHES.slice(10).map((b) => b.ts));
    expect(got[500]?.updates).toEqual(BATCHES[510]?.updates);
    expect(w.frames.filter((f) => f.type === 'info' && f.code === 'TPD_SHARDS_MISSING')).toEqual([]);
  }, 60_000);
});
