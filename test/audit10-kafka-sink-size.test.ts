/**
 * What the broker takes in one produce request (docs/kafka.md, "The Kafka sink"): a send's
 * messages go in one record batch, which the broker refuses past its message.max.bytes (1 MiB
 * by default, a topic's max.message.bytes). The sink sent up to 500 batches at once and, when
 * the broker refused them as too large, sent the same ones again for ever: a burst of 500
 * batches of 3 KB stopped publishing for good, and a batch larger than the topic takes
 * stopped it too. Now a send holds at most sendBytesMax bytes; a send refused as too large
 * goes again one batch at a time; a batch refused alone is not published, decided once
 * (counted in `dropped`, logged; the archive has it). With key: path, one batch's messages
 * (one per update) go in several requests when together they pass the bound. A real broker,
 * archive and recorder.
 */
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Recorder } from '../server/recorder.js';
import { KafkaSink } from '../server/sinks/kafka.js';
import { Archive } from '../storage/index.js';
import { createTopic, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

const T0 = 1_760_000_000_000_000;

/** A publishing sink on `topic` over a recorder of its own. */
async function publishing(topic: string, key: 'stream' | 'path' = 'stream'): Promise<{ sink: KafkaSink; recorder: Recorder }> {
  const archive = await Archive.open(await tmpDir('tapedeck-audit10-sink-size-'), { flushIntervalMs: 0 });
  onTestFinished(() => archive.close());
  const recorder = await Recorder.open(archive);
  const sink = new KafkaSink({
    brokers: [kafka.brokers], topic, format: 'json', key, clientId: 'audit10', recorderId: 'r1',
    queueMaxBatches: 100_000, bufferWindowMs: 60_000, bufferMaxBatches: 1000, promotionMaxWaitMs: 8_000, followTail: false,
    log: pino({ level: 'silent' }),
  });
  await sink.start(recorder);
  onTestFinished(() => sink.stop());
  await sink.setActive(0);
  return { sink, recorder };
}

const seqs = async (topic: string): Promise<number[]> => (await readTopic(kafka.kafka, topic)).map((m) => Number(m.headers['tpd-seq']) - T0);

describe('the Kafka sink and the broker\'s largest message', () => {
  it('publishes a burst of 1 000 batches of 3 KB, each once, in order', async () => {
    const topic = uniqueName('audit10-sink-burst');
    await createTopic(kafka.kafka, topic);
    const { sink, recorder } = await publishing(topic);
    const pad = 'x'.repeat(3000);
    // Written in one turn: the queue holds them all when the pump takes its next send.
    for (let i = 1; i <= 1000; i++) await recorder.write('push', [['/a', `${i}${pad}`]], T0 + i);
    await until(() => sink.status().published >= 1000, 30_000, '1 000 batches published');
    expect(await seqs(topic)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(sink.status().dropped).toBe(0);
  }, 60_000);

  it('on a topic of small messages: sends of several go one by one, a batch larger than it takes goes in parts (audit11: it was dropped), and the rest goes on', async () => {
    const topic = uniqueName('audit10-sink-small');
    await createTopic(kafka.kafka, topic, 1, [{ name: 'max.message.bytes', value: '100000' }]);
    const { sink, recorder } = await publishing(topic);
    const pad = 'y'.repeat(1000);
    for (let i = 1; i <= 300; i++) await recorder.write('push', [['/a', `${i}${pad}`]], T0 + i);
    await recorder.write('push', [['/a', 'z'.repeat(200_000)]], T0 + 301);
    for (let i = 302; i <= 311; i++) await recorder.write('push', [['/a', i]], T0 + i);
    await until(() => sink.status().published + sink.status().dropped >= 311, 30_000, 'every batch published or dropped');
    expect(sink.status().dropped).toBe(0);
    // Batch 301 is on the topic as parts (tpd-part i/n, protocol/kafka-parts.ts), each under the topic's limit.
    const msgs = await readTopic(kafka.kafka, topic);
    expect(msgs.filter((m) => m.headers['tpd-seq'] === String(T0 + 301)).map((m) => m.headers['tpd-part'])).toEqual(['1/5', '2/5', '3/5', '4/5', '5/5']);
    const whole = msgs.filter((m) => m.headers['tpd-part'] === undefined || m.headers['tpd-part'] === '5/5');
    expect(whole.map((m) => Number(m.headers['tpd-seq']) - T0)).toEqual(Array.from({ length: 311 }, (_, i) => i + 1));
  }, 60_000);

  it('key: path: a batch whose messages pass the broker\'s limit together, each fitting, is published whole in several requests', async () => {
    const topic = uniqueName('audit10-sink-path');
    await createTopic(kafka.kafka, topic);
    const { sink, recorder } = await publishing(topic, 'path');
    // 20 000 updates of ~100 bytes: one message each, about 4 MB of messages in all.
    const n = 20_000;
    await recorder.write('push', Array.from({ length: n }, (_, i) => [`/p/${i}`, `${i}`.padStart(60, '.')] as [string, string]), T0 + 1);
    await recorder.write('push', [['/after', 1]], T0 + 2);
    await until(() => sink.status().published + sink.status().dropped >= 2, 30_000, 'both batches published or dropped');
    expect(sink.status().dropped).toBe(0);
    const msgs = await readTopic(kafka.kafka, topic);
    expect(msgs.map((m) => String(m.key))).toEqual([...Array.from({ length: n }, (_, i) => `/p/${i}`), '/after']);
  }, 60_000);
});
