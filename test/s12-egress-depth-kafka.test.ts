/**
 * Values at the limits through the Kafka sink (docs/kafka.md, "The Kafka sink";
 * docs/values.md): a value of exactly valueDepthMax levels, which every ingest door takes,
 * and a string and bytes as large as an NDJSON line takes (ingestLineBytesMax), come out of
 * the topic equal, in msgpack and JSON, by stream and by path. The message's own containers
 * (its map, `updates`, a [path, value] pair) are no level of the value's, as a session
 * frame's are not (77b1642). The encoder directly, then a real broker (the run's shared one),
 * the large values in parts.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_PART_HEADERS } from '../protocol/kafka-parts.js';
import { valueFromJson } from '../protocol/value-json.js';
import { decodeMsgpack, MsgpackWriter } from '../protocol/value-msgpack.js';
import { VALUE_DEPTH_MAX, type Update, type Value } from '../protocol/value.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { sinkMessages } from '../server/sinks/kafka-messages.js';
import { SinkAuth } from '../server/sinks/sink-auth.js';
import { deepUpdates, largestValues, ndjsonLine, nested } from './helpers/limit-values.js';
import { readTopic, type KafkaPeer, type ReadMessage } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { postNdjson } from './helpers/value-outputs.js';
import { until } from './helpers/until.js';
import { valueDiff } from './helpers/values.js';

const T0_US = 1_763_000_000_000_000;
const DEEP = deepUpdates('/deep');
/** Containers around a value in a sink message, by key (docs/kafka.md). */
const ENVELOPE = { stream: 3, path: 1 } as const;

function event(updates: Update[]): Parameters<typeof sinkMessages>[0] {
  return { source: 'push', ts: T0_US, updates, id: { stream: 'push', seq: '1' } };
}

function same(want: Value, got: unknown, where: string): void {
  const d = valueDiff(want, got);
  if (d) throw new Error(`${where}: ${d}`);
}

/** The updates a sink message's value holds, as a consumer decodes it. */
function decoded(format: 'msgpack' | 'json', key: 'stream' | 'path', path: string | undefined, value: Buffer): Array<[string, unknown]> {
  if (format === 'msgpack') {
    const m = decodeMsgpack(value, true, ENVELOPE[key]) as Record<string, unknown>;
    return key === 'stream' ? (m.updates as Array<[string, unknown]>) : [[path as string, m.value]];
  }
  const j = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
  if (key === 'stream') return (j.updates as Array<[string, unknown]>).map(([p, x]) => [p, valueFromJson(x, p)]);
  return [[path as string, valueFromJson(j.value, path as string)]];
}

const COMBOS = [['msgpack', 'stream'], ['msgpack', 'path'], ['json', 'stream'], ['json', 'path']] as const;

describe('the Kafka sink message encoder', () => {
  it('writes values of valueDepthMax levels, every format and key, and they decode equal', () => {
    for (const [format, key] of COMBOS) {
      const ms = sinkMessages(event(DEEP), { format, key, fence: 0, recorderId: 'r', auth: new SinkAuth(), mp: new MsgpackWriter() });
      const got = ms.flatMap((m) => decoded(format, key, m.key as string, m.value as Buffer));
      expect(got.map((u) => u[0]), `${format} ${key}`).toEqual(DEEP.map((u) => u[0]));
      DEEP.forEach(([p, v], i) => same(v, got[i]?.[1], `${format} by ${key}, ${p}`));
    }
  });

  it('still refuses a value of one level more', () => {
    for (const [format, key] of COMBOS) {
      expect(() => sinkMessages(event([['/d', nested(VALUE_DEPTH_MAX + 1, 1)]]), { format, key, fence: 0, recorderId: 'r', auth: new SinkAuth(), mp: new MsgpackWriter() }), `${format} ${key}`).toThrow(/nested deeper than 64/);
    }
  });
});

/** The topic's messages with each set of parts joined back into the message it was cut from (docs/kafka.md, "Messages in parts"). */
function joinParts(msgs: readonly ReadMessage[]): Array<{ key: string; value: Buffer }> {
  const out: Array<{ key: string; value: Buffer }> = [];
  let held: Buffer[] = [];
  for (const m of msgs) {
    const part = m.headers[KAFKA_PART_HEADERS.part];
    if (part === undefined) {
      expect(held).toHaveLength(0);
      out.push({ key: String(m.key), value: m.value as Buffer });
      continue;
    }
    const [i, n] = part.split('/').map(Number) as [number, number];
    expect(i).toBe(held.length + 1);
    held.push(m.value as Buffer);
    if (i === n) {
      const whole = Buffer.concat(held);
      expect(createHash('sha256').update(whole).digest('hex')).toBe(m.headers[KAFKA_PART_HEADERS.sum]);
      out.push({ key: String(m.key), value: whole });
      held = [];
    }
  }
  expect(held).toHaveLength(0);
  return out;
}

describe('values at the limits through a real broker', () => {
  let broker: KafkaPeer;
  beforeAll(async () => {
    broker = await sharedKafka();
  }, PEER_START_MAX_MS);

  it('come out of the topic equal: msgpack and JSON, by stream and by path, the largest in parts', async () => {
    const big = largestValues(T0_US + 1, '/big/str', '/big/bytes');
    const batches: Update[][] = [DEEP, [big.str], [big.bytes]];
    for (const [format, key] of COMBOS) {
      const topic = uniqueName(`s12-depth-${format}-${key}`);
      const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic, format, key } });
      try {
        for (let i = 0; i < batches.length; i++) {
          const text = ndjsonLine(T0_US + i, batches[i] as Update[]);
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(SERVER_LIMITS.ingestLineBytesMax);
          const r = await postNdjson(srv.url, text);
          expect(r.json, `${format} ${key} batch ${i}`).toMatchObject({ accepted_lines: 1, rejected_lines: 0 });
        }
        await until(() => (srv.ha?.view().sink?.published ?? 0) >= batches.length, 60_000, `${format} by ${key}: every batch published`);
      } finally {
        await srv.close();
      }
      const msgs = joinParts(await readTopic(broker.kafka, topic, 60_000));
      const got = msgs.flatMap((m) => decoded(format, key, m.key, m.value));
      const want = batches.flat();
      expect(got.map((u) => u[0]), `${format} ${key}`).toEqual(want.map((u) => u[0]));
      want.forEach(([p, v], i) => same(v, got[i]?.[1], `${format} by ${key}, ${p}`));
    }
  }, 300_000);

  it('drop a batch no message can be made of (counted), and publish the batches behind it', async () => {
    // No recorded value makes the encoder throw since the fix above; a batch of one level more,
    // handed to the sink as the recorder hands it a batch, stands for any refusal. Before, the
    // pump restarted on it without yielding and froze the process (not even a timer ran).
    const topic = uniqueName('s12-unencodable');
    const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic } });
    try {
      srv.recorder?.emit('recorded', { source: 'push', ts: T0_US, updates: [['/too/deep', nested(VALUE_DEPTH_MAX + 1, 1)]], id: { stream: 'elsewhere', seq: '1' } });
      const r = await postNdjson(srv.url, ndjsonLine(T0_US + 1, [['/ok', 1]]));
      expect(r.json).toMatchObject({ accepted_lines: 1 });
      await until(() => (srv.ha?.view().sink?.published ?? 0) >= 1, 30_000, 'the batch behind it published');
      expect(srv.ha?.view().sink).toMatchObject({ published: 1, dropped: 1 });
    } finally {
      await srv.close();
    }
    const msgs = await readTopic(broker.kafka, topic);
    expect(msgs.map((m) => decoded('msgpack', 'stream', undefined, m.value as Buffer))).toEqual([[['/ok', 1]]]);
  }, 60_000);
});
