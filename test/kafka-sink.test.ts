/**
 * The Kafka sink against a real broker: a consumer of the topic (not the recorder's own
 * view) finds every recorded batch once, in order, with the batch time as the message time;
 * a broker restart in the middle loses and duplicates nothing (idempotent producer, retries
 * in order). The restart test has a broker of its own; the others use the run's shared one.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { decodeMsgpack as unpack } from '../protocol/value-msgpack.js';
import { request } from 'undici';
import type { Batch } from '../protocol/value.js';
import { readTopic, startKafka, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { readArchive as readBack } from './helpers/replay.js';
import { until } from './helpers/until.js';

let shared: KafkaPeer;
beforeAll(async () => {
  shared = await sharedKafka();
}, PEER_START_MAX_MS);

async function push(url: string, from: number, n: number): Promise<void> {
  const lines: string[] = [];
  for (let i = from; i < from + n; i++) lines.push(JSON.stringify({ updates: { [`/p/k${i % 5}`]: i, '/p/s': `v${i}` } }));
  const res = await request(`${url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

describe('kafka sink', () => {
  it('publishes every recorded batch once, in order (msgpack, key = stream), across a broker restart', async () => {
    const topic = 'sink-msgpack';
    // The broker is restarted: the test's own.
    const broker = await startKafka();
    onTestFinished(() => broker.destroy());
    const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic, format: 'msgpack' } });
    const N = 400;
    await push(srv.url, 0, N / 2);
    await until(() => (srv.ha?.view().sink?.published ?? 0) >= N / 2, 20_000, 'the first half published');
    await broker.stop();
    await push(srv.url, N / 2, N / 2);
    await broker.restart();
    await until(() => (srv.ha?.view().sink?.published ?? 0) >= N, 60_000, 'the second half published after the restart');
    const ha = (await (await request(`${srv.url}/api/v1/ha`)).body.json()) as Record<string, unknown>;
    expect(ha).toMatchObject({ enabled: false, role: 'active', publishing: true, published: N, dropped: 0 });
    await srv.close();
    const recorded = await readBack(srv.dir);
    expect(recorded).toHaveLength(N);
    const msgs = await readTopic(broker.kafka, topic);
    expect(msgs).toHaveLength(N);
    msgs.forEach((m, i) => {
      const v = unpack(m.value as Buffer) as { ts: number; stream: string; seq: string; updates: unknown };
      const b = recorded[i] as Batch;
      expect(v.ts).toBe(b.ts);
      expect(v.updates).toEqual(b.updates);
      expect(m.key?.toString()).toBe('push');
      expect(m.headers['tpd-stream']).toBe('push');
      expect(m.timestamp).toBe(String(Math.floor(b.ts / 1000)));
    });
  }, 120_000);

  it('one JSON message per update with the path as key', async () => {
    const topic = uniqueName('sink-json-path');
    const broker = shared;
    const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic, format: 'json', key: 'path' } });
    await push(srv.url, 0, 10);
    await until(() => (srv.ha?.view().sink?.published ?? 0) >= 10, 20_000, 'published');
    await srv.close();
    const recorded = await readBack(srv.dir);
    const msgs = await readTopic(broker.kafka, topic);
    const expected = recorded.flatMap((b) => b.updates.map((u) => ({ key: u[0], value: { ts: b.ts, value: u[1] } })));
    expect(msgs.map((m) => ({ key: m.key?.toString(), value: JSON.parse((m.value as Buffer).toString()) as unknown }))).toEqual(expected);
  });
});
