/**
 * A merged (cluster) /history whose client stops reading, and merged answers counted in
 * historyAnswersMax. The local answer was cut after historyStallMs (16ca79c) and counted
 * (ad9e1e7), but the merged answer of a front node was neither: a client that read its
 * first bytes and stopped held the front node's connection and a stream of every shard
 * (a cursor and a block each) for good, and any number of them streamed at once.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';
import { frontNode, inFlight } from './helpers/merge-cluster.js';
import { noiseBatches } from './helpers/noise-batches.js';
import { until } from './helpers/until.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { historyStallMs: limits.historyStallMs, historyReadBytesPerSMin: limits.historyReadBytesPerSMin, historyAnswersMax: limits.historyAnswersMax };
const T0 = 1_763_000_000_000_000;

let shards: TestServer[];
let front: TestServer;
/** History requests each shard is answering now (the front node's streams of it). */
let shardRequests: Array<() => number>;
const sockets: Socket[] = [];

beforeAll(async () => {
  // Two shards of about 15 MB of incompressible history each: more than loopback buffers take.
  shards = await Promise.all([startServer(noiseBatches(T0)), startServer(noiseBatches(T0 + 500))]);
  shardRequests = shards.map((s) => inFlight(s));
  front = await frontNode(shards.map((s, i) => ({ id: `s${i}`, url: s.url })));
}, 60_000);

afterAll(async () => {
  await front?.close();
  for (const s of shards ?? []) await s.close();
});

afterEach(() => {
  Object.assign(limits, saved);
  for (const s of sockets.splice(0)) s.destroy();
});

/** A raw GET of the front node that reads the first bytes and then nothing; `closed` resolves once the socket closes. */
function stuckGet(path: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const u = new URL(front.url);
  const s = connect(Number(u.port), u.hostname);
  sockets.push(s);
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.on('error', () => undefined);
  s.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
  return new Promise((resolve) => s.once('data', () => {
    s.pause();
    resolve({ socket: s, closed });
  }));
}

function connections(srv: TestServer): Promise<number> {
  return new Promise((resolve, reject) => srv.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

describe('a merged history answer', () => {
  it('whose client stops reading is cut, and the shards\' streams let go', async () => {
    limits.historyStallMs = 500;
    limits.historyReadBytesPerSMin = 16 * 1024 * 1024;
    await Promise.all(['ndjson', 'csv'].map((f) => stuckGet(`/api/v1/history?format=${f}&scope=cluster`)));
    expect(shardRequests.map((n) => n())).toEqual([2, 2]);
    await until(async () => (await connections(front)) === 0, 10_000, 'the stuck merged answers cut');
    // Each shard's streams to the front node end with them (keep-alive connections may stay).
    await until(() => shardRequests.every((n) => n() === 0), 10_000, 'the shard streams let go');
    const res = await request(`${front.url}/api/v1/history?format=ndjson&scope=cluster`, { reset: true });
    expect(res.statusCode).toBe(200);
    expect((await res.body.text()).split('\n').filter((l) => l !== '').length).toBe(2000);
  }, 60_000);

  it('counts in historyAnswersMax: past it 503 TPD_BUSY with Retry-After', async () => {
    limits.historyAnswersMax = 2;
    await stuckGet('/api/v1/history?format=ndjson&scope=cluster');
    await stuckGet('/api/v1/history?format=csv&scope=cluster');
    const res = await request(`${front.url}/api/v1/history?format=ndjson&scope=cluster`);
    const body = (await res.body.json()) as { error?: { code?: string } };
    expect(res.statusCode).toBe(503);
    expect(body.error?.code).toBe('TPD_BUSY');
    expect(res.headers['retry-after']).toBeDefined();
  }, 60_000);
});
