/**
 * A message whose batch the writer refuses (docs/kafka.md, "Refused messages") is decided
 * once: counted, named in a log line with its topic, partition and offset, its offset
 * committed, and the partition goes on. Before, the writer's refusal (more updates than
 * batchUpdatesMax, more bytes than batchBytesMax) was thrown out of the fetch's handler and
 * kafkajs fetched the same message again for ever: the partition stalled on it. A fetch whose
 * messages together pass batchBytesMax although each fits is recorded message by message,
 * nothing refused. A real broker (the run's shared one), a real recording server.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { createTopic, produce, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let broker: KafkaPeer;
beforeAll(async () => {
  broker = await sharedKafka();
}, PEER_START_MAX_MS);

async function bigTopic(name: string, maxMessageBytes: number): Promise<string> {
  const topic = uniqueName(name);
  await createTopic(broker.kafka, topic, 1, [{ name: 'max.message.bytes', value: String(maxMessageBytes) }]);
  return topic;
}

/** A recording server on one topic; its warn lines as objects. */
async function record(topic: string, source: Record<string, unknown>, expectMessages: number): Promise<{ dir: string; src: KafkaSource; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const sinkStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const dir = await tmpDir('tapedeck-audit10-kafka-refusals-');
  const srv = await startServer(resolveConfig({
    archive_directory: dir,
    record: { spec: ['/**'], flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: uniqueName('in'), type: 'kafka', brokers: [broker.brokers], topics: [topic], ...source }],
  }), { logger: pino({ level: 'warn' }, sinkStream) });
  const src = srv.sources[0] as KafkaSource;
  try {
    await until(() => src.stats.messages >= expectMessages && src.lag().length === 1 && src.lag().every((l) => l.lag === 0), 30_000, 'every message consumed and committed');
  } finally {
    await srv.close();
  }
  return { dir, src, lines };
}

describe('a message the writer refuses', () => {
  for (const batch of ['message', 'fetch'] as const) {
    it(`batch: ${batch}: one message past batchBytesMax is refused, logged with its offset, and the partition goes on`, async () => {
      const topic = await bigTopic('audit10-kafka-huge', STORAGE_LIMITS.batchBytesMax + 1024 * 1024);
      const messages = [
        { key: 'a', value: Buffer.from('x1') },
        { key: 'huge', value: Buffer.alloc(STORAGE_LIMITS.batchBytesMax, 0x48) },
        { key: 'b', value: Buffer.from('x2') },
      ];
      // One request per message: batch 'fetch' may still fetch them together.
      for (const m of messages) await produce(broker.kafka, topic, [m]);
      const { dir, src, lines } = await record(topic, { format: 'binary', batch, path: '/kr/{key}' }, messages.length);
      expect(src.stats.decodeErrors).toBe(1);
      expect(lines.find((l) => l.offset === '1')).toMatchObject({ code: 'TPD_BATCH_TOO_LARGE', topic, partition: 0, offset: '1' });
      const recorded = (await readArchive(dir)).flatMap((b) => b.updates);
      expect(recorded.map(([p, v]) => [p, Buffer.from(v as Uint8Array).toString()])).toEqual([['/kr/a', 'x1'], ['/kr/b', 'x2']]);
    }, 60_000);
  }

  it('batch: fetch: messages that together pass batchBytesMax, each fitting, are all recorded, none refused', async () => {
    const each = Math.floor(STORAGE_LIMITS.batchBytesMax / 3) + 1024 * 1024;
    const topic = await bigTopic('audit10-kafka-bytes', 4 * each);
    const values = [0x41, 0x42, 0x43].map((c) => Buffer.alloc(each, c));
    // One produce request: one record batch, which one fetch brings whole.
    await produce(broker.kafka, topic, values.map((value, i) => ({ key: `k${i}`, value })));
    const { dir, src } = await record(topic, { format: 'binary', batch: 'fetch', path: '/kb/{key}' }, 3);
    expect(src.stats.decodeErrors).toBe(0);
    const recorded = (await readArchive(dir)).flatMap((b) => b.updates);
    expect(recorded.map(([p, v]) => [p, (v as Uint8Array).length, (v as Uint8Array)[0]])).toEqual([['/kb/k0', each, 0x41], ['/kb/k1', each, 0x42], ['/kb/k2', each, 0x43]]);
  }, 60_000);
});
