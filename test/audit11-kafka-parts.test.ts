/**
 * A batch larger than its topic takes (docs/kafka.md, "Messages in parts"). With key:
 * "stream" a batch is one message; one larger than the topic's max.message.bytes was dropped
 * by the sink (counted, logged): data the recorder accepted never reached consumers. Now the
 * sink sends it as parts (protocol/kafka-parts.ts) and Tapedeck's Kafka source assembles
 * them into the one message, recorded as one batch, value for value identical; parts that do
 * not make a whole (forged, incomplete, out of order, a wrong sum) are refused, counted and
 * logged, and the partition goes on; a source stopped in the middle of a set reads it again
 * at its restart (its offset is committed no further than the set's first part). The run's
 * real broker, real recorders and archives.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { Recorder } from '../server/recorder.js';
import type { KafkaSink } from '../server/sinks/kafka.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { PartAssembler, splitParts } from '../protocol/kafka-parts.js';
import type { Update, Value } from '../protocol/value.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { keptLog, sinkOverRecorder } from './helpers/kafka-sink.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';
import { hostileUpdates, propertySeed, valueDiff } from './helpers/values.js';

let kafka: KafkaPeer;
beforeAll(async () => {
  kafka = await sharedKafka();
}, PEER_START_MAX_MS);

const T0 = 1_760_000_000_000_000;
const TOPIC_BYTES_MAX = 100_000;

async function smallTopic(name: string): Promise<string> {
  const topic = uniqueName(name);
  await createTopic(kafka.kafka, topic, 1, [{ name: 'max.message.bytes', value: String(TOPIC_BYTES_MAX) }]);
  return topic;
}

/** A publishing sink on `topic` over a recorder of its own. */
async function publishing(topic: string, format: 'json' | 'msgpack'): Promise<{ sink: KafkaSink; recorder: Recorder }> {
  const r = await sinkOverRecorder(kafka.brokers, topic, { format });
  await r.sink.setActive(0);
  return r;
}

/** The offset `group` committed on partition 0 of `topic` ('-1': none). */
async function committed(topic: string, group: string): Promise<string> {
  const admin = kafka.kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions[0]?.offset ?? '-1';
  } finally {
    await admin.disconnect();
  }
}

/**
 * A recording server (archive `dir`, else a new one) with a kafka source on `topic`, until it
 * has read `messages` messages and its group committed offset `commit`; its warn lines.
 */
async function consume(topic: string, source: Record<string, unknown>, messages: number, commit: string, group = uniqueName('g'), given?: string): Promise<{ dir: string; src: KafkaSource; lines: Array<Record<string, unknown>> }> {
  const { logger, lines } = keptLog();
  const dir = given ?? await tmpDir('tapedeck-audit11-parts-in-');
  const srv = await startServer(resolveConfig({
    archive_directory: dir,
    record: { spec: ['/**'], flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'in', type: 'kafka', brokers: [kafka.brokers], topics: [topic], group_id: group, batch: 'message', path: '/in/{key}', ...source }],
  }), { logger });
  const src = srv.sources[0] as KafkaSource;
  try {
    await until(() => src.stats.messages >= messages, 30_000, `${messages} messages read`);
    let at = '';
    await until(async () => (at = await committed(topic, group)) === commit, 30_000, `offset ${commit} committed (last seen ${at})`);
  } finally {
    await srv.close();
  }
  return { dir, src, lines };
}

/** Hostile updates from the seed, at distinct paths, and enough of them to pass the topic's limit several times. */
function bigBatch(seed: number): Update[] {
  const hostile = fc.sample(hostileUpdates, { seed, numRuns: 40 }).flatMap((us, i) => us.map(([p, v]) => [`/h/${i}${p}`, v] as Update));
  const fixed: Update[] = [['/x/neg0', -0], ['/x/nan', NaN], ['/x/big', 2n ** 64n + 1n], ['/x/nbig', -(2n ** 70n)], ['/x/lone', 'a\ud800b\udc00'], ['/x/bytes', Uint8Array.from([0, 255, 1])]];
  const bulk: Update[] = Array.from({ length: 3000 }, (_, i) => [`/bulk/${i}`, `${i}`.padStart(100, '.')]);
  return [...hostile, ...fixed, ...bulk];
}

describe('a sink batch larger than its topic takes', () => {
  for (const format of ['msgpack', 'json'] as const) {
    it(`${format}: goes out in parts and comes back through the Kafka source as one batch, value for value`, async () => {
      const seed = propertySeed(`audit11-kafka-parts ${format}`);
      const topic = await smallTopic(`audit11-parts-${format}`);
      const { sink, recorder } = await publishing(topic, format);
      const big = bigBatch(seed);
      await recorder.write('push', [['/before', 1]], T0 + 1);
      await recorder.write('push', big, T0 + 2);
      await recorder.write('push', [['/after', 2]], T0 + 3);
      await until(() => sink.status().published + sink.status().dropped >= 3, 30_000, 'three batches published or dropped');
      expect(sink.status().dropped).toBe(0);
      expect(sink.stats.partedBatches).toBe(1);
      const onTopic = await readTopic(kafka.kafka, topic);
      expect(onTopic.length).toBeGreaterThan(3);
      for (const m of onTopic) expect(m.value?.length ?? 0).toBeLessThan(TOPIC_BYTES_MAX);

      const { dir, src } = await consume(topic, { format }, onTopic.length, String(onTopic.length));
      expect(src.stats.decodeErrors).toBe(0);
      const batches = await readArchive(dir);
      expect(batches.map((b) => b.updates.map((u) => u[0]))).toEqual([['/in/push'], ['/in/push'], ['/in/push']]);
      const got = batches.map((b) => b.updates[0]?.[1] as Record<string, Value>);
      expect(got.map((v) => v.seq)).toEqual([String(T0 + 1), String(T0 + 2), String(T0 + 3)]);
      const back = got[1]?.updates as Value[];
      expect(back.length).toBe(big.length);
      for (let i = 0; i < big.length; i++) {
        const [path, want] = big[i] as Update;
        expect((back[i] as Value[])[0]).toBe(path);
        expect(valueDiff(want, (back[i] as Value[])[1], path)).toBeUndefined();
      }
    }, 60_000);
  }
});

describe('a batch the topic refuses even in the smallest parts', () => {
  it('is dropped once, counted and logged, and publishing goes on', async () => {
    const topic = uniqueName('audit11-parts-tiny');
    // Smaller than a part of partBytesMin (1 KiB) with its headers.
    await createTopic(kafka.kafka, topic, 1, [{ name: 'max.message.bytes', value: '900' }]);
    const { sink, recorder } = await publishing(topic, 'json');
    await recorder.write('push', [['/a', 1]], T0 + 1);
    await recorder.write('push', [['/big', 'w'.repeat(20_000)]], T0 + 2);
    await recorder.write('push', [['/a', 3]], T0 + 3);
    await until(() => sink.status().published + sink.status().dropped >= 3, 30_000, 'three batches published or dropped');
    expect(sink.status().dropped).toBe(1);
    expect((await readTopic(kafka.kafka, topic)).map((m) => Number(m.headers['tpd-seq']) - T0)).toEqual([1, 3]);
  }, 60_000);
});

describe('parts that do not make a message', () => {
  it('are refused (forged, incomplete, out of order, a wrong sum, malformed), counted and logged with their offsets; the rest is recorded', async () => {
    const topic = uniqueName('audit11-parts-forged');
    await createTopic(kafka.kafka, topic);
    const whole = Buffer.from(JSON.stringify({ a: 'z'.repeat(50) }));
    const parts = (id: string) => splitParts(whole, 20).map((p) => ({ key: 'k', value: p.value, headers: { ...p.headers, 'tpd-stream': 's', 'tpd-seq': id } }));
    const [a1, a2, a3] = parts('1');
    const [b1, , b3] = parts('2');
    const [c1, c2, c3] = parts('3');
    const [d1, d2, d3] = parts('4');
    const [e1, e2, e3] = parts('5');
    const forgedSum = { ...(c3 as { headers: Record<string, string> }).headers };
    const msgs = [
      { key: 'ok', value: Buffer.from('1') }, // 0
      a1, a2, a3, // 1-3: a good set
      b1, b3, // 4-5: part 2 missing: refused at part 3
      c1, c2, { key: 'k', value: Buffer.from('x'.repeat(12)), headers: forgedSum }, // 6-8: the last part replaced: the sum does not hold
      d3, // 9: a last part without the others
      { key: 'k', value: Buffer.from('y'), headers: { 'tpd-part': '2/1', 'tpd-sum': 'ab' } }, // 10: malformed
      d1, d2, // 11-12: begun...
      e1, e2, e3, // 13-15: another good set in between
      d1, d2, d3, // 16-18: ...and begun again: 11-12 refused, 16-18 a good set
      { key: 'ok', value: Buffer.from('2') }, // 19
    ].map((m) => m as { key: string; value: Buffer; headers?: Record<string, string> });
    for (const m of msgs) await produce(kafka.kafka, topic, [m]);
    const { dir, src, lines } = await consume(topic, { format: 'json', path: '/in/{key}/{header.tpd-seq}' }, msgs.length, String(msgs.length));
    const refused = ['4', '5', '6', '7', '8', '9', '10', '11', '12'];
    expect(src.stats.decodeErrors).toBe(refused.length);
    for (const o of refused) expect(lines.find((l) => l.offset === o), `offset ${o} logged`).toMatchObject({ code: 'TPD_KAFKA_PARTS', topic, partition: 0 });
    const recorded = (await readArchive(dir)).map((b) => b.updates.map(([p, v]) => [p, v]));
    expect(recorded).toEqual([
      [['/in/ok/_', 1]],
      [['/in/k/1', { a: 'z'.repeat(50) }]],
      [['/in/k/5', { a: 'z'.repeat(50) }]],
      [['/in/k/4', { a: 'z'.repeat(50) }]],
      [['/in/ok/_', 2]],
    ]);
  }, 60_000);

  it('a source stopped in the middle of a set reads it again at its restart and records it whole', async () => {
    const topic = uniqueName('audit11-parts-restart');
    await createTopic(kafka.kafka, topic);
    const whole = Buffer.from(JSON.stringify({ big: 'q'.repeat(300) }));
    const ps = splitParts(whole, 100).map((p) => ({ key: 'k', value: p.value, headers: p.headers }));
    expect(ps.length).toBe(4);
    const group = uniqueName('g-restart');
    await produce(kafka.kafka, topic, [{ key: 'a', value: Buffer.from('1') }, ...ps.slice(0, 2), { key: 'b', value: Buffer.from('2') }]);
    // Read through 'b' (offset 3), committed no further than the set's first part (offset 1).
    const first = await consume(topic, { format: 'json' }, 4, '1', group);
    await produce(kafka.kafka, topic, [...ps.slice(2), { key: 'c', value: Buffer.from('3') }]);
    // The restart reads from the set's first part: 'b' again (at least once), then the set whole.
    const second = await consume(topic, { format: 'json' }, 6, '7', group, first.dir);
    expect(second.src.stats.decodeErrors).toBe(0);
    const recorded = (await readArchive(first.dir)).map((b) => b.updates.map(([p, v]) => [p, v]));
    expect(recorded).toEqual([[['/in/a', 1]], [['/in/b', 2]], [['/in/b', 2]], [['/in/k', { big: 'q'.repeat(300) }]], [['/in/c', 3]]]);
  }, 60_000);
});

describe('the part assembler\'s limits (protocol/kafka-parts.ts)', () => {
  const value = Buffer.from('0123456789'.repeat(10));
  const set = (seq: string) => splitParts(value, 30).map((p) => ({ ...p.headers, 'tpd-stream': 's', 'tpd-seq': seq }));

  it('refuses a set whose last part does not come within partSetSpanMessagesMax messages, and commits past it', () => {
    const refused: string[] = [];
    const a = new PartAssembler({ partsPerSetMax: 100, partsHeldBytesMax: 1e9, partSetSpanMessagesMax: 5 }, (r) => refused.push(...r.offsets.map((o) => `${r.err.code}@${o}`)));
    const [h1, h2] = set('1');
    expect(a.take('p', '0', h1, value.subarray(0, 30))).toBeUndefined();
    expect(a.take('p', '1', h2, value.subarray(30, 60))).toBeUndefined();
    expect(a.heldFrom('p')).toBe('0');
    // Five messages after the first part (part 2 and four others): still held.
    for (let i = 2; i < 6; i++) expect(a.take('p', String(i), {}, Buffer.from('x'))?.firstOffset).toBe(String(i));
    expect(refused).toEqual([]);
    a.take('p', '6', {}, Buffer.from('x'));
    expect(refused).toEqual(['TPD_KAFKA_PARTS@0', 'TPD_KAFKA_PARTS@1']);
    expect(a.heldFrom('p')).toBeUndefined();
    expect(a.bytesHeld).toBe(0);
  });

  it('refuses the oldest set past partsHeldBytesMax, in any partition', () => {
    const refused: string[] = [];
    const a = new PartAssembler({ partsPerSetMax: 100, partsHeldBytesMax: 70, partSetSpanMessagesMax: 1000 }, (r) => refused.push(...r.offsets.map((o) => `${r.partition}@${o}`)));
    const [x1] = set('1');
    const [y1, y2] = set('2');
    a.take('p', '0', x1, value.subarray(0, 30));
    a.take('q', '0', y1, value.subarray(0, 30));
    expect(refused).toEqual([]);
    a.take('q', '1', y2, value.subarray(30, 60));
    expect(refused).toEqual(['p@0']);
    expect(a.bytesHeld).toBe(60);
  });

  it('a set read again from its first offset (a rebalance) begins anew without a refusal, and completes', () => {
    const refused: string[] = [];
    const a = new PartAssembler({ partsPerSetMax: 100, partsHeldBytesMax: 1e9, partSetSpanMessagesMax: 1000 }, (r) => refused.push(...r.offsets));
    const hs = set('1');
    a.take('p', '10', hs[0], value.subarray(0, 30));
    a.take('p', '11', hs[1], value.subarray(30, 60));
    const parts = splitParts(value, 30);
    let out;
    for (let i = 0; i < hs.length; i++) out = a.take('p', String(10 + i), hs[i], parts[i]?.value ?? null);
    expect(refused).toEqual([]);
    expect(out).toEqual({ value, firstOffset: '10' });
  });
});
