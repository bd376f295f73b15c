/**
 * Cluster shards and their non-Kafka sources (docs/cluster.md): two shards polling the same
 * upstream each record only the paths they own (the rest counted); with Redis gone a shard
 * goes on recording what it owns, its directory answers TPD_CLUSTER_UNAVAILABLE, and it
 * is back in the directory once Redis returns.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { Membership } from '../server/cluster/membership.js';
import { ShardCluster, useShardPeers, type Shard } from './helpers/cluster.js';
import { uniqueName } from './helpers/peers.js';
import { startRedis } from './helpers/redis.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const peers = useShardPeers({ kafka: false });
const quiet = pino({ level: 'silent' });

interface Status { known_shards: unknown[]; not_owned_updates: number; redis: string }
async function status(s: Shard): Promise<Status> {
  return (await (await fetch(`${s.url}/api/v1/cluster/status`)).json()) as Status;
}

async function paths(s: Shard): Promise<string[]> {
  return [...new Set((await readArchive(s.archive)).flatMap((b) => b.updates.map((u) => u[0])))].sort();
}

/** An upstream answering the same JSON document to every GET. */
async function upstream(doc: unknown): Promise<string> {
  const srv: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

describe('cluster sources', () => {
  it('records, of a poll shared by two shards, only the paths each owns', async () => {
    const url = await upstream({ east: { cpu: 1, mem: 2 }, west: { cpu: 3 }, lab: { t: 4 } });
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name: uniqueName('poll') });
    const src = [{ name: 'dc', type: 'http-json', url, path: '/dc', mode: 'leaves', interval: '50ms' }];
    const east = await c.start('east', { globs: ['/dc/east/**'], sources: src });
    const west = await c.start('west', { globs: ['/dc/west/**'], sources: src });
    await until(async () => (await status(east)).not_owned_updates > 0 && (await status(west)).not_owned_updates > 0, 15_000, 'both shards polled');
    await c.stop(east);
    await c.stop(west);
    expect(await paths(east)).toEqual(['/dc/east/cpu', '/dc/east/mem']);
    // /dc/lab/t is owned by no shard: a poll records only what its shard owns.
    expect(await paths(west)).toEqual(['/dc/west/cpu']);
  });

  it('goes on recording its own pushes without Redis; the directory says unavailable until Redis is back', async () => {
    const redis = await startRedis();
    onTestFinished(() => redis.destroy());
    const name = uniqueName('noredis');
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: redis.url, name });
    const a = await c.start('a', { globs: ['/a/**'] });
    const b = await c.start('b', { globs: ['/b/**'] });
    await until(async () => (await status(a)).known_shards.length === 2, 15_000, 'a knows b');
    const dir = await Membership.reader({ redisUrl: redis.url, cluster: name, log: quiet });
    onTestFinished(() => dir.stop());
    await redis.kill();
    const err = await dir.shards().then(() => undefined, (e: unknown) => e);
    expect(isTapedeckError(err, 'TPD_CLUSTER_UNAVAILABLE')).toBe(true);
    await until(async () => (await status(a)).redis === 'unreachable', 15_000, 'a sees Redis gone');
    const push = (body: string): Promise<Response> => fetch(`${a.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    expect((await push('{"updates":{"/a/1":1}}\n')).status).toBe(200);
    // The last membership read still names b's paths' owner.
    expect((await push('{"updates":{"/b/1":1}}\n')).status).toBe(421);
    // Redis comes back empty: both shards register again at their next renewal.
    await redis.restart();
    await until(async () => (await dir.shards().catch(() => [])).filter((s) => s.live).length === 2, 30_000, 'both shards back in the directory');
    await c.stop(a);
    await c.stop(b);
    expect(await paths(a)).toEqual(['/a/1']);
  });
});
