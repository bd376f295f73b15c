/**
 * Cluster membership and ownership with real shard processes and a real Redis
 * (docs/cluster.md): registration, the directory, lease expiry, the overlap refusal, and
 * pushes (NDJSON, msgpack over WebSocket, remote_write) of another shard's paths refused
 * whole with 421 TPD_NOT_OWNER naming the owner. Pure glob overlap cases too.
 */
import { pino } from 'pino';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMsgpack } from '../protocol/value-msgpack.js';
import { Membership } from '../server/cluster/membership.js';
import { globsOverlap } from '../server/cluster/ownership.js';
import type { ShardInfo } from '../server/cluster/directory.js';
import { ShardCluster, useShardPeers, type Shard } from './helpers/cluster.js';
import { uniqueName } from './helpers/peers.js';
import { encodeWriteRequest, snappyLiteral } from './helpers/promql-peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until, waitFor } from './helpers/until.js';

const peers = useShardPeers({ kafka: false });
const quiet = pino({ level: 'silent' });
const readers: Membership[] = [];
afterAll(async () => {
  for (const r of readers) await r.stop();
});

async function directory(name: string): Promise<Membership> {
  const r = await Membership.reader({ redisUrl: peers().redis.url, cluster: name, log: quiet });
  readers.push(r);
  return r;
}

async function push(s: Shard, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function recordedPaths(s: Shard): Promise<string[]> {
  return (await readArchive(s.archive)).flatMap((b) => b.updates.map((u) => u[0])).sort();
}

describe('glob overlap', () => {
  it.each([
    ['/a/**', '/a/b/c', true],
    ['/a/*', '/a/b/**', true],
    ['/a/**', '/a', true],
    ['/a/x-*', '/a/*-y', true],
    ['/a/x-*', '/a/y-*', false],
    ['/a/*-x', '/a/*-y', false],
    ['/a/*/c', '/a/b/d', false],
    ['/**/c', '/a/**/d', false],
    ['/**/c', '/a/**', true],
    ['/a/b', '/a/b/c', false],
    ['/a/*x*y', '/a/yx', false],
    ['/a/*x*y', '/a/xy', true],
  ])('%s and %s overlap: %s', (a, b, want) => {
    expect(globsOverlap(a, b)).toBe(want);
    expect(globsOverlap(b, a)).toBe(want);
  });
});

describe('shards in Redis', () => {
  it('registers shards, refuses pushes of another shard\'s paths whole (NDJSON, msgpack WebSocket, remote_write), and shows a dead shard live: false', async () => {
    const name = uniqueName('memb');
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
    const sources = [{ name: 'push', type: 'push' }, { name: 'prom', type: 'remote_write' }];
    const a = await c.start('a', { globs: ['/a/**'], sources });
    const b = await c.start('b', { globs: ['/b/**', '/prom/up_b/**'], sources });
    const dir = await directory(name);
    const live = await waitFor(async () => {
      const s = await dir.shards();
      return s.length === 2 && s.every((x) => x.live && x.horizonUs >= 0) ? s : undefined;
    }, 15_000, 'both shards live in the directory');
    expect(live.map((s: ShardInfo) => [s.id, s.url, s.globs])).toEqual([['a', a.url, ['/a/**']], ['b', b.url, ['/b/**', '/prom/up_b/**']]]);
    // A shard learns of a newer one at its next renewal (TTL/4).
    await until(async () => ((await (await fetch(`${a.url}/api/v1/cluster/status`)).json()) as { known_shards: unknown[] }).known_shards.length === 2, 15_000, 'a knows b');

    // A's own and unowned paths are recorded; a body with one of b's paths is refused whole.
    expect((await push(a, '{"updates":{"/a/1":1}}\n{"updates":{"/z/1":1}}\n')).status).toBe(200);
    const refused = await push(a, '{"updates":{"/a/2":2}}\n{"updates":{"/b/x":3}}\n');
    expect(refused.status).toBe(421);
    expect(refused.body.error).toMatchObject({ code: 'TPD_NOT_OWNER', message: expect.stringContaining(`shard b at ${b.url}`), owner: { shard: 'b', url: b.url } });
    expect((await push(b, '{"updates":{"/b/x":3}}\n')).status).toBe(200);
    // Its committed horizon reaches Redis at b's next renewal (TTL/4).
    await until(async () => ((await dir.shards()).find((s) => s.id === 'b')?.horizonUs ?? 0) > 0, 15_000, 'b\'s horizon in Redis');

    // The same over the WebSocket, in msgpack: refused, and the socket stays open.
    const ws = new WebSocket(`${a.url.replace('http', 'ws')}/api/v1/ingest/ws?ack=durable`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const send = (m: Uint8Array): Promise<Record<string, unknown>> => new Promise((resolve) => {
      ws.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>));
      ws.send(m, { binary: true });
    });
    expect(await send(encodeMsgpack([{ updates: { '/a/3': 3 } }, { updates: { '/b/y': 4 } }]))).toMatchObject({ error: { code: 'TPD_NOT_OWNER', owner: { shard: 'b', url: b.url } } });
    expect(await send(encodeMsgpack({ updates: { '/a/4': 4 } }))).toMatchObject({ accepted_lines: 1 });
    ws.close();

    // remote_write: one series b owns among a's makes the whole request 421.
    const rw = (series: Array<{ labels: Record<string, string>; samples: Array<[number, number]> }>): Promise<Response> => fetch(`${a.url}/api/v1/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' },
      body: snappyLiteral(encodeWriteRequest(series)),
    });
    const now = Date.now();
    const bad = await rw([{ labels: { __name__: 'up_a' }, samples: [[now, 1]] }, { labels: { __name__: 'up_b', job: 'x' }, samples: [[now, 1]] }]);
    expect(bad.status).toBe(421);
    expect(await bad.json()).toMatchObject({ error: { code: 'TPD_NOT_OWNER', owner: { shard: 'b', url: b.url } } });

    expect(await recordedPaths(a)).toEqual(['/a/1', '/a/4', '/z/1']);
    // The shards' directory is the one merged reads use: any shard answers for both.
    const merged = (await (await fetch(`${a.url}/api/v1/paths`)).json()) as { paths: string[] };
    expect(merged.paths).toEqual(expect.arrayContaining(['/a/1', '/b/x']));

    // kill -9: the lease lapses (TTL 1 s) and the directory says so; the registry keeps b.
    await c.kill9(b);
    const dead = await waitFor(async () => (await dir.shards()).find((s) => s.id === 'b' && !s.live), 15_000, 'b live: false');
    expect(dead).toMatchObject({ url: b.url, globs: ['/b/**', '/prom/up_b/**'] });
    expect(dead.horizonUs).toBeGreaterThan(0);
    // Ownership is configuration, not liveness: b's paths are still refused by a.
    expect((await push(a, '{"updates":{"/b/z":1}}\n')).status).toBe(421);
    const b2 = await c.restart(b);
    await until(async () => (await dir.shards()).find((s) => s.id === 'b')?.live === true, 15_000, 'b live again');
    expect(await recordedPaths(b2)).toContain('/b/x');
    await c.stop(a);
    // A clean stop gives the lease up at once.
    expect((await dir.shards()).find((s) => s.id === 'a')?.live).toBe(false);
    await c.killAll();
  });

  it('refuses to start a shard whose globs overlap another shard\'s, naming both', async () => {
    const name = uniqueName('overlap');
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
    await c.start('left', { globs: ['/site/*/rack-1/**'] });
    const err = await c.start('right', { globs: ['/other/**', '/site/east/**'] }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/shard right's "\/site\/east\/\*\*" overlaps shard left's "\/site\/\*\/rack-1\/\*\*"/);
    // Disjoint globs join.
    await c.start('third', { globs: ['/site/*/rack-2/**'] });
    const s = await (await directory(name)).shards();
    expect(s.map((x) => x.id)).toEqual(['left', 'third']);
    await c.killAll();
  });
});
