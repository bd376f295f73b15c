/**
 * A send the broker refuses for what its messages are, which no retry cures (docs/kafka.md,
 * "The Kafka sink"). A topic with message.timestamp.before.max.ms (Kafka 3.6+; older:
 * message.timestamp.difference.max.ms) refuses a message whose time is older than that: a
 * batch recorded with an old time (a Kafka source re-reading an old topic stamps batches
 * with the message times; a snapshot-time poller after an outage) was sent again every
 * 250 ms for ever, and every batch after it waited behind it: the sink stopped publishing for
 * good, one warn line each retry. Now the refused batch goes alone and then stamped by the
 * broker's clock (its value keeps the batch time, exact), counted and logged; the batches
 * after it are published. The run's real broker, a real recorder and archive.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createTopic, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { sinkOverRecorder } from './helpers/kafka-sink.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { until } from './helpers/until.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

describe('the Kafka sink and a topic that refuses old times', () => {
  for (const key of ['stream', 'path'] as const) {
    it(`key: ${key}: a batch older than the topic takes is published stamped by the broker, its value keeping its time; the batches after it are published`, async () => {
      const topic = uniqueName('audit11-sink-ts');
      await createTopic(kafka.kafka, topic, 1, [{ name: 'message.timestamp.before.max.ms', value: '3600000' }]);
      const { sink, recorder } = await sinkOverRecorder(kafka.brokers, topic, { key });
      await sink.setActive(0);
      const now = Date.now() * 1000;
      const old = now - 2 * 86_400_000_000 + 123;
      await recorder.write('push', [['/a', 1]], old);
      await recorder.write('push', [['/a', 2]], now);
      await recorder.write('push', [['/a', 3]], now + 1000);
      await until(() => sink.status().published + sink.status().dropped >= 3, 20_000, 'three batches published or dropped');
      expect(sink.status().dropped).toBe(0);
      expect(sink.stats.brokerTimed).toBe(1);
      const msgs = await readTopic(kafka.kafka, topic);
      expect(msgs.map((m) => (JSON.parse(String(m.value)) as { ts: number }).ts)).toEqual([old, now, now + 1000]);
      // The first stamped by the broker (now), the others with their batch time.
      expect(Number(msgs[0]?.timestamp)).toBeGreaterThan(old / 1000 + 86_400_000);
      expect(msgs.slice(1).map((m) => m.timestamp)).toEqual([String(Math.floor(now / 1000)), String(Math.floor(now / 1000) + 1)]);
    }, 60_000);
  }
});

describe('the Kafka sink and a stream whose seq goes back', () => {
  it('holds back a batch whose seq the topic holds for its stream, counted (a source topic recreated: offsets from 0)', async () => {
    const topic = uniqueName('audit11-sink-seq');
    await createTopic(kafka.kafka, topic);
    const { sink, recorder } = await sinkOverRecorder(kafka.brokers, topic);
    await sink.setActive(0);
    const t = Date.now() * 1000;
    await recorder.write('k', [['/a', 1]], t, { stream: 'k:t:0', seq: '100' });
    await until(() => sink.status().published >= 1, 20_000, 'the first batch published');
    await recorder.write('k', [['/a', 2]], t + 1, { stream: 'k:t:0', seq: '5' });
    await recorder.write('k', [['/a', 3]], t + 2, { stream: 'k:t:0', seq: '101' });
    await until(() => sink.status().published >= 2, 20_000, 'the third batch published');
    expect(sink.stats.skippedOnTopic).toBe(1);
    expect((await readTopic(kafka.kafka, topic)).map((m) => m.headers['tpd-seq'])).toEqual(['100', '101']);
  }, 60_000);
});
