/**
 * The Kafka sink (docs/kafka.md): publishes every recorded batch live to a topic, with an
 * idempotent kafkajs producer, in the order recorded. One message per batch (key: the
 * batch's stream) or one per update (key: the path); msgpack or JSON values; the message
 * timestamp is the batch time; headers carry the batch identity (tpd-stream, tpd-seq), the
 * fencing token (tpd-fence) and the recorder id (tpd-recorder).
 *
 * With active/standby (server/ha/) only the active publishes. Every recorder keeps the
 * batches of the last `bufferWindowMs` (at most `bufferMaxBatches`) and follows the tail of
 * the topic itself, so that on promotion it knows the last batch of each stream that was
 * published, from the topic and not from a clock, and publishes exactly the buffered
 * batches after it.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Message, type Producer } from 'kafkajs';
import { pack } from 'msgpackr';
import type { Logger } from 'pino';
import type { Update } from '../../protocol/value.js';
import type { RecordedEvent, Recorder } from '../recorder.js';
import { compareSeq } from './identity.js';

export const KAFKA_SINK_DEFAULTS = {
  /** Batches waiting to be published; past this the oldest are dropped (counted, logged). */
  queueMaxBatches: 100_000,
  /** Batches sent in one produce request. */
  sendBatchesMax: 500,
  /** The standby buffer: batches recorded in the last window are kept for a promotion. */
  bufferWindowMs: 2_000,
  /** ... and at most this many of them. */
  bufferMaxBatches: 20_000,
  /** Messages per partition the tail follower reads back from the end of the topic at start. */
  tailReadMessages: 10_000,
  /** How long a promotion waits for the tail follower to reach the end of the topic. */
  catchUpMaxMs: 3_000,
  /** Pause after a failed send before the same batches are sent again. */
  retryBackoffMs: 250,
} as const;

export interface KafkaSinkOptions {
  brokers: string[];
  topic: string;
  format: 'msgpack' | 'json';
  key: 'stream' | 'path';
  clientId: string;
  recorderId: string;
  queueMaxBatches: number;
  bufferWindowMs: number;
  bufferMaxBatches: number;
  /** Follow the topic's tail (needed by active/standby; off for a lone recorder). */
  followTail: boolean;
  log: Logger;
}

interface Entry {
  e: RecordedEvent;
  atMs: number;
}

export interface SinkStatus {
  publishing: boolean;
  queueDepth: number;
  bufferDepth: number;
  published: number;
  dropped: number;
  sendErrors: number;
  lastPublished: { stream: string; seq: string; ts: number } | null;
  /** Epoch ms when the tail follower last read a message of the topic (null: never, or no follower). */
  tailReadAtMs: number | null;
}

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return { $base64: Buffer.from(v).toString('base64') };
  return v;
}

export class KafkaSink {
  private readonly o: KafkaSinkOptions;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private tail: Consumer | undefined;
  private readonly buffer: Entry[] = [];
  private queue: Entry[] = [];
  private active = false;
  private fence = 0;
  private pumping: Promise<void> | undefined;
  private stopped = false;
  /** Last seq per stream seen on the topic (tail follower) or published by us. */
  private readonly lastOnTopic = new Map<string, string>();
  /** Next offset the tail follower will read, per partition. */
  private readonly tailNext = new Map<number, bigint>();
  private promoting: Promise<void> | undefined;
  readonly stats = { published: 0, dropped: 0, sendErrors: 0, promotions: 0 };
  lastPublished: { stream: string; seq: string; ts: number } | null = null;
  private tailReadAtMs: number | null = null;
  private readonly onRecorded = (e: RecordedEvent): void => this.add(e);
  private recorder: Recorder | undefined;

  constructor(o: KafkaSinkOptions) {
    this.o = o;
    this.kafka = new Kafka({
      clientId: o.clientId,
      brokers: o.brokers,
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }) => {
        const { message, ...rest } = log;
        if (level === logLevel.ERROR || level === logLevel.WARN) o.log.warn({ kafka: rest }, message);
      },
      retry: { initialRetryTime: 100, retries: 5 },
    });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
  }

  async start(recorder: Recorder): Promise<void> {
    await this.producer.connect();
    if (this.o.followTail) await this.startTail();
    this.recorder = recorder;
    recorder.on('recorded', this.onRecorded);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.recorder?.off('recorded', this.onRecorded);
    await this.promoting?.catch(() => undefined);
    await this.pumping;
    await this.tail?.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
  }

  status(): SinkStatus {
    return {
      publishing: this.active, queueDepth: this.queue.length, bufferDepth: this.buffer.length,
      published: this.stats.published, dropped: this.stats.dropped, sendErrors: this.stats.sendErrors, lastPublished: this.lastPublished,
      tailReadAtMs: this.tailReadAtMs,
    };
  }

  /** Starts publishing: first the buffered batches the topic does not hold yet, then live ones. */
  setActive(fence: number): Promise<void> {
    this.fence = fence;
    if (this.active || this.promoting) return this.promoting ?? Promise.resolve();
    this.promoting = (async () => {
      if (this.o.followTail && !(await this.catchUp())) {
        // The follower did not reach the end (e.g. it is still reconnecting after a broker
        // restart): read the tail again with a new consumer, once.
        this.o.log.warn('kafka sink: the tail follower is behind; reading the end of the topic again');
        await this.tail?.disconnect().catch(() => undefined);
        await this.startTail().catch((err: unknown) => this.o.log.error({ err }, 'kafka sink: cannot follow the topic'));
        if (!(await this.catchUp())) this.o.log.error('kafka sink: the end of the topic could not be read in time; the promotion may publish duplicates');
      }
      if (this.stopped) return;
      // Synchronously from here: the queue is what the topic lacks, then live batches follow.
      const queue: Entry[] = [];
      for (const x of this.buffer) {
        const last = this.lastOnTopic.get(x.e.id.stream);
        if (last === undefined || compareSeq(x.e.id.seq, last) > 0) queue.push(x);
      }
      this.queue = queue;
      this.active = true;
      this.stats.promotions++;
      this.o.log.warn({ fence, replayed: queue.length, buffered: this.buffer.length }, 'kafka sink: publishing');
      this.pump();
    })().finally(() => {
      this.promoting = undefined;
    });
    return this.promoting;
  }

  /** Stops publishing (standby): what was queued stays in the buffer for a later promotion. */
  setStandby(): void {
    if (!this.active) return;
    this.active = false;
    this.queue = [];
    this.o.log.warn('kafka sink: standby, not publishing');
  }

  /** Stops publishing and waits for a send in flight to end. */
  async quiesce(): Promise<void> {
    this.setStandby();
    await this.pumping;
  }

  private add(e: RecordedEvent): void {
    const now = Date.now();
    const x = { e, atMs: now };
    const b = this.buffer;
    b.push(x);
    let drop = 0;
    // While a promotion reads the topic's end, the window does not age: the batches it will compare are kept.
    const windowMs = this.promoting ? Infinity : this.o.bufferWindowMs;
    while (drop < b.length && (b.length - drop > this.o.bufferMaxBatches || now - (b[drop] as Entry).atMs > windowMs)) drop++;
    if (drop > 0) b.splice(0, drop);
    if (!this.active) return;
    // A batch the topic already holds (this recorder lagged behind the old active) is not published again.
    const last = this.lastOnTopic.get(e.id.stream);
    if (last !== undefined && compareSeq(e.id.seq, last) <= 0) return;
    this.queue.push(x);
    if (this.queue.length > this.o.queueMaxBatches) {
      const n = this.queue.length - this.o.queueMaxBatches;
      this.queue.splice(0, n);
      this.stats.dropped += n;
      this.o.log.error({ dropped: n, queueMaxBatches: this.o.queueMaxBatches }, 'kafka sink: queue full, oldest batches dropped (not published)');
    }
    this.pump();
  }

  private messagesOf(x: Entry): Message[] {
    const { e } = x;
    const headers = { 'tpd-stream': e.id.stream, 'tpd-seq': e.id.seq, 'tpd-fence': String(this.fence), 'tpd-recorder': this.o.recorderId };
    const timestamp = String(Math.floor(e.ts / 1000));
    const enc = (v: unknown): Buffer => (this.o.format === 'msgpack' ? pack(v) : Buffer.from(JSON.stringify(v, jsonReplacer)));
    if (this.o.key === 'stream') {
      return [{ key: e.id.stream, value: enc({ ts: e.ts, source: e.source, stream: e.id.stream, seq: e.id.seq, updates: e.updates }), timestamp, headers }];
    }
    return e.updates.map((u: Update) => ({ key: u[0], value: enc({ ts: e.ts, value: u[1] }), timestamp, headers }));
  }

  private pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = (async () => {
      while (this.active && !this.stopped && this.queue.length > 0) {
        const take = this.queue.slice(0, KAFKA_SINK_DEFAULTS.sendBatchesMax);
        const messages = take.flatMap((x) => this.messagesOf(x));
        try {
          await this.producer.send({ topic: this.o.topic, messages, acks: -1 });
        } catch (err) {
          this.stats.sendErrors++;
          this.o.log.warn({ err, batches: take.length }, 'kafka sink: send failed; retrying the same batches');
          await new Promise((r) => setTimeout(r, KAFKA_SINK_DEFAULTS.retryBackoffMs));
          continue;
        }
        // The queue may have been replaced (standby, then a promotion) while sending.
        if (this.queue[0] === take[0]) this.queue.splice(0, take.length);
        for (const x of take) {
          const prev = this.lastOnTopic.get(x.e.id.stream);
          if (prev === undefined || compareSeq(x.e.id.seq, prev) > 0) this.lastOnTopic.set(x.e.id.stream, x.e.id.seq);
        }
        const last = take[take.length - 1] as Entry;
        this.lastPublished = { stream: last.e.id.stream, seq: last.e.id.seq, ts: last.e.ts };
        this.stats.published += take.length;
      }
    })().finally(() => {
      this.pumping = undefined;
      if (this.active && !this.stopped && this.queue.length > 0) this.pump();
    });
  }

  /** A consumer of the sink topic in a group of its own, from near its end, that keeps the last seq per stream. */
  private async startTail(): Promise<void> {
    const groupId = `tapedeck-sink-tail-${this.o.recorderId}-${randomUUID()}`;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const exists = (await admin.listTopics()).includes(this.o.topic);
      if (!exists) await admin.createTopics({ topics: [{ topic: this.o.topic, numPartitions: 1 }], waitForLeaders: true }).catch(() => undefined);
      const offs = await admin.fetchTopicOffsets(this.o.topic);
      const partitions = offs.map((p) => {
        const high = BigInt(p.high);
        const low = BigInt(p.low);
        const from = high - BigInt(KAFKA_SINK_DEFAULTS.tailReadMessages) > low ? high - BigInt(KAFKA_SINK_DEFAULTS.tailReadMessages) : low;
        this.tailNext.set(p.partition, from);
        return { partition: p.partition, offset: from.toString() };
      });
      await admin.setOffsets({ groupId, topic: this.o.topic, partitions });
    } finally {
      await admin.disconnect();
    }
    const tail = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 2_000 });
    this.tail = tail;
    await tail.connect();
    await tail.subscribe({ topic: this.o.topic, fromBeginning: true });
    await tail.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const stream = m.headers?.['tpd-stream'];
          const seq = m.headers?.['tpd-seq'];
          if (stream !== undefined && seq !== undefined) {
            const s = String(stream);
            const q = String(seq);
            const prev = this.lastOnTopic.get(s);
            if (prev === undefined || compareSeq(q, prev) > 0) this.lastOnTopic.set(s, q);
          }
          this.tailNext.set(batch.partition, BigInt(m.offset) + 1n);
        }
        if (batch.messages.length > 0) this.tailReadAtMs = Date.now();
      },
    });
  }

  /** Waits (bounded) until the tail follower has read the topic up to its current end; false when it did not. */
  private async catchUp(): Promise<boolean> {
    const deadline = Date.now() + KAFKA_SINK_DEFAULTS.catchUpMaxMs;
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const offs = await admin.fetchTopicOffsets(this.o.topic);
      for (;;) {
        const behind = offs.filter((p) => (this.tailNext.get(p.partition) ?? 0n) < BigInt(p.high));
        if (behind.length === 0) return true;
        if (Date.now() > deadline) {
          this.o.log.warn({ behind: behind.map((p) => p.partition) }, 'kafka sink: the tail of the topic was not read in time');
          return false;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    } catch (err) {
      this.o.log.warn({ err }, 'kafka sink: cannot read the end of the topic');
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
