/**
 * The value contract at the Kafka sink (docs/values.md), against a real broker: hostile
 * values pushed into a recording server come out of the topic identical, in the msgpack
 * form (key = stream) and in the JSON form (key = path), on the run's shared broker. Kept
 * apart from values-e2e.test.ts because the broker is slow to start. Seeded; the seed is
 * printed.
 */
import fc from 'fast-check';
import { request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { setOwn, type Update, type Value } from '../protocol/value.js';
import { valueFromJson, valueToJson } from '../protocol/value-json.js';
import { decodeMsgpack } from '../protocol/value-msgpack.js';
import { readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { until } from './helpers/until.js';
import { hostileUpdates, propertySeed, valueDiff } from './helpers/values.js';

const BATCHES = 30;
const T0_US = 1_763_000_000_000_000;

let broker: KafkaPeer;
beforeAll(async () => {
  broker = await sharedKafka();
}, PEER_START_MAX_MS);

async function pushAll(url: string, batches: readonly Update[][]): Promise<void> {
  const lines = batches.map((updates, i) => {
    const u: Record<string, unknown> = {};
    for (const [p, v] of updates) setOwn(u, p, valueToJson(v));
    return JSON.stringify({ ts: T0_US + i, updates: u });
  });
  const res = await request(`${url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
  const body = (await res.body.json()) as Record<string, unknown>;
  expect(body, JSON.stringify(body)).toMatchObject({ accepted_lines: batches.length, rejected_lines: 0 });
}

function same(want: Value, got: unknown, where: string): void {
  const d = valueDiff(want, got);
  if (d) throw new Error(`${where}: ${d}`);
}

describe('values at the Kafka sink', () => {
  it('come out of the topic identical, msgpack by stream and JSON by path', async () => {
    const batches = fc.sample(hostileUpdates, { seed: propertySeed('kafka sink'), numRuns: BATCHES });
    for (const format of ['msgpack', 'json'] as const) {
      const topic = uniqueName(`values-${format}`);
      const key = format === 'msgpack' ? 'stream' : 'path';
      const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic, format, key } });
      const updates = batches.reduce((n, b) => n + b.length, 0);
      await pushAll(srv.url, batches);
      await until(() => (srv.ha?.view().sink?.published ?? 0) >= batches.length, 30_000, 'every batch published');
      await srv.close();
      const msgs = await readTopic(broker.kafka, topic);
      if (format === 'msgpack') {
        expect(msgs).toHaveLength(batches.length);
        msgs.forEach((m, i) => {
          const b = decodeMsgpack(m.value as Buffer) as { ts: unknown; updates: Array<[string, Value]> };
          expect(b.ts).toBe(T0_US + i);
          const want = batches[i] as Update[];
          expect(b.updates.map((u) => u[0])).toEqual(want.map((u) => u[0]));
          want.forEach(([p, v], j) => same(v, b.updates[j]?.[1], `msgpack batch ${i} ${p}`));
        });
      } else {
        expect(msgs).toHaveLength(updates);
        const want = batches.flatMap((b, i) => b.map(([p, v]) => ({ ts: T0_US + i, p, v })));
        msgs.forEach((m, k) => {
          const w = want[k] as { ts: number; p: string; v: Value };
          expect(m.key?.toString()).toBe(w.p);
          const j = JSON.parse((m.value as Buffer).toString('utf8')) as { ts: number; value: unknown };
          expect(j.ts).toBe(w.ts);
          same(w.v, valueFromJson(j.value, w.p), `json message ${k} ${w.p}`);
        });
      }
    }
  }, 180_000);
});
