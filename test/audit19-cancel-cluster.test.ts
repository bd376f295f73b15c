/**
 * A merged (cluster) read whose client leaves lets go of its shards at once. Before, the
 * front node's requests to the shards carried no signal: a client that asked a merged
 * /paths, /state, /coverage or /history and hung up left the front node waiting on every
 * shard until it answered or its time ran out (clusterShardJsonAnswerMs, 15 s, for a JSON
 * answer; clusterShardIdleTimeoutMs, 10 s, for a history stream), holding a connection of
 * its pool to each shard (clusterShardConnectionsMax): as many gone clients as that pool
 * holds made every merged read wait behind them.
 *
 * Real processes: two shards (ChildShard, each a server over its own archive), each behind
 * a TCP proxy (test/helpers/holding-proxy.ts) that lets the answers of the route under test
 * through up to their headers and holds their bodies: slow shards. A front node whose
 * directory lists the proxies, its shard pool cut to two connections. Two clients send the
 * read over raw sockets and hang up once both shards are answering them: the proxies must
 * see the front node close those connections within CLOSED_WITHIN_MS, the front node count
 * both in tapedeck_requests_canceled_total, and a new merged read (answers no longer held)
 * be answered within ANSWERED_WITHIN_MS, whole.
 *
 * The shard's side of a merged state: POST /api/v1/shard/updated walks its archive back to
 * each path's newest update, over the whole archive for a path updated long ago (1 800 000
 * batches: seconds), and went on after the node that asked aborted its request.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { canceledCount, hangUpLater } from './helpers/hang-up.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startArchiveServer } from './helpers/child-server.js';
import { ChildShard, frontNode, splitWorkload } from './helpers/merge-cluster.js';
import { HoldingProxy } from './helpers/holding-proxy.js';
import type { TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { clusterShardConnectionsMax: limits.clusterShardConnectionsMax };
/** Far below the shards' own bounds (10 s, 15 s) that let the front node go without the fix. */
const CLOSED_WITHIN_MS = 3_000;
const ANSWERED_WITHIN_MS = 5_000;

const closers: Array<() => unknown> = [];
afterEach(async () => {
  Object.assign(limits, saved);
  for (const c of closers.splice(0).reverse()) await c();
});

const W = splitWorkload(19, 30, 2);

/** Each case: the merged read, the shard route its answers come from, and what a whole answer holds. */
const cases: Array<{ read: string; shardRoute: string; whole: (res: Response) => Promise<void> }> = [
  {
    read: '/api/v1/paths',
    shardRoute: '/api/v1/paths',
    whole: async (res) => {
      const body = (await res.json()) as { count: number; partial?: unknown };
      expect(body.partial).toBeUndefined();
      expect(body.count).toBe(new Set(W.all.flatMap((b) => b.updates.map(([p]) => p))).size);
    },
  },
  {
    read: '/api/v1/state',
    shardRoute: '/api/v1/state',
    whole: async (res) => {
      const body = (await res.json()) as { values: object; partial?: unknown };
      expect(body.partial).toBeUndefined();
      expect(Object.keys(body.values).length).toBe(new Set(W.all.flatMap((b) => b.updates.map(([p]) => p))).size);
    },
  },
  {
    read: `/api/v1/state?at=${new Date((W.all[40] as { ts: number }).ts / 1000).toISOString()}`,
    shardRoute: '/api/v1/state',
    whole: async (res) => expect(((await res.json()) as { partial?: unknown }).partial).toBeUndefined(),
  },
  {
    read: '/api/v1/coverage',
    shardRoute: '/api/v1/coverage',
    whole: async (res) => expect(((await res.json()) as { partial?: unknown }).partial).toBeUndefined(),
  },
  {
    read: '/api/v1/history',
    shardRoute: '/api/v1/history',
    whole: async (res) => expect((await res.text()).split('\n').filter((l) => l !== '')).toHaveLength(W.all.length),
  },
  {
    read: '/api/v1/history?format=parquet',
    shardRoute: '/api/v1/shard/batches',
    whole: async (res) => expect(Buffer.from(await res.arrayBuffer()).subarray(-4).toString('latin1')).toBe('PAR1'),
  },
];

describe('a merged read whose client leaves', () => {
  for (const c of cases) {
    it(`${c.read}: the front node closes its requests to the slow shards at once, counts it canceled, and answers the next read`, async () => {
      const shards = await Promise.all(W.parts.map((p) => ChildShard.start(p)));
      closers.push(() => Promise.all(shards.map((s) => s.kill9())));
      let holding = true;
      const proxies = await Promise.all(shards.map((s) => HoldingProxy.start(s.url, (path) => holding && path === c.shardRoute)));
      closers.push(() => Promise.all(proxies.map((p) => p.close())));
      // The pool to each shard: as many connections as gone clients below.
      limits.clusterShardConnectionsMax = 2;
      const front: TestServer = await frontNode(proxies.map((p, i) => ({ id: `s${i}`, url: p.url })));
      closers.push(() => front.close());
      const before = await canceledCount(front.url);

      const gone = await Promise.all([hangUpLater(front.url, c.read), hangUpLater(front.url, c.read)]);
      await until(() => proxies.every((p) => p.held.length === 2), 20_000, 'both shards answering both gone clients (bodies held)');
      const leftAt = Date.now();
      for (const s of gone) s.destroy();
      await until(() => proxies.every((p) => p.held.every((h) => h.closedAt !== undefined)), CLOSED_WITHIN_MS, 'the front node to close its requests to the shards');
      const late = proxies.flatMap((p) => p.held).map((h) => (h.closedAt as number) - leftAt);
      expect(Math.max(...late)).toBeLessThan(CLOSED_WITHIN_MS);
      await until(async () => (await canceledCount(front.url)) >= before + 2, CLOSED_WITHIN_MS, 'both gone clients counted canceled');

      // The shards answer again: a new merged read is answered promptly, and whole.
      holding = false;
      const started = Date.now();
      const res = await fetch(front.url + c.read, { signal: AbortSignal.timeout(ANSWERED_WITHIN_MS) });
      expect(res.status).toBe(200);
      expect(res.headers.get('tapedeck-partial')).toBeNull();
      await c.whole(res);
      expect(Date.now() - started).toBeLessThan(ANSWERED_WITHIN_MS);
    }, 60_000);
  }
});

describe("a shard's update-times walk whose asker leaves", () => {
  it('stops at its next round or block and is counted canceled', async () => {
    const T0 = 1_765_000_000_000_000;
    // /old set once at the start, then 1 800 000 batches of /x: its walk crosses them all.
    // A walk over 600 000 took about 330 ms with the blocks cached: the kill at 300 ms could
    // land after its end (nothing to cancel); this one takes about a second.
    const shard = await startArchiveServer(`archive.writer.append([['/old', 1]], ${T0});
for (let b = 1; b <= 1800000; b++) archive.writer.append([['/x', b]], ${T0} + b * 1000);`);
    closers.push(() => shard.close());
    const body = JSON.stringify({ at_us: null, paths: ['/old'] });
    const whole = await fetch(`${shard.url}/api/v1/shard/updated`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(await whole.json()).toEqual({ at_us: null, times: [T0] });
    const before = await canceledCount(shard.url);
    const u = new URL(shard.url);
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = connect(Number(u.port), u.hostname, () => {
        c.write(`POST /api/v1/shard/updated HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        resolve(c);
      });
      c.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 300));
    s.destroy();
    await until(async () => (await canceledCount(shard.url)) > before, 20_000, 'the walk counted canceled');
    expect(await shard.healthAnswers(5_000)).toBe(true);
  }, 60_000);
});
