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
import { describe, expect, it } from 'vitest';
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
});
