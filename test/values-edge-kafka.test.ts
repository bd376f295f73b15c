/**
 * The Kafka source at the edges of text: binary keys (not UTF-8, or holding NUL) each get a
 * path of their own instead of sharing one with U+FFFD in their place; payloads that are not
 * UTF-8, JSON with a key twice, msgpack with a str that is not UTF-8 are refused (counted in
 * decodeErrors), not recorded altered; a key making no path (NUL, too long) is refused the
 * same way instead of stopping its partition at that message. A real broker (the run's shared one).
 */
import { pino } from 'pino';
import { request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { bytesSegment, type KafkaSource } from '../server/sources/kafka.js';
import { createTopic, produce, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

describe('bytesSegment', () => {
  it('keeps UTF-8 text (escaping % and /) and writes NUL and every byte outside well-formed UTF-8 as %XX', () => {
    const b = (...x: number[]): Buffer => Buffer.from(x);
    expect(bytesSegment(Buffer.from('sw-1/é%'))).toBe('sw-1%2Fé%25');
    expect(bytesSegment(b(0xff, 0x61, 0xc3, 0xa9, 0x00, 0xed, 0xa0, 0x80, 0xc3))).toBe('%FFaé%00%ED%A0%80%C3');
    // Distinct bytes, distinct segments (a decoder's U+FFFD would make these one).
    const keys = [b(0xff), b(0xfe), b(0x80, 0x01), b(0x81, 0x01), b(0x25, 0x46, 0x46), b(0xef, 0xbf, 0xbd)];
    expect(new Set(keys.map(bytesSegment)).size).toBe(keys.length);
  });
});

describe('the Kafka source', () => {
  let broker: KafkaPeer;
  beforeAll(async () => {
    broker = await sharedKafka();
  }, PEER_START_MAX_MS);

  it('records binary keys at distinct paths and refuses payloads it would alter', async () => {
    const topic = uniqueName('values-edge');
    await createTopic(broker.kafka, topic);
    const t0Ms = Date.now() - 60_000;
    const int64 = (n: bigint): Buffer => {
      const x = Buffer.alloc(8);
      x.writeBigInt64BE(n);
      return x;
    };
    const good = [
      { key: int64(0xff01n), value: Buffer.from('1') },
      { key: int64(0xfe01n), value: Buffer.from('2') },
      { key: int64(1n), value: Buffer.from('3') },
      { key: Buffer.from('plain'), value: Buffer.from('{"a":"\\u00e9"}') },
    ];
    const bad = [
      Buffer.from([0x22, 0x61, 0xff, 0x22]), // "a<ff>": not UTF-8
      Buffer.from('{"a":1,"a":2}'),
      Buffer.from('{"a":1e400}'),
    ];
    await produce(broker.kafka, topic, [
      ...good.map((m, i) => ({ ...m, timestamp: String(t0Ms + i) })),
      ...bad.map((value, i) => ({ key: `bad${i}`, value, timestamp: String(t0Ms + good.length + i) })),
      // A key making a path past pathCharsMax: refused like a bad payload, not a partition stopped here for good.
      { key: 'k'.repeat(5000), value: Buffer.from('4'), timestamp: String(t0Ms + good.length + bad.length) },
    ]);
    const dir = await tmpDir('tapedeck-kafka-edge-');
    const srv = await startServer(resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: uniqueName('in'), type: 'kafka', brokers: [broker.brokers], topics: [topic], format: 'json', batch: 'message', path: '/ke/{key}' }],
    }), { logger: pino({ level: 'silent' }) });
    try {
      const src = srv.sources[0] as KafkaSource;
      const total = good.length + bad.length + 1;
      await until(() => src.stats.messages >= total && src.lag().length === 1 && src.lag().every((l) => l.lag === 0), 20_000, 'every message consumed and committed');
      expect(src.stats.decodeErrors).toBe(bad.length + 1);
      const state = (await (await request(`${srv.url}/api/v1/state?glob=${encodeURIComponent('/ke/**')}`)).body.json()) as { values: Record<string, unknown> };
      expect(state.values).toEqual({
        [`/ke/${bytesSegment(int64(0xff01n))}`]: 1,
        [`/ke/${bytesSegment(int64(0xfe01n))}`]: 2,
        [`/ke/${bytesSegment(int64(1n))}`]: 3,
        '/ke/plain': { a: 'é' },
      });
    } finally {
      await srv.close();
    }
  });
});
