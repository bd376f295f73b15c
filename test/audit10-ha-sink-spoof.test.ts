/**
 * Messages on the sink topic that the recorder pair did not write (docs/ha.md, "Who wrote a
 * message"). The tail follower believed any tpd-stream / tpd-seq headers: one message from a
 * third party (tpd-seq far ahead of the stream's) silenced that stream on the active (every
 * new batch taken as already on the topic) and made a promotion drop the standby's buffered
 * batches of it: loss, in silence. Now each message of the pair carries tpd-mac (HMAC under
 * the pair's key in Redis) and the follower passes over what does not verify, counting it.
 * Two recorders in this process, the run's real broker and Redis; each batch is written to
 * both recorders with one time, as two recorders polling one upstream would.
 */
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import type { Recorder } from '../server/recorder.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, sharedRedis, uniqueName } from './helpers/peers.js';
import type { RedisPeer } from './helpers/redis.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let broker: KafkaPeer;
let redis: RedisPeer;
beforeAll(async () => {
  [broker, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
}, PEER_START_MAX_MS);

async function recorderOf(id: string, topic: string, cluster: string): Promise<RunningServer> {
  const srv = await startServer(resolveConfig({
    archive_directory: await tmpDir(`tapedeck-audit10-spoof-${id}-`),
    record: { spec: ['/**'], flush_interval: '100ms' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'push', type: 'push' }],
    kafka_sink: { brokers: [broker.brokers], topic },
    ha: { redis: redis.url, cluster, id, lease_ttl: '400ms', buffer_window: '60s' },
  }), { logger: pino({ level: 'silent' }) });
  onTestFinished(() => srv.close());
  return srv;
}

const role = (s: RunningServer): string | undefined => s.ha?.coordinator?.role;

describe('the sink topic and messages the pair did not write', () => {
  it('a forged tpd-seq neither silences the active nor makes a promotion drop buffered batches', async () => {
    const topic = uniqueName('audit10-spoof');
    const cluster = uniqueName('audit10-spoof');
    await createTopic(broker.kafka, topic);
    const a = await recorderOf('a', topic, cluster);
    await until(() => role(a) === 'active' && a.ha?.sink?.status().publishing === true, 15_000, 'a active and publishing');
    const b = await recorderOf('b', topic, cluster);
    await until(() => role(b) === 'standby', 15_000, 'b standby');
    const base = 1_770_000_000_000_000;
    let n = 0;
    const both = async (k: number): Promise<void> => {
      for (let i = 0; i < k; i++, n++) {
        const ts = base + n * 1000;
        for (const s of [a, b]) await (s.recorder as Recorder).write('push', [['/spoof/v', n]], ts);
      }
    };
    const published = async (want: number): Promise<void> => until(async () => (await readTopic(broker.kafka, topic)).filter((m) => m.headers['tpd-recorder'] !== 'mallory').length >= want, 20_000, `${want} batches on the topic`);
    await both(5);
    await published(5);
    // A third party's message: the stream 'push', a seq far past every batch to come.
    const forgedAt = Date.now();
    await produce(broker.kafka, topic, [{ key: 'push', value: Buffer.from('x'), headers: { 'tpd-stream': 'push', 'tpd-seq': String(base * 10), 'tpd-fence': '999', 'tpd-recorder': 'mallory' } }]);
    await until(() => [a, b].every((s) => (s.ha?.sink?.status().tailReadAtMs ?? 0) >= forgedAt), 15_000, 'both followers read the forged message');
    // The active still publishes the stream.
    await both(5);
    await published(10);
    // a steps down; b is promoted and publishes what it buffered since.
    await a.ha?.coordinator?.forceStandby();
    await until(() => a.ha?.sink?.status().publishing === false, 10_000, 'a not publishing');
    await both(5);
    await until(() => role(b) === 'active' && b.ha?.sink?.status().publishing === true, 15_000, 'b active and publishing');
    await published(15);
    const ours = (await readTopic(broker.kafka, topic)).filter((m) => m.headers['tpd-recorder'] !== 'mallory');
    expect(ours.map((m) => Number(m.headers['tpd-seq']) - base)).toEqual(Array.from({ length: 15 }, (_, i) => i * 1000));
    expect(ours.every((m) => /^[0-9a-f]{64}$/.test(m.headers['tpd-mac'] ?? ''))).toBe(true);
    for (const s of [a, b]) expect(s.ha?.sink?.status().foreignMessages).toBe(1);
  }, 90_000);
});
