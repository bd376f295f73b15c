/**
 * A shard whose registry entry in Redis cannot be read (written by hand, by another version,
 * or damaged) was skipped by the membership's shard list, so merged reads lacked its data
 * without a word: no partial marker. It is now listed, not live, and named missing with its
 * reason. The run's real Redis; a real shard and a real front node reading membership.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Membership, clusterKeyPrefix } from '../server/cluster/membership.js';
import { PEER_START_MAX_MS, sharedRedis, uniqueName } from './helpers/peers.js';
import type { RedisPeer } from './helpers/redis.js';
import { api, startServer } from './helpers/server.js';

let redis: RedisPeer;
beforeAll(async () => {
  redis = await sharedRedis();
}, PEER_START_MAX_MS);

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * A cluster in Redis: shard "a" (a real server holding /g, its lease held) and `others`
 * (id -> registry entry; `leased` of them with a lease too); a front node reading that
 * membership. Its URL.
 */
async function registryCluster(others: Record<string, string>, leased: readonly string[] = []): Promise<string> {
  const cluster = uniqueName('audit9-reg');
  const p = clusterKeyPrefix(cluster);
  const good = await startServer([{ ts: 1_760_000_000_000_000, updates: [['/g', 1]] }]);
  closers.push(() => good.close());
  const ctl = new Redis(redis.url);
  closers.push(() => ctl.disconnect());
  await ctl.hset(`${p}:shards`, { a: JSON.stringify({ url: good.url, globs: [] }), ...others });
  for (const id of ['a', ...leased]) await ctl.hset(`${p}:lease:${id}`, 'url', good.url, 'holder', `${id}/test`);
  const dir = await Membership.reader({ redisUrl: redis.url, cluster, log: pino({ level: 'silent' }) });
  closers.push(() => dir.stop());
  const front = await startServer([], { directory: dir });
  closers.push(() => front.close());
  return front.url;
}

describe('an unreadable registry entry', () => {
  it.each([
    ['not JSON', '{"url":'],
    ['globs that are not strings', JSON.stringify({ url: 'http://127.0.0.1:1', globs: [1] })],
    ['no url', JSON.stringify({ globs: [] })],
  ])('%s: the shard is named missing by merged reads, never left out', async (_what, entry) => {
    const url = await registryCluster({ b: entry }, ['b']);
    const r = await api(url, 'GET', '/api/v1/paths');
    expect(r.status).toBe(200);
    expect(r.body.paths).toEqual(['/g']);
    expect(r.body.partial).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 'b', reason: 'registry entry unreadable' }] });
  });
});

describe('many missing shards', () => {
  it('the Tapedeck-Partial header stays readable (at most clusterPartialHeaderCharsMax); the body names every one', async () => {
    // 120 registered shards whose leases ran out, with ids of 200 characters: 29 KB of header before.
    const gone = Array.from({ length: 120 }, (_, i) => `shard-${String(i).padStart(3, '0')}-${'x'.repeat(190)}`);
    const url = await registryCluster(Object.fromEntries(gone.map((id) => [id, JSON.stringify({ url: 'http://127.0.0.1:1', globs: [] })])));
    const res = await fetch(`${url}/api/v1/paths`);
    expect(res.status).toBe(200);
    const header = res.headers.get('tapedeck-partial') as string;
    expect(header.length).toBeLessThanOrEqual(2048);
    expect(header).toMatch(/^TPD_SHARDS_MISSING: shard-000-x+ \(not live \(lease expired or probe failed\)\), .*, and \d+ more \(the body names every one\)$/);
    const body = (await res.json()) as { paths: string[]; partial: { missing: Array<{ shard: string }> } };
    expect(body.paths).toEqual(['/g']);
    expect(body.partial.missing.map((m) => m.shard)).toEqual(gone);
  });
});
