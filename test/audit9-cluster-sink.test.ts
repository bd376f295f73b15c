/**
 * The Kafka sink when its queue is full (docs/kafka.md, "The Kafka sink"): past
 * queue_max_batches the oldest batches waiting are dropped (counted), but a batch is never
 * published twice, nor counted dropped once it was sent. Before, the overflow dropped
 * batches of the send in flight from the queue's head; the pump, finding the head changed,
 * left the rest of that send in the queue and sent it again. Real broker, real recorder.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { readArchive } from './helpers/replay.js';
import { until } from './helpers/until.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

describe('kafka sink with a full queue', () => {
  it('drops the oldest waiting batches, never publishes one twice, keeps the order', async () => {
    const topic = uniqueName('audit9-sink-full');
    const srv = await recordingServer({ kafka_sink: { brokers: [kafka.brokers], topic, format: 'msgpack', queue_max_batches: 7 } });
    const N = 1500;
    // Batches recorded in slices while sends are in flight: the queue overflows under them.
    for (let round = 0; round < 3; round++) {
      const lines = Array.from({ length: N / 3 }, (_, i) => JSON.stringify({ updates: { '/q/v': round * 1000 + i } }));
      const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    const sink = () => srv.ha!.view().sink!;
    await until(() => sink().queueDepth === 0 && sink().published + sink().dropped >= N, 30_000, 'the queue drained');
    const { published, dropped } = sink();
    await srv.close();
    expect(dropped).toBeGreaterThan(0);
    const recorded = await readArchive(srv.dir);
    expect(recorded).toHaveLength(N);
    const msgs = await readTopic(kafka.kafka, topic);
    const seqs = msgs.map((m) => BigInt(m.headers['tpd-seq'] as string));
    // Each at most once, in the order recorded, and exactly the count said published.
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!, `message ${i}: seq ${seqs[i]} after ${seqs[i - 1]}`).toBe(true);
    expect(msgs.length).toBe(published);
    expect(published + dropped).toBe(N);
    const recordedSeqs = new Set(recorded.map((b) => BigInt(b.ts)));
    for (const s of seqs) expect(recordedSeqs.has(s)).toBe(true);
  }, 60_000);
});
