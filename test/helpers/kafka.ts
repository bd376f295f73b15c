/**
 * A real Apache Kafka broker (KRaft, single node, loopback) through scripts/kafka.sh. Tests
 * use the run's shared broker (sharedKafka() in test/helpers/peers.ts) and start a private
 * one with startKafka() only to stop, kill or restart it. Also small kafkajs helpers to
 * produce and to read a topic back from outside the recorder.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Message } from 'kafkajs';

const run = promisify(execFile);
const script = new URL('../../scripts/kafka.sh', import.meta.url).pathname;

/** A broker to talk to: the shared one cannot be stopped from a test file. */
export interface KafkaPeer {
  /** host:port */
  brokers: string;
  kafka: Kafka;
}

export interface KafkaBroker extends KafkaPeer {
  dir: string;
  /** Graceful stop (data kept; start again with restart()). */
  stop(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export async function startKafka(): Promise<KafkaBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-kafka-'));
  const start = async (): Promise<string> => (await run('bash', [script, 'start', dir], { timeout: 90_000 })).stdout.trim();
  const brokers = await start();
  return {
    brokers, dir, kafka: kafkaClient(brokers),
    stop: async () => void await run('bash', [script, 'stop', dir]),
    kill: async () => void await run('bash', [script, 'kill', dir]),
    restart: async () => void await start(),
    destroy: async () => {
      await run('bash', [script, 'kill', dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function kafkaClient(brokers: string): Kafka {
  return new Kafka({ clientId: 'tapedeck-test', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
}

/**
 * Creates `topic` (with `configEntries`, e.g. max.message.bytes) and waits until every
 * partition has a leader. kafkajs' own wait (waitForLeaders) gives up when the busy broker
 * answers the first metadata request with "does not host this topic-partition".
 */
export async function createTopic(k: Kafka, topic: string, partitions = 1, configEntries: Array<{ name: string; value: string }> = []): Promise<void> {
  const admin = k.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries }], waitForLeaders: false });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const led = await admin.fetchTopicMetadata({ topics: [topic] }).then((m) => {
        const parts = m.topics[0]?.partitions ?? [];
        return parts.length === partitions && parts.every((p) => p.leader >= 0);
      }, () => false);
      if (led) return;
      if (Date.now() > deadline) throw new Error(`createTopic ${topic}: no leader for every partition after 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await admin.disconnect();
  }
}

export async function produce(k: Kafka, topic: string, messages: Message[]): Promise<void> {
  const p = k.producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) await p.send({ topic, messages: messages.slice(i, i + 500), acks: -1 });
  } finally {
    await p.disconnect();
  }
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, string>;
}

/** Every message of `topic` (all partitions) from the beginning to the current end, read with the admin offsets and a fresh consumer group. */
export async function readTopic(k: Kafka, topic: string, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const admin = k.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const want = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const out: ReadMessage[] = [];
  if ([...want.values()].every((h) => h === 0n)) return out;
  const consumer = k.consumer({ groupId: `reader-${randomUUID()}` });
  await consumer.connect();
  const got = new Map<number, bigint>();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`readTopic ${topic}: timed out with ${out.length} messages`)), timeoutMs);
      const check = (): void => {
        for (const [p, h] of want) if ((got.get(p) ?? 0n) < h) return;
        clearTimeout(timer);
        resolve();
      };
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const headers: Record<string, string> = {};
          for (const [hk, hv] of Object.entries(message.headers ?? {})) if (hv !== undefined) headers[hk] = String(hv);
          out.push({ partition, offset: message.offset, key: message.key, value: message.value, timestamp: message.timestamp, headers });
          got.set(partition, BigInt(message.offset) + 1n);
          check();
        },
      }).catch(reject);
      check();
    });
  } finally {
    await consumer.disconnect();
  }
  return out.filter((m) => BigInt(m.offset) < (want.get(m.partition) ?? 0n));
}
