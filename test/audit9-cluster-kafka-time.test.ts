/**
 * Kafka message timestamps the archive cannot take as they are (docs/kafka.md): a message
 * without one (-1, the old message format) is stamped by the recorder's clock, not recorded
 * at the epoch (or just after the archive's last batch); a timestamp past 2^53 µs is refused
 * like an undecodable payload (counted, logged, its offset committed) instead of being
 * refused at the write, which kafkajs retried for ever: the partition stopped at it. A real
 * broker (the run's shared one), a real recording server.
 */
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { createTopic, produce, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

let broker: KafkaPeer;
beforeAll(async () => {
  broker = await sharedKafka();
}, PEER_START_MAX_MS);

describe('the Kafka source and message times', () => {
  for (const batch of ['message', 'fetch'] as const) {
    it(`batch: ${batch}: no timestamp is the recorder's clock, one past 2^53 µs is refused, the partition goes on`, async () => {
      const topic = uniqueName('audit9-kafka-time');
      await createTopic(broker.kafka, topic);
      const nowMs = Date.now();
      const early = nowMs - 60_000;
      const late = nowMs + 3_600_000;
      const messages = [
        { key: 'early', value: Buffer.from('1'), timestamp: String(early) },
        { key: 'none', value: Buffer.from('2'), timestamp: '-1' },
        { key: 'far', value: Buffer.from('3'), timestamp: String(10_000_000_000_000) },
        { key: 'late', value: Buffer.from('4'), timestamp: String(late) },
      ];
      // One produce request per message: a fetch may still bring several (batch: fetch).
      for (const m of messages) await produce(broker.kafka, topic, [m]);
      const dir = await tmpDir('tapedeck-audit9-kafka-time-');
      const before = Date.now() * 1000;
      const srv = await startServer(resolveConfig({
        archive_directory: dir,
        record: { spec: ['/**'], flush_interval: '0' },
        publish: { bind: '127.0.0.1:0' },
        sources: [{ name: uniqueName('in'), type: 'kafka', brokers: [broker.brokers], topics: [topic], format: 'json', batch, path: '/kt/{key}' }],
      }), { logger: pino({ level: 'silent' }) });
      let after: number;
      try {
        const src = srv.sources[0] as KafkaSource;
        await until(() => src.stats.messages >= messages.length && src.lag().length === 1 && src.lag().every((l) => l.lag === 0), 20_000, 'every message consumed and committed');
        after = Date.now() * 1000;
        expect(src.stats.decodeErrors).toBe(1);
      } finally {
        await srv.close();
      }
      const recorded = (await readArchive(dir)).flatMap((b) => b.updates.map(([p, v]) => ({ ts: b.ts, p, v })));
      const at = (p: string) => recorded.filter((u) => u.p === p);
      expect(at('/kt/far')).toEqual([]);
      expect(at('/kt/late')).toEqual([{ ts: late * 1000, p: '/kt/late', v: 4 }]);
      if (batch === 'message') {
        expect(at('/kt/early')).toEqual([{ ts: early * 1000, p: '/kt/early', v: 1 }]);
        const none = at('/kt/none');
        expect(none).toHaveLength(1);
        expect(none[0]!.ts).toBeGreaterThanOrEqual(before);
        expect(none[0]!.ts).toBeLessThanOrEqual(after);
      } else {
        // A fetch is one batch at its newest message time: never the epoch, never past 2^53.
        for (const u of recorded) expect(u.ts).toBeGreaterThanOrEqual(early * 1000);
        expect(at('/kt/early').map((u) => u.v)).toEqual([1]);
        expect(at('/kt/none').map((u) => u.v)).toEqual([2]);
      }
    }, 40_000);
  }
});
