/**
 * The cluster's Kafka fence (docs/cluster.md, "Exactly once") when its Redis hash is not
 * this partition's: `done` past the partition's end (the topic deleted and made again under
 * the same name, the hash restored from elsewhere) made every message below it "recorded by
 * a previous owner": skipped and committed, never recorded, in silence; `done` that is not a
 * number failed the claim script, which the shard took for Redis unreachable and waited on
 * for ever. Now such a `done` skips nothing (logged, counted as stale_fences). A shard
 * process (built), the run's real broker and Redis.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KafkaFence } from '../server/cluster/kafka-fence.js';
import { ShardCluster, useShardPeers } from './helpers/cluster.js';
import { createTopic, produce } from './helpers/kafka.js';
import { uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const peers = useShardPeers();

describe('a Kafka fence that is not the partition\'s', () => {
  it('skips nothing: done past the high watermark, and done that is not a number', async () => {
    const topic = uniqueName('audit9-fence');
    const name = uniqueName('ck');
    await createTopic(peers().kafka.kafka, topic, 2);
    const group = `tapedeck-${name}-k`;
    const key = (p: number): string => `tapedeck:cluster:${name}:kafka:${group}:${topic}:${p}`;
    const ctl = new Redis(peers().redis.url);
    try {
      await ctl.hset(key(0), 'done', '1000');
      await ctl.hset(key(1), 'done', 'not-an-offset');
      const N = 10;
      await produce(peers().kafka.kafka, topic, Array.from({ length: N }, (_, i) => ({ key: `m${i}`, value: JSON.stringify(i), partition: i % 2 })));
      const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
      const s = await c.start('s1', { sources: [{ name: 'k', type: 'kafka', brokers: [peers().kafka.brokers], topics: [topic], path: '/k/{key}', session_timeout: '6s' }] });
      type Status = { kafka: Array<{ claims: number; stale_fences: number }> };
      const status = async (): Promise<Status> => (await (await fetch(`${s.url}/api/v1/cluster/status`)).json()) as Status;
      await until(async () => {
        const h = await Promise.all([0, 1].map((p) => ctl.hget(key(p), 'done')));
        return h[0] === String(N / 2) && h[1] === String(N / 2);
      }, 30_000, 'both partitions recorded through their last offset');
      expect((await status()).kafka[0]?.stale_fences).toBe(2);
      expect(await c.stop(s)).toBe(0);
      const keys = (await readArchive(s.archive)).flatMap((b) => b.updates.map(([p]) => p)).filter((p) => p.startsWith('/k/')).sort();
      expect(keys).toEqual(Array.from({ length: N }, (_, i) => `/k/m${i}`).sort());
    } finally {
      ctl.disconnect();
    }
  }, 60_000);

  it('skips what another shard recorded past a fetch\'s watermark: done past the fetch\'s end but within the broker\'s now is trusted', async () => {
    // Shard A fetched offsets 2..5 when the partition ended at 6, and claims late; meanwhile
    // shard B fetched later, recorded 2..7 and set done = 8. The broker's end is now 10:
    // done = 8 is this partition's, A must skip (the first version of the stale-fence check
    // took done past the fetch's watermark for another topic's and recorded 2..5 again).
    const topic = uniqueName('audit9-fence-ahead');
    const name = uniqueName('ck');
    await createTopic(peers().kafka.kafka, topic, 1);
    await produce(peers().kafka.kafka, topic, Array.from({ length: 10 }, (_, i) => ({ key: `m${i}`, value: String(i), partition: 0 })));
    const group = `tapedeck-${name}-k`;
    const key = `tapedeck:cluster:${name}:kafka:${group}:${topic}:0`;
    const redis = new Redis(peers().redis.url);
    const admin = peers().kafka.kafka.admin();
    await admin.connect();
    try {
      const now = async (): Promise<string> => ((await admin.fetchTopicOffsets(topic)).find((o) => o.partition === 0) as { high: string }).high;
      expect(await now()).toBe('10');
      const fence = new KafkaFence({ redis, cluster: name, group, shard: 'a', log: pino({ level: 'silent' }), recordedUpTo: async () => undefined });
      await redis.hset(key, 'done', '8');
      expect(await fence.claim(topic, 0, '2', '5', false, '6', now)).toEqual({ kind: 'skip', done: 8n });
      expect(await fence.claim(topic, 0, '2', '9', false, '6', now)).toEqual({ kind: 'ok', from: 8n, tookOverFrom: undefined });
      expect(await redis.hget(key, 'done')).toBe('8');
      expect(fence.stats.staleFences).toBe(0);
      // Past the broker's end now too: not this partition's; recorded from the fetch.
      await redis.hdel(key, 'ishard', 'ifirst', 'ilast', 'isince');
      await redis.hset(key, 'done', '1000');
      expect(await fence.claim(topic, 0, '2', '5', false, '6', now)).toEqual({ kind: 'ok', from: 2n, tookOverFrom: undefined });
      expect(fence.stats.staleFences).toBe(1);
    } finally {
      await admin.disconnect();
      redis.disconnect();
    }
  }, 60_000);
});
