/**
 * Messages on the sink topic that the recorder pair did not write (docs/ha.md, "Who wrote a
 * message"). The tail follower believed any tpd-stream / tpd-seq headers: one message from a
 * third party (tpd-seq far ahead of the stream's) silenced that stream on the active (every
 * new batch taken as already on the topic) and made a promotion drop the standby's buffered
 * batches of it: loss, in silence. Now each message of the pair carries tpd-mac (HMAC under
 * the pair's key in Redis) and the follower passes over what does not verify, counting it.
 * Two recorders in this process, the run's real broker and Redis; each batch is written to
 * both recorders with one time, as two recorders polling one upstream would. The key lives in
 * Redis: a Redis restarted empty gets it back from a running member, so a promotion after
 * that still verifies what the pair wrote (a private Redis, stopped and started). And an
 * active that takes its expired lease again publishes under the new fencing token (before,
 * the role did not change, so the sink kept the old one in tpd-fence).
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import type { Recorder } from '../server/recorder.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, sharedRedis, uniqueName } from './helpers/peers.js';
import { startRedis, type RedisPeer } from './helpers/redis.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let broker: KafkaPeer;
let redis: RedisPeer;
beforeAll(async () => {
  [broker, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
}, PEER_START_MAX_MS);

async function recorderOf(id: string, topic: string, cluster: string, redisUrl = redis.url): Promise<RunningServer> {
  const srv = await startServer(resolveConfig({
    archive_directory: await tmpDir(`tapedeck-audit10-spoof-${id}-`),
    record: { spec: ['/**'], flush_interval: '100ms' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'push', type: 'push' }],
    kafka_sink: { brokers: [broker.brokers], topic },
    ha: { redis: redisUrl, cluster, id, lease_ttl: '1s', buffer_window: '60s' },
  }), { logger: pino({ level: process.env.K10_DEBUG ? 'warn' : 'silent' }) });
  onTestFinished(() => srv.close());
  return srv;
}

const role = (s: RunningServer): string | undefined => s.ha?.coordinator?.role;

/** Two recorders of one pair, `a` active, and a way to record a batch on both with one time. */
async function pair(redisUrl = redis.url) {
  const topic = uniqueName('audit10-spoof');
  const cluster = uniqueName('audit10-spoof');
  await createTopic(broker.kafka, topic);
  const a = await recorderOf('a', topic, cluster, redisUrl);
  await until(() => role(a) === 'active' && a.ha?.sink?.status().publishing === true, 15_000, 'a active and publishing');
  const b = await recorderOf('b', topic, cluster, redisUrl);
  await until(() => role(b) === 'standby', 15_000, 'b standby');
  const base = 1_770_000_000_000_000;
  let n = 0;
  const both = async (k: number): Promise<void> => {
    for (let i = 0; i < k; i++, n++) {
      const ts = base + n * 1000;
      for (const s of [a, b]) await (s.recorder as Recorder).write('push', [['/spoof/v', n]], ts);
    }
  };
  const ours = async () => (await readTopic(broker.kafka, topic)).filter((m) => m.headers['tpd-recorder'] !== 'mallory');
  const published = async (want: number): Promise<void> => until(async () => (await ours()).length >= want, 20_000, `${want} batches on the topic`);
  /** a steps down; b is promoted and publishes what it buffered since. */
  const handOver = async (): Promise<void> => {
    await a.ha?.coordinator?.forceStandby();
    await until(() => a.ha?.sink?.status().publishing === false, 10_000, 'a not publishing');
  };
  const exactlyOnce = async (count: number): Promise<void> => {
    const got = await ours();
    if (process.env.K10_DEBUG) console.log(got.map((m) => [m.headers['tpd-seq'], m.headers['tpd-recorder'], m.headers['tpd-fence']]));
    expect(got.map((m) => Number(m.headers['tpd-seq']) - base)).toEqual(Array.from({ length: count }, (_, i) => i * 1000));
  };
  return { topic, cluster, a, b, both, published, handOver, exactlyOnce };
}

describe('the sink topic and messages the pair did not write', () => {
  it('a forged tpd-seq neither silences the active nor makes a promotion drop buffered batches', async () => {
    const { topic, a, b, both, published, handOver, exactlyOnce } = await pair();
    await both(5);
    await published(5);
    // A third party's message: the stream 'push', a seq far past every batch to come.
    const forgedAt = Date.now();
    await produce(broker.kafka, topic, [{ key: 'push', value: Buffer.from('x'), headers: { 'tpd-stream': 'push', 'tpd-seq': String(1_770_000_000_000_000 * 10), 'tpd-fence': '999', 'tpd-recorder': 'mallory' } }]);
    await until(() => [a, b].every((s) => (s.ha?.sink?.status().tailReadAtMs ?? 0) >= forgedAt), 15_000, 'both followers read the forged message');
    // The active still publishes the stream.
    await both(5);
    await published(10);
    await handOver();
    await both(5);
    await until(() => role(b) === 'active' && b.ha?.sink?.status().publishing === true, 15_000, 'b active and publishing');
    await published(15);
    await exactlyOnce(15);
    expect((await readTopic(broker.kafka, topic)).filter((m) => m.headers['tpd-recorder'] !== 'mallory').every((m) => /^[0-9a-f]{64}$/.test(m.headers['tpd-mac'] ?? ''))).toBe(true);
    for (const s of [a, b]) expect(s.ha?.sink?.status().foreignMessages).toBe(1);
  }, 90_000);

  it("a Redis restarted empty gets the pair's key back from a running member: a promotion after it still trusts the topic", async () => {
    const own = await startRedis();
    onTestFinished(() => own.destroy());
    const { a, b, both, published, handOver, exactlyOnce } = await pair(own.url);
    const key = a.ha?.coordinator?.sinkKey;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(b.ha?.coordinator?.sinkKey).toBe(key);
    await both(5);
    await published(5);
    await own.stop();
    await own.restart();
    const ctl = new Redis(own.url);
    onTestFinished(() => void ctl.disconnect());
    await until(async () => (await ctl.keys('tapedeck:*:sink-key')).length === 1, 15_000, 'the key back in Redis');
    expect(await ctl.get((await ctl.keys('tapedeck:*:sink-key'))[0] as string)).toBe(key);
    // One active again, and the other back to standby, not publishing: while Redis was gone
    // both were degraded (both publish: duplicates rather than loss, by design), and on a
    // loaded machine one may leave that state a while after the other took the lease.
    const settled = (x: RunningServer, y: RunningServer): boolean =>
      role(x) === 'active' && x.ha?.sink?.status().publishing === true && role(y) === 'standby' && y.ha?.sink?.status().publishing === false;
    await until(() => settled(a, b) || settled(b, a), 15_000, 'one active and publishing, the other standby and not');
    await both(5);
    await published(10);
    // Whoever is active now steps down; the other publishes what it buffered, nothing twice.
    if (role(a) === 'active') await handOver();
    else await b.ha?.coordinator?.forceStandby();
    await both(5);
    await published(15);
    await exactlyOnce(15);
    for (const s of [a, b]) expect(s.ha?.sink?.status().uncertainPromotions).toBe(0);
  }, 90_000);

  it('an active that takes its expired lease again publishes under the new fencing token', async () => {
    const { topic, cluster, a, both, published } = await pair();
    await both(1);
    await published(1);
    const ctl = new Redis(redis.url);
    onTestFinished(() => void ctl.disconnect());
    // The lease gone as if a late renewal had let it expire: a (preferred) takes it again, token 2.
    expect(await ctl.del(`tapedeck:${cluster}:lease`)).toBe(1);
    await until(() => a.ha?.coordinator?.token === 2 && role(a) === 'active', 15_000, 'a active again under token 2');
    await both(1);
    await published(2);
    const msgs = (await readTopic(broker.kafka, topic)).map((m) => m.headers['tpd-fence']);
    expect(msgs).toEqual(['1', '2']);
  }, 60_000);
});
