/**
 * A shard of a cluster (docs/cluster.md) refuses a message whose batch the writer refuses as
 * the lone source does (docs/kafka.md, "Refused messages"): counted, logged with its topic,
 * partition and offset, committed, and the partition goes on. The case: a message exploded
 * into exactly explode's leafUpdatesMax (1 000 000) leaves, which the lone source records,
 * plus the shard's marker is one update past batchUpdatesMax: the writer refused the batch,
 * the shard settled its intent and threw, and kafkajs fetched the same message for ever.
 * The markers still tile the partition: a refused message is in the next batch's range. A
 * message whose path falls under the markers' prefix (/tapedeck/kafka) is refused as a push
 * is: it could forge the marker of another partition, which settling an in-doubt batch reads.
 * A shard process, the run's real broker and Redis.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Value } from '../protocol/value.js';
import { KAFKA_MARKER_PREFIX } from '../server/cluster/kafka-marker.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { ShardCluster, useShardPeers } from './helpers/cluster.js';
import { createTopic, produce } from './helpers/kafka.js';
import { uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const peers = useShardPeers();

async function committedUpTo(groupId: string, topic: string): Promise<string | undefined> {
  const admin = peers().kafka.kafka.admin();
  await admin.connect();
  try {
    const got = await admin.fetchOffsets({ groupId, topics: [topic] });
    return got[0]?.partitions.find((p) => p.partition === 0)?.offset;
  } catch {
    return undefined; // the group's coordinator not known yet
  } finally {
    await admin.disconnect();
  }
}

describe('a shard and a message the writer refuses', () => {
  for (const batch of ['message', 'fetch'] as const) {
    it(`batch: ${batch}: refused, logged with its offset, committed; the partition goes on and its markers tile it`, async () => {
      const topic = uniqueName('audit10-cluster-refuse');
      await createTopic(peers().kafka.kafka, topic, 1, [{ name: 'max.message.bytes', value: String(8 * 1024 * 1024) }]);
      const leaves = STORAGE_LIMITS.batchUpdatesMax;
      const messages = [
        { key: 'a', value: '{"x":1}' },
        { key: 'huge', value: `[${'0,'.repeat(leaves - 1)}0]` },
        { key: 'b', value: '{"x":2}' },
      ];
      // One request: one record batch, fetched whole.
      await produce(peers().kafka.kafka, topic, messages);
      const name = uniqueName('c10');
      const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
      onTestFinished(() => c.killAll());
      const source = { name: 'k', type: 'kafka', brokers: [peers().kafka.brokers], topics: [topic], path: '/k/{key}', explode: true, batch, session_timeout: '6s' };
      const s = await c.start('s1', { sources: [source] });
      await until(async () => (await committedUpTo(`tapedeck-${name}-k`, topic)) === '3', 40_000, 'every message committed');
      expect(await c.stop(s)).toBe(0);
      const refused = s.lines.map((l) => (l.startsWith('{') ? JSON.parse(l) as Record<string, unknown> : {})).filter((l) => l.offset === '1' && l.topic === topic);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ code: 'TPD_BATCH_TOO_LARGE', partition: 0 });
      const recorded = (await readArchive(s.archive)).flatMap((b) => b.updates);
      expect(recorded.filter(([p]) => p.startsWith('/k/'))).toEqual([['/k/a/x', 1], ['/k/b/x', 2]]);
      const markers = recorded.filter(([p]) => p.startsWith(`${KAFKA_MARKER_PREFIX}/k/`)).map(([, v]) => v as Record<string, Value>);
      // They tile the partition: the refused message is in the next batch's range.
      expect(markers.map((m) => [m.first, m.last])).toEqual([[0, 0], [1, 2]]);
    }, 80_000);
  }

  it("a message whose path falls under the markers' prefix is refused: it cannot forge another partition's marker", async () => {
    const topic = uniqueName('audit10-cluster-forge');
    await createTopic(peers().kafka.kafka, topic);
    const forged = { a: 'tapedeck', b: 'kafka', c: 'k', d: topic, e: '1' };
    const messages = [
      { key: 'a', value: '1', headers: { a: 'x', b: 'y', c: 'z', d: 'w', e: 'v' } },
      { key: 'forged', value: '{"first":0,"last":1000000}', headers: forged },
      { key: 'b', value: '2', headers: { a: 'x', b: 'y', c: 'z', d: 'w', e: 'u' } },
    ];
    await produce(peers().kafka.kafka, topic, messages);
    const name = uniqueName('c10');
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
    onTestFinished(() => c.killAll());
    const source = { name: 'k', type: 'kafka', brokers: [peers().kafka.brokers], topics: [topic], path: '/{header.a}/{header.b}/{header.c}/{header.d}/{header.e}', session_timeout: '6s' };
    const s = await c.start('s1', { sources: [source] });
    await until(async () => (await committedUpTo(`tapedeck-${name}-k`, topic)) === '3', 40_000, 'every message committed');
    expect(await c.stop(s)).toBe(0);
    const refused = s.lines.map((l) => (l.startsWith('{') ? JSON.parse(l) as Record<string, unknown> : {})).filter((l) => l.offset === '1' && l.topic === topic);
    expect(refused).toMatchObject([{ code: 'TPD_BAD_PATH', partition: 0 }]);
    const paths = (await readArchive(s.archive)).flatMap((b) => b.updates.map(([p]) => p));
    expect(paths.filter((p) => !p.startsWith(`${KAFKA_MARKER_PREFIX}/k/`))).toEqual(['/x/y/z/w/v', '/x/y/z/w/u']);
    expect(paths.filter((p) => p.endsWith(`/${topic}/1`))).toEqual([]);
  }, 80_000);
});
