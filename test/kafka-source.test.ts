/**
 * The Kafka source against a real single-node broker (scripts/kafka.sh; the run's shared
 * one, so topics and source names, hence consumer groups, are unique): what is produced is
 * what the archive holds; offsets are committed only after the archive flush, so a recorder
 * killed with SIGKILL and restarted loses nothing. Kill moment: KAFKA_SOURCE_SEED (printed).
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pack } from 'msgpackr';
import { request } from 'undici';
import type { KafkaSource } from '../server/sources/kafka.js';
import { tapedeckArgs } from './helpers/built.js';
import { createTopic, produce, type KafkaPeer } from './helpers/kafka.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { readArchive as readBack } from './helpers/replay.js';
import { until } from './helpers/until.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

let broker: KafkaPeer;
beforeAll(async () => {
  broker = await sharedKafka();
}, PEER_START_MAX_MS);

/** The group's committed offsets on `topic`, summed; -1 while the group coordinator is not ready (a fresh broker). */
async function committedOffset(groupId: string, topic: string): Promise<bigint> {
  const admin = broker.kafka.admin();
  await admin.connect();
  try {
    const r = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (r[0]?.partitions ?? []).reduce((n, p) => n + (p.offset === '-1' ? 0n : BigInt(p.offset)), 0n);
  } catch (err) {
    if ((err as { retriable?: boolean }).retriable) return -1n;
    throw err;
  } finally {
    await admin.disconnect();
  }
}

describe('kafka source', () => {
  it('records every produced message once, in order, one batch per message, stamped with the message time', async () => {
    const topic = uniqueName('src-json');
    const name = uniqueName('k');
    await createTopic(broker.kafka, topic);
    const N = 300;
    const t0 = Date.now() - 60_000;
    await produce(broker.kafka, topic, Array.from({ length: N }, (_, i) => ({ key: `dev-${i % 7}`, value: JSON.stringify({ n: i }), timestamp: String(t0 + i) })));
    const srv = await recordingServer({ sources: [{ name, type: 'kafka', brokers: [broker.brokers], topics: [topic], batch: 'message' }] });
    const src = srv.sources[0] as KafkaSource;
    await until(() => src.stats.messages >= N && src.lag().every((l) => l.lag === 0) && src.lag().length === 1, 30_000, 'all messages consumed');
    const metrics = await (await request(`${srv.url}/metrics`)).body.text();
    expect(metrics).toMatch(new RegExp(`tapedeck_kafka_consumer_lag\\{source="${name}",topic="${topic}",partition="0"\\} 0`));
    await srv.close();
    const batches = await readBack(srv.dir);
    expect(batches).toHaveLength(N);
    batches.forEach((b, i) => {
      expect(b.updates).toEqual([[`/kafka/${topic}/dev-${i % 7}`, { n: i }]]);
      expect(b.ts).toBe((t0 + i) * 1000);
    });
    expect(await committedOffset(`tapedeck-${name}`, topic)).toBe(BigInt(N));
  });

  it('msgpack payloads exploded to leaves under a path built from a header, one batch per fetched message set', async () => {
    const topic = uniqueName('src-msgpack');
    await createTopic(broker.kafka, topic);
    const N = 50;
    await produce(broker.kafka, topic, Array.from({ length: N }, (_, i) => ({ key: null, value: pack({ cpu: i, ifs: { eth0: i * 2 } }), headers: { site: `s${i % 2}` } })));
    const srv = await recordingServer({
      sources: [{ name: uniqueName('m'), type: 'kafka', brokers: [broker.brokers], topics: [topic], format: 'msgpack', explode: true, path: '/sites/{header.site}/{partition}' }],
    });
    const src = srv.sources[0] as KafkaSource;
    await until(() => src.stats.messages >= N && src.stats.commits > 0 && src.lag()[0]?.lag === 0, 30_000, 'all messages consumed');
    await srv.close();
    const recorded = await readBack(srv.dir);
    const updates = recorded.flatMap((b) => b.updates);
    expect(updates).toEqual(Array.from({ length: N }, (_, i) => [[`/sites/s${i % 2}/0/cpu`, i], [`/sites/s${i % 2}/0/ifs/eth0`, i * 2]]).flat());
    // All N were on the topic before the consumer started: fetched sets hold several
    // messages, and each set is one batch.
    expect(recorded.length).toBeLessThan(N);
  });

  it('topics by regular expression; a new group starting at a time skips what came before it', async () => {
    // The pattern matches this test's two topics only, on a broker other files use too.
    const rx = uniqueName('rx');
    await createTopic(broker.kafka, `${rx}.a`);
    await createTopic(broker.kafka, `${rx}.b`);
    const cut = Date.now() - 10_000;
    const msgs = (): Array<{ key: string; value: string; timestamp: string }> => [
      { key: 'old', value: '1', timestamp: String(cut - 5000) },
      { key: 'new', value: '2', timestamp: String(cut + 1000) },
    ];
    await produce(broker.kafka, `${rx}.a`, msgs());
    await produce(broker.kafka, `${rx}.b`, msgs());
    const srv = await recordingServer({
      sources: [{ name: rx, type: 'kafka', brokers: [broker.brokers], topic_pattern: `^${rx}\\.`, start: new Date(cut).toISOString(), path: '/{topic}/{key}' }],
    });
    const src = srv.sources[0] as KafkaSource;
    await until(() => src.stats.messages >= 2 && src.lag().length === 2 && src.lag().every((l) => l.lag === 0), 30_000, 'both topics consumed');
    await srv.close();
    const paths = (await readBack(srv.dir)).flatMap((b) => b.updates.map((u) => u[0])).sort();
    expect(paths).toEqual([`/${rx}.a/new`, `/${rx}.b/new`]);
  });

  it('a topic pattern that backtracks exponentially runs in linear time: the recorder matches it against a hostile topic name and keeps answering', async () => {
    // ^rx\.(a+)+$ against "rx.aaa...ab" takes 2^60 steps in a backtracking engine: kafkajs
    // tests the pattern against every topic of the broker at subscribe, so a topic anyone
    // may create held the recorder for ever. With the linear engine it is one pass.
    const rx = uniqueName('rxl');
    await createTopic(broker.kafka, `${rx}.${'a'.repeat(60)}b`);
    await createTopic(broker.kafka, `${rx}.aaa`);
    await produce(broker.kafka, `${rx}.aaa`, [{ key: 'k', value: '7', timestamp: String(Date.now()) }]);
    const srv = await recordingServer({
      sources: [{ name: rx, type: 'kafka', brokers: [broker.brokers], topic_pattern: `^${rx}\\.(a+)+$`, start: 'earliest', path: '/{topic}/{key}' }],
    });
    const src = srv.sources[0] as KafkaSource;
    await until(() => src.stats.messages >= 1, 30_000, 'the matching topic consumed');
    await srv.close();
    const paths = (await readBack(srv.dir)).flatMap((b) => b.updates.map((u) => u[0]));
    expect(paths).toEqual([`/${rx}.aaa/k`]);
  });

  it('SIGKILL of the recorder while it consumes, then a restart: every produced message is in the archive (duplicates only since the last commit)', async () => {
    const topic = uniqueName('src-crash');
    const name = uniqueName('c');
    await createTopic(broker.kafka, topic);
    const N = 5_000;
    const dir = await tmpDir();
    const archive = join(dir, 'archive');
    const cfg = join(dir, 'cfg.json');
    await writeFile(cfg, JSON.stringify({
      archive_directory: archive,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      log_level: 'warn',
      sources: [{ name, type: 'kafka', brokers: [broker.brokers], topics: [topic], batch: 'message', fetch_bytes_per_partition: 4096, session_timeout: '6s' }],
    }));
    const children: ChildProcess[] = [];
    onTestFinished(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
    const startRecorder = (): ChildProcess => {
      const child = spawn(process.execPath, tapedeckArgs('serve', '--config', cfg), { stdio: ['ignore', 'pipe', 'inherit'] });
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', () => undefined);
      children.push(child);
      return child;
    };
    // Produce while the recorder consumes; kill it with SIGKILL at a random chunk, once it
    // has committed something, and go on producing while it is down.
    const CHUNKS = 50;
    const killAt = 5 + Math.floor(rng(scheduleSeed('KAFKA_SOURCE_SEED', 'kafka-source.test kill chunk'))() * 35);
    const first = startRecorder();
    const exited = new Promise((r) => first.once('exit', r));
    for (let c = 0; c < CHUNKS; c++) {
      const per = N / CHUNKS;
      await produce(broker.kafka, topic, Array.from({ length: per }, (_, i) => ({ key: 'k', value: String(c * per + i) })));
      if (c === killAt) {
        await until(async () => (await committedOffset(`tapedeck-${name}`, topic)) > 0n, 30_000, 'a first commit');
        first.kill('SIGKILL');
        await exited;
      }
    }
    const committedBefore = await committedOffset(`tapedeck-${name}`, topic);
    expect(committedBefore).toBeGreaterThan(0n);
    expect(committedBefore).toBeLessThan(BigInt(N));
    const second = startRecorder();
    await until(async () => (await committedOffset(`tapedeck-${name}`, topic)) === BigInt(N), 60_000, 'everything committed after the restart');
    const secondExit = new Promise<number | null>((r) => second.once('exit', (code) => r(code)));
    second.kill('SIGTERM');
    expect(await secondExit).toBe(0);
    const values = (await readBack(archive)).flatMap((b) => b.updates.map((u) => Number(u[1])));
    // Every message, in order; a message may appear twice only as a replay of the span
    // after the last commit before the kill.
    const seen = new Set(values);
    for (let i = 0; i < N; i++) expect(seen.has(i), `message ${i}`).toBe(true);
    let dups = 0;
    for (let i = 1; i < values.length; i++) {
      if ((values[i] as number) <= (values[i - 1] as number)) {
        dups++;
        expect(values[i] as number).toBeGreaterThanOrEqual(Number(committedBefore));
      }
    }
    expect(dups).toBeLessThanOrEqual(1);
    expect(values.length - N).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
