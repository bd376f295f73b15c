/**
 * The value contract at Kafka (docs/values.md), against the run's shared broker: hostile
 * values pushed into a recording server come out of the topic identical, in the msgpack
 * form (key = stream) and in the JSON form (key = path); and hostile values produced to a
 * topic, as JSON and as msgpack payloads, are recorded by the `kafka` source identical or
 * refused (not recorded, counted, logged naming the path). Kept apart from
 * values-e2e.test.ts because the broker is slow to start. Seeded; the seed is printed.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { setOwn, type Update, type Value } from '../protocol/value.js';
import { valueFromJson, valueToJson, valueToJsonText } from '../protocol/value-json.js';
import { decodeMsgpack, encodeMsgpack } from '../protocol/value-msgpack.js';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
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

/** Payloads no `format` may record as a value: refused, each naming its path. */
const UNDECODABLE = {
  json: [Buffer.from('9007199254740993'), Buffer.from('{"x":[{"$date":"2020"}]}')],
  msgpack: [Buffer.from([0xc1]), Buffer.from([0x92, 0x01, 0xd4, 9, 0])],
} as const;

describe('values at the Kafka source', () => {
  it('are recorded identical from JSON and msgpack payloads, or refused naming the path', async () => {
    const batches = fc.sample(hostileUpdates, { seed: propertySeed('kafka source'), numRuns: 20 });
    const values = batches.flat().map(([, v]) => v);
    const t0Ms = Date.now() - 60_000;
    for (const format of ['json', 'msgpack'] as const) {
      const topic = uniqueName(`values-in-${format}`);
      await createTopic(broker.kafka, topic);
      const encode = (v: Value): Buffer => Buffer.from(format === 'json' ? valueToJsonText(v) : encodeMsgpack(v));
      const bad = UNDECODABLE[format];
      await produce(broker.kafka, topic, [
        ...values.map((v, i) => ({ key: `v${i}`, value: encode(v), timestamp: String(t0Ms + i) })),
        ...bad.map((value, i) => ({ key: `bad${i}`, value, timestamp: String(t0Ms + values.length + i) })),
      ]);
      const logged: string[] = [];
      const dir = await tmpDir('tapedeck-kafka-in-');
      const srv = await startServer(resolveConfig({
        archive_directory: dir,
        record: { spec: ['/**'], flush_interval: '0' },
        publish: { bind: '127.0.0.1:0' },
        sources: [{ name: uniqueName('in'), type: 'kafka', brokers: [broker.brokers], topics: [topic], format, batch: 'message', path: '/kv/{key}' }],
      }), { logger: pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) }) });
      try {
        const src = srv.sources[0] as KafkaSource;
        const total = values.length + bad.length;
        await until(() => src.stats.messages >= total && src.lag().length === 1 && src.lag().every((l) => l.lag === 0), 20_000, `${format}: every message consumed and committed`);
        expect(src.stats.decodeErrors).toBe(bad.length);
        // And /metrics says so, without reading logs.
        const metrics = await (await request(`${srv.url}/metrics`)).body.text();
        expect(metrics).toContain(`tapedeck_kafka_decode_errors{source="${src.name}"} ${bad.length}`);
        // Each refusal is logged naming its path (the 1st and 2nd are always logged).
        bad.forEach((_b, i) => expect(logged.some((l) => l.includes('kafka payload refused') && l.includes(`/kv/bad${i}`)), `${format} bad${i}`).toBe(true));
        const res = await request(`${srv.url}/api/v1/history?glob=${encodeURIComponent('/kv/**')}`);
        const lines = (await res.body.text()).split('\n').filter((l) => l !== '');
        // One batch per message, stamped with its time; none for a refused payload.
        expect(lines).toHaveLength(values.length);
        const state = (await (await request(`${srv.url}/api/v1/state?glob=${encodeURIComponent('/kv/**')}`)).body.json()) as { values: Record<string, unknown> };
        expect(Object.keys(state.values).sort()).toEqual(values.map((_v, i) => `/kv/v${i}`).sort());
        for (const l of lines) {
          const b = JSON.parse(l) as { ts: number; updates: Record<string, unknown> };
          const [[path, j]] = Object.entries(b.updates) as [[string, unknown]];
          const i = Number(path.slice('/kv/v'.length));
          expect(b.ts).toBe((t0Ms + i) * 1000);
          same(values[i] as Value, valueFromJson(j, path), `${format} history ${path}`);
          same(values[i] as Value, valueFromJson(state.values[path], path), `${format} state ${path}`);
        }
      } finally {
        await srv.close();
      }
    }
  }, 60_000);
});
