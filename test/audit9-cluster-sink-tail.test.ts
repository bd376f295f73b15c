/**
 * The Kafka sink's follower of its own topic (active/standby, docs/ha.md "No loss, no
 * duplicate") reads every message's tpd-stream and tpd-seq headers. A message whose tpd-seq
 * is not a decimal integer (another producer on the topic, a damaged header) was kept
 * as its stream's last seq; the next comparison with it (BigInt) threw: the promotion
 * rejected (an unhandled rejection in server/ha/runtime.ts), and every batch recorded after
 * that threw in the recorder's 'recorded' event. Such a message is now passed over. Real broker, real
 * archive and recorder.
 */
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Recorder } from '../server/recorder.js';
import { KafkaSink } from '../server/sinks/kafka.js';
import { Archive } from '../storage/index.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

describe('the sink follower and foreign messages on its topic', () => {
  it.each([
    ['a tpd-seq that is not a number', { 'tpd-stream': 'push', 'tpd-seq': 'garbage' }],
    ['a tpd-seq of 100 000 digits and a letter', { 'tpd-stream': 'push', 'tpd-seq': `${'9'.repeat(100_000)}x` }],
    ['no headers at all', {}],
  ])('%s: a promotion still reads the topic to its end and publishes what it lacks, once', async (_what, headers) => {
    const topic = uniqueName('audit9-sink-tail');
    await createTopic(kafka.kafka, topic);
    await produce(kafka.kafka, topic, [{ key: 'x', value: Buffer.from('foreign'), headers }]);
    const archive = await Archive.open(await tmpDir('tapedeck-audit9-tail-'), { flushIntervalMs: 0 });
    onTestFinished(() => archive.close());
    const recorder = await Recorder.open(archive);
    const sink = new KafkaSink({
      brokers: [kafka.brokers], topic, format: 'json', key: 'stream', clientId: 'audit9', recorderId: 'r1',
      queueMaxBatches: 1000, bufferWindowMs: 60_000, bufferMaxBatches: 1000, promotionMaxWaitMs: 8_000, followTail: true,
      log: pino({ level: 'silent' }),
    });
    await sink.start(recorder);
    onTestFinished(() => sink.stop());
    for (let i = 1; i <= 3; i++) await recorder.write('push', [['/a', i]], 1_760_000_000_000_000 + i);
    await sink.setActive(1);
    expect(sink.status().uncertainPromotions).toBe(0);
    await until(() => sink.status().published >= 3, 10_000, 'the three batches published');
    const msgs = await readTopic(kafka.kafka, topic);
    expect(msgs.slice(1).map((m) => m.headers['tpd-seq'])).toEqual(['1760000000000001', '1760000000000002', '1760000000000003']);
  }, 30_000);
});
