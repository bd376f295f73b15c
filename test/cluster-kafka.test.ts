/**
 * Shards consuming one Kafka topic (6 partitions, the run's real broker) in one consumer
 * group, with membership and the exactly-once fence in the real Redis (docs/cluster.md,
 * "Exactly once"): three shard processes; while a known stream is produced, one shard is
 * killed with SIGKILL at a seeded instant and restarted, then another. At the end every
 * shard's archive is read directly (read-only) and: the union of the recorded messages is
 * the input, each message once; every batch's marker ranges tile each partition exactly
 * once. The exact window (durable, not yet resolved) is forced with CLIENT PAUSE WRITE; with
 * in_doubt_max_wait a dead shard's in-doubt batch is taken over (bounded duplicates, counted).
 * Kill moments: CLUSTER_KAFKA_SEED (printed).
 */
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Value } from '../protocol/value.js';
import { KAFKA_MARKER_PREFIX } from '../server/cluster/kafka-marker.js';
import { ShardCluster, useShardPeers, type Shard } from './helpers/cluster.js';
import { createTopic, produce } from './helpers/kafka.js';
import { uniqueName } from './helpers/peers.js';
import { startRedis } from './helpers/redis.js';
import { readArchive } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { until, waitFor } from './helpers/until.js';
import { rng } from './helpers/workload.js';

const peers = useShardPeers();
const PARTITIONS = 6;
const CHUNKS = 24;
const PER_CHUNK = 150;

function checkExactlyOnce(got: Recorded, n: number): void {
  const twice = [...got.keys].filter(([, k]) => k > 1).map(([k]) => k);
  expect(twice, 'messages recorded more than once').toEqual([]);
  expect(got.keys.size, 'messages recorded').toBe(n);
  // Marker ranges: per partition, sorted, they tile 0..end with neither gap nor overlap.
  let total = 0;
  for (const [p, list] of got.markers) {
    list.sort((x, y) => x[0] - y[0]);
    let next = 0;
    for (const [first, last, shard] of list) {
      expect(first, `partition ${p}: batch ${first}..${last} of ${shard} after ${next - 1}`).toBe(next);
      next = last + 1;
    }
    total += next;
  }
  expect(total).toBe(n);
}

/** The group's committed offsets and the topic's ends, per partition. */
async function caughtUp(groupId: string, topic: string): Promise<boolean> {
  const admin = peers().kafka.kafka.admin();
  await admin.connect();
  try {
    const [ends, got] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const committed = new Map((got[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
    return ends.every((e) => committed.get(e.partition) === e.high);
  } catch {
    return false;
  } finally {
    await admin.disconnect();
  }
}

interface Recorded {
  /** message key -> how many times recorded, over all shards. */
  keys: Map<string, number>;
  /** partition -> [first, last, shard] of every batch marker. */
  markers: Map<number, Array<[number, number, string]>>;
}

async function readShards(shards: readonly Shard[], topic: string): Promise<Recorded> {
  const keys = new Map<string, number>();
  const markers = new Map<number, Array<[number, number, string]>>();
  for (const s of shards) {
    for (const b of await readArchive(s.archive)) {
      for (const [path, v] of b.updates) {
        if (path.startsWith('/k/')) keys.set(path.slice(3), (keys.get(path.slice(3)) ?? 0) + 1);
        else if (path.startsWith(`${KAFKA_MARKER_PREFIX}/k/${topic}/`)) {
          const p = Number(path.slice(path.lastIndexOf('/') + 1));
          const m = v as Record<string, Value>;
          const list = markers.get(p) ?? [];
          list.push([Number(m.first), Number(m.last), s.shard]);
          markers.set(p, list);
        }
      }
    }
  }
  return { keys, markers };
}

/**
 * Two shards on a 6-partition topic with a Redis of their own, and one of them killed -9 in
 * the window: its fetch durable in its archive but neither resolved in Redis nor committed
 * to Kafka.
 */
async function killedInTheWindow(cluster: Record<string, unknown> = {}) {
    // A Redis of the test's own: CLIENT PAUSE would stall every other test on the shared one.
    const redis = await startRedis();
    onTestFinished(() => redis.destroy());
    const ctl = new Redis(redis.url);
    onTestFinished(() => void ctl.disconnect());
    const topic = uniqueName('window');
    const name = uniqueName('cw');
    await createTopic(peers().kafka.kafka, topic, PARTITIONS);
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: redis.url, name });
    const source = { name: 'k', type: 'kafka', brokers: [peers().kafka.brokers], topics: [topic], path: '/k/{key}', session_timeout: '6s' };
    const shards = [await c.start('s1', { sources: [source], cluster }), await c.start('s2', { sources: [source], cluster })];
    const group = `tapedeck-${name}-k`;
    const msgs = (from: number, n: number): Array<{ key: string; value: string }> => Array.from({ length: n }, (_, j) => ({ key: `m-${from + j}`, value: JSON.stringify({ i: from + j }) }));
    await produce(peers().kafka.kafka, topic, msgs(0, 600));
    await until(() => caughtUp(group, topic), 60_000, 'the first messages recorded');

    // The window: a shard's fetch durable in its archive but neither resolved in Redis nor
    // committed to Kafka. Redis writes are paused the moment a shard claims a fetch (keyspace
    // notification), so the claim's batch gets durable and its resolve hangs; when the pause
    // came too late (the fetch already resolved) it is lifted and the next chunk tries again.
    const prefix = `tapedeck:cluster:${name}:kafka:${group}:${topic}:`;
    await ctl.config('SET', 'notify-keyspace-events', 'Kh');
    const sub = new Redis(redis.url);
    onTestFinished(() => void sub.disconnect());
    let armed = false;
    let paused = false;
    sub.on('pmessage', (_pattern: string, _channel: string, event: string) => {
      if (!armed || event !== 'hset') return;
      armed = false;
      void ctl.call('CLIENT', 'PAUSE', '120000', 'WRITE').then(() => (paused = true));
    });
    await sub.psubscribe(`__keyspace@0__:${prefix}*`);
    let produced = 600;
    let stuck: { shard: Shard; partition: number; last: number; done: number } | undefined;
    for (let attempt = 0; attempt < 20 && !stuck; attempt++) {
      armed = true;
      paused = false;
      await produce(peers().kafka.kafka, topic, msgs(produced, 120));
      produced += 120;
      await until(() => paused, 60_000, 'Redis writes paused at a claim');
      stuck = await waitFor(async () => {
        for (const sh of shards) {
          for (const [p, list] of (await readShards([sh], topic)).markers) {
            const h = await ctl.hgetall(`${prefix}${p}`);
            const last = Math.max(...list.map((m) => m[1]));
            if (h.ishard === sh.shard && last >= Number(h.done ?? 0)) return { shard: sh, partition: p, last, done: Number(h.done ?? 0) };
          }
        }
        return undefined;
      }, 3_000, 'a shard holding a durable batch it has not resolved').catch(() => undefined);
      if (!stuck) {
        await ctl.call('CLIENT', 'UNPAUSE');
        await until(() => caughtUp(group, topic), 60_000, 'caught up before the next attempt');
      }
    }
    if (!stuck) throw new Error('no shard was caught between durable and resolved in 20 attempts');
    console.log(`${stuck.shard.shard} killed holding partition ${stuck.partition} recorded through ${stuck.last}, Redis done ${stuck.done}`);
    await c.kill9(stuck.shard);
    await ctl.call('CLIENT', 'UNPAUSE');
    return { c, ctl, shards, stuck, prefix, group, topic, produced };
}

describe('shards on one Kafka topic', () => {
  it('records every message exactly once across three shards while shards are killed -9 and restarted', async () => {
    const seed = scheduleSeed('CLUSTER_KAFKA_SEED', 'cluster kafka kill schedule');
    const r = rng(seed);
    const topic = uniqueName('shards');
    const name = uniqueName('ck');
    await createTopic(peers().kafka.kafka, topic, PARTITIONS);
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name });
    const source = { name: 'k', type: 'kafka', brokers: [peers().kafka.brokers], topics: [topic], path: '/k/{key}', session_timeout: '6s' };
    const shards = await Promise.all(['s1', 's2', 's3'].map((id) => c.start(id, { sources: [source] })));
    const group = `tapedeck-${name}-k`;
    // Two kills of different shards at seeded chunks and delays; each restarted two chunks later.
    const firstKill = 3 + Math.floor(r() * 6);
    const kills = [
      { at: firstKill, shard: Math.floor(r() * 3), delayMs: Math.floor(r() * 200) },
      { at: firstKill + 6 + Math.floor(r() * 6), shard: 0, delayMs: Math.floor(r() * 200) },
    ];
    (kills[1] as { shard: number }).shard = ((kills[0] as { shard: number }).shard + 1 + Math.floor(r() * 2)) % 3;
    console.log(`kills: ${JSON.stringify(kills)}`);
    let down: number | undefined;
    for (let i = 0; i < CHUNKS; i++) {
      await produce(peers().kafka.kafka, topic, Array.from({ length: PER_CHUNK }, (_, j) => ({ key: `m-${i * PER_CHUNK + j}`, value: JSON.stringify({ i: i * PER_CHUNK + j }) })));
      const kill = kills.find((k) => k.at === i);
      const restart = kills.find((k) => k.at + 2 === i);
      if (kill) {
        // The chunk is being recorded: the kill lands inside a fetch (claimed, durable or committing).
        await new Promise((res) => setTimeout(res, kill.delayMs));
        await c.kill9(shards[kill.shard] as Shard);
        down = kill.shard;
      } else if (restart) {
        shards[restart.shard] = await c.restart(shards[restart.shard] as Shard);
        down = undefined;
      } else if (down === undefined) {
        await until(() => caughtUp(group, topic), 60_000, `chunk ${i} recorded`);
      }
    }
    await until(() => caughtUp(group, topic), 90_000, 'every message recorded');
    const status = await Promise.all(shards.map(async (s) => (await (await fetch(`${s.url}/api/v1/cluster/status`)).json()) as { kafka: unknown[] }));
    console.log(`fences: ${JSON.stringify(status.map((s) => s.kafka))}`);
    for (const s of shards) expect(await c.stop(s)).toBe(0);

    checkExactlyOnce(await readShards(shards, topic), CHUNKS * PER_CHUNK);
  }, 300_000);

  it('does not record again a batch a shard made durable but was killed before resolving it (the commit window)', async () => {
    const { c, ctl, shards, stuck, prefix, group, topic, produced } = await killedInTheWindow();
    // The other shard takes the partition but waits on the intent until its shard is back.
    expect(await ctl.hget(`${prefix}${stuck.partition}`, 'ishard')).toBe(stuck.shard.shard);
    const i = shards.indexOf(stuck.shard);
    shards[i] = await c.restart(stuck.shard);
    await until(() => caughtUp(group, topic), 90_000, 'every message recorded');
    for (const s of shards) expect(await c.stop(s)).toBe(0);
    checkExactlyOnce(await readShards(shards, topic), produced);
  }, 300_000);

  it('with in_doubt_max_wait, records a dead shard\'s in-doubt batch again rather than wait for it: nothing lost, the duplicates bounded and counted', async () => {
    const { c, shards, stuck, group, topic, produced } = await killedInTheWindow({ in_doubt_max_wait: '2s' });
    const other = shards.find((s) => s !== stuck.shard) as Shard;
    await until(() => caughtUp(group, topic), 90_000, 'every message recorded without the dead shard');
    const fences = ((await (await fetch(`${other.url}/api/v1/cluster/status`)).json()) as { kafka: Array<{ forced_takeovers: number }> }).kafka;
    expect(fences[0]?.forced_takeovers).toBeGreaterThanOrEqual(1);
    expect(await c.stop(other)).toBe(0);
    const got = await readShards(shards, topic);
    expect(got.keys.size, 'messages recorded').toBe(produced);
    const twice = [...got.keys].filter(([, n]) => n > 1);
    expect(twice.length).toBeGreaterThan(0);
    expect(twice.length).toBeLessThanOrEqual(stuck.last - stuck.done + 1);
  }, 300_000);
});
