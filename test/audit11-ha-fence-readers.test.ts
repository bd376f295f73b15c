/**
 * Readers fence (docs/ha.md, "A paused active"): a message of an active/standby pair whose
 * tpd-fence is below one already read on its partition is an old active's, sent after the
 * new one took over; readers drop it. Tapedeck's Kafka source refuses it (counted, logged,
 * TPD_KAFKA_STALE_FENCE), parts of such a set included; the pair's own tail follower does not
 * count it as published, so a promotion publishes that batch again under the new fence (it
 * counted it before: the batch's only copy on the topic was one every fencing reader drops).
 * The run's real broker; real recorders, archives and sinks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { SinkAuth } from '../server/sinks/sink-auth.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { splitParts } from '../protocol/kafka-parts.js';
import { FenceWatch } from '../protocol/kafka-fence-watch.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { keptLog, sinkOverRecorder } from './helpers/kafka-sink.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

const KEY = 'ab'.repeat(32);
const T0 = 1_770_000_000_000_000;

/** A message of the pair: signed identity headers, `fence`, on `partition`. */
function pairMessage(stream: string, seq: number, fence: number, value: string, partition = 0, extra: Record<string, string> = {}) {
  const auth = new SinkAuth();
  auth.addKey(KEY);
  const id = { stream, seq: String(seq), fence: String(fence), recorder: 'old' };
  return { partition, key: stream, value: Buffer.from(value), headers: { 'tpd-stream': id.stream, 'tpd-seq': id.seq, 'tpd-fence': id.fence, 'tpd-recorder': id.recorder, 'tpd-mac': auth.sign(id) as string, ...extra } };
}

/** A sink of the pair (recorder 'new', key `key`) over a recorder of its own, following the topic. */
const follower = (topic: string, key: 'stream' | 'path') => sinkOverRecorder(kafka.brokers, topic, { key, recorderId: 'new', followTail: true, pairKey: KEY });

describe('a Kafka source reading a pair\'s topic', () => {
  it('refuses a message under a fence below one already read on its partition, counted and logged; other partitions and unfenced messages are not affected', async () => {
    const topic = uniqueName('audit11-fence-source');
    await createTopic(kafka.kafka, topic, 2);
    const stale = splitParts(Buffer.from('"' + 's'.repeat(40) + '"'), 15).map((p) => {
      const m = pairMessage('s', 9, 3, '', 0);
      return { ...m, value: p.value, headers: { ...m.headers, ...p.headers } };
    });
    const msgs = [
      pairMessage('s', 1, 3, '1'), // 0
      pairMessage('s', 2, 4, '2'), // 1: a new active
      pairMessage('s', 3, 3, '3'), // 2: the old one, late: refused
      { partition: 0, key: 'other', value: Buffer.from('4') }, // 3: no fence: recorded
      stale[0], stale[1], stale[2], // 4-6: parts of a late message: refused, all three
      pairMessage('s', 5, 4, '5'), // 7
      pairMessage('t', 6, 3, '6', 1), // partition 1 has read no fence 4: recorded
    ];
    for (const m of msgs) await produce(kafka.kafka, topic, [m as never]);
    const { logger, lines } = keptLog();
    const dir = await tmpDir('tapedeck-audit11-fence-');
    const srv = await startServer(resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'in', type: 'kafka', brokers: [kafka.brokers], topics: [topic], batch: 'message', format: 'json', path: '/in/{partition}/{offset}' }],
    }), { logger });
    const src = srv.sources[0] as KafkaSource;
    try {
      await until(() => src.stats.messages >= msgs.length, 30_000, 'every message read');
    } finally {
      await srv.close();
    }
    expect(src.stats.decodeErrors).toBe(4);
    for (const o of ['2', '4', '5', '6']) expect(lines.find((l) => l.offset === o && l.partition === 0), `offset ${o}`).toMatchObject({ code: 'TPD_KAFKA_STALE_FENCE' });
    const recorded = (await readArchive(dir)).flatMap((b) => b.updates.map(([p]) => p)).sort();
    expect(recorded).toEqual(['/in/0/0', '/in/0/1', '/in/0/3', '/in/0/7', '/in/1/0']);
  }, 60_000);
});

describe('the pair\'s tail follower', () => {
  it('does not count a batch whose only copy on the topic is under a stale fence: the promotion publishes it again', async () => {
    const topic = uniqueName('audit11-fence-tail');
    await createTopic(kafka.kafka, topic);
    // The old active (fence 5) published batch 1; the next one (fence 6) batch 2; the old one, late, batch 3 under fence 5.
    await produce(kafka.kafka, topic, [pairMessage('push', T0 + 1, 5, 'x'), pairMessage('push', T0 + 2, 6, 'x'), pairMessage('push', T0 + 3, 5, 'x')] as never);
    const { sink, recorder } = await follower(topic, 'stream');
    for (let i = 1; i <= 4; i++) await recorder.write('push', [['/v', i]], T0 + i);
    await sink.setActive(7);
    await until(() => sink.status().published >= 2, 20_000, 'two batches published');
    const ours = (await readTopic(kafka.kafka, topic)).filter((m) => m.headers['tpd-recorder'] === 'new');
    expect(ours.map((m) => [Number(m.headers['tpd-seq']) - T0, m.headers['tpd-fence']])).toEqual([[3, '7'], [4, '7']]);
  }, 60_000);

  it('key: path: counts a batch as published only at its last message (tpd-msg n/n): an old active that died after 2 of 3 leaves it to the promotion', async () => {
    const topic = uniqueName('audit11-fence-path');
    await createTopic(kafka.kafka, topic);
    await produce(kafka.kafka, topic, [1, 2].map((k) => pairMessage('push', T0 + 1, 5, 'x', 0, { 'tpd-msg': `${k}/3` })) as never);
    const { sink, recorder } = await follower(topic, 'path');
    await recorder.write('push', [['/p/0', 0], ['/p/1', 1], ['/p/2', 2]], T0 + 1);
    await sink.setActive(6);
    await until(() => sink.status().published >= 1, 20_000, 'the batch published');
    const ours = (await readTopic(kafka.kafka, topic)).filter((m) => m.headers['tpd-recorder'] === 'new');
    expect(ours.map((m) => [String(m.key), m.headers['tpd-msg']])).toEqual([['/p/0', '1/3'], ['/p/1', '2/3'], ['/p/2', '3/3']]);
  }, 60_000);
});

describe('the fence watch (protocol/kafka-fence-watch.ts)', () => {
  it('refuses a lower token right after a higher one, and takes it as a reset of the tokens once the higher is old', () => {
    const resets: string[] = [];
    const w = new FenceWatch(3, (p, from, to) => resets.push(`${p}:${from}->${to}`));
    const f = (t: number | undefined) => (t === undefined ? {} : { 'tpd-fence': String(t) });
    expect([5, 6, 5, undefined, 6].map((t) => w.stale('p', f(t)))).toEqual([undefined, undefined, 6, undefined, undefined]);
    // Four messages since 6 began: past the window, 1 is a reset (a pair restarted with an empty Redis, or `ha` removed: 0).
    expect(w.stale('p', f(1))).toBeUndefined();
    expect(resets).toEqual(['p:6->1']);
    expect([1, 0, 2].map((t) => w.stale('p', f(t)))).toEqual([undefined, 1, undefined]);
    expect(w.stale('q', f(0))).toBeUndefined();
  });
});
