/**
 * `kafka`: consumes topics (by name or by regular expression) in a consumer group with
 * kafkajs and records each message at a path made from a template (`/kafka/{topic}/{key}`
 * by default), its payload decoded as JSON, msgpack, a string or raw bytes, whole or
 * exploded to leaf paths. One batch per fetched message set of a partition (`batch:
 * "fetch"`, default) or per message (`batch: "message"`), stamped with the message
 * timestamp. Each batch carries its identity (topic-partition and offset) for the sink and
 * active/standby.
 *
 * At-least-once: offsets are committed only after the batches are durable in the archive
 * (the recorder's durable(ts) of the last batch recorded: a committed, fsynced flush shared
 * with concurrent waiters; writer.flush() when the sink has no durable()), so a crash never
 * loses an acknowledged message; it may record the messages since the last commit a second
 * time after a restart.
 * Consumer lag per partition (high watermark minus the next offset) is kept for /metrics.
 *
 * In a cluster (docs/cluster.md) the shards share one consumer group and record under a
 * Redis fence (server/cluster/kafka-fence.ts) with a marker in every batch, which closes
 * the window above: each message is recorded by exactly one shard, once.
 */
import { EventEmitter } from 'node:events';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry } from 'kafkajs';
// kafkajs 2.2.4 wakes every idle connection ~1 000 times a second: patched on import (see the file).
import '../cluster/kafka-request-queue.js';
import type { Logger } from 'pino';
import { DURATION_SCHEMA, durationMs } from '../duration.js';
import { parseTs } from '../../protocol/time.js';
import { isValidPath, type Update } from '../../protocol/value.js';
import { badPath, badTime, batchTimeUs, decodePayload, messagePath, messageTimeUs, reservedPath } from './kafka-paths.js';
import { KafkaRefusals, writePieces, type Piece } from './kafka-refusals.js';
import { KafkaGate } from './kafka-gate.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { explode } from './http-json.js';
import { linearRegExp } from '../linear-regex.js';
import { KAFKA_SOURCE_LIMITS, type KafkaSourceConfig, type PartitionLag } from './kafka-source-config.js';

export { bytesSegment } from './kafka-paths.js';
import { HealthTracker, type PollEvent, type Source, type SourceContext, type SourceFactory, type SourceHealth } from './source.js';
import { writeIdentified, type IdentifiedSink } from '../sinks/identity.js';
import type { RecorderSink } from '../recorder.js';
import { recordClusterBatch, type KafkaClusterLink } from '../cluster/kafka-batches.js';
import { isMarkerPath } from '../cluster/kafka-marker.js';

export { KAFKA_SOURCE_LIMITS, type KafkaSourceConfig, type PartitionLag } from './kafka-source-config.js';

/** kafkajs log lines into pino (warnings and errors only). */
function logCreator(log: Logger) {
  return () => ({ level, log: entry }: LogEntry) => {
    const { message, ...rest } = entry;
    if (level === logLevel.ERROR) log.error({ kafka: rest }, message);
    else if (level === logLevel.WARN) log.warn({ kafka: rest }, message);
  };
}

export class KafkaSource extends EventEmitter implements Source {
  readonly type = 'kafka';
  readonly name: string;
  private readonly cfg: KafkaSourceConfig;
  private readonly ctx: SourceContext;
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private groupId: string;
  private cluster: KafkaClusterLink | undefined;
  private readonly tracker: HealthTracker;
  private readonly lags = new Map<string, PartitionLag>();
  private consumer: Consumer | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** decodeErrors: every message refused (payload, time, path, or the writer's refusal of its batch). */
  readonly stats = { messages: 0, commits: 0, decodeErrors: 0 };
  private readonly refusals: KafkaRefusals;
  /** Stale fences and messages in parts (kafka-gate.ts). */
  private readonly gate: KafkaGate;

  constructor(cfg: KafkaSourceConfig, ctx: SourceContext) {
    super();
    this.name = ctx.name;
    this.cfg = cfg;
    this.ctx = ctx;
    this.log = ctx.log;
    this.groupId = cfg.group_id ?? `tapedeck-${ctx.name}`;
    this.kafka = new Kafka({
      clientId: cfg.client_id ?? `tapedeck-${ctx.name}`,
      brokers: cfg.brokers,
      logLevel: logLevel.WARN,
      logCreator: logCreator(ctx.log),
      retry: { initialRetryTime: 250, retries: 10 },
    });
    this.tracker = new HealthTracker(ctx.name, 'kafka');
    this.refusals = new KafkaRefusals(ctx.log, this.stats, KAFKA_SOURCE_LIMITS);
    this.gate = new KafkaGate({ ...KAFKA_SOURCE_LIMITS, partsPerSetMax: PROTOCOL_LIMITS.kafkaPartsPerSetMax }, (topic, partition, offset, err) => this.refusals.refuse(topic, partition, offset, err), ctx.log);
  }

  /**
   * The consumer group of this source in cluster `name`: its group_id, else one shared by
   * the shards of the cluster, so that Kafka splits the partitions between them.
   */
  clusterGroupId(name: string): string {
    return this.cfg.group_id ?? `tapedeck-${name}-${this.name}`;
  }

  /** Records under the cluster's fence (before start()): each batch once across the shards. */
  joinCluster(link: KafkaClusterLink): void {
    this.groupId = link.fence.group;
    this.cluster = link;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      this.tracker.failure(e);
      this.log.error({ err: e }, 'kafka source stopped on an error');
      this.emit('poll', { ok: false, error: e } satisfies PollEvent);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.consumer?.disconnect().catch(() => undefined);
    this.refusals.stop();
    this.tracker.stopped();
  }

  health(): SourceHealth {
    return this.tracker.snapshot();
  }

  /** Consumer lag of every partition seen so far. */
  lag(): PartitionLag[] {
    return [...this.lags.values()];
  }

  private async run(): Promise<void> {
    const topics: Array<string | RegExp> = this.cfg.topic_pattern !== undefined ? [linearRegExp(this.cfg.topic_pattern)] : [...(this.cfg.topics ?? [])];
    const start = this.cfg.start ?? 'earliest';
    if (start !== 'earliest' && start !== 'latest') await this.seedOffsetsAt(parseTs(start) / 1000, topics);
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      maxBytesPerPartition: this.cfg.fetch_bytes_per_partition ?? KAFKA_SOURCE_LIMITS.fetchBytesPerPartitionMax,
      maxBytes: KAFKA_SOURCE_LIMITS.fetchBytesMax,
      minBytes: this.cfg.fetch_min_bytes ?? (this.cluster ? KAFKA_SOURCE_LIMITS.clusterFetchMinBytes : 1),
      maxWaitTimeInMs: this.cfg.fetch_max_wait !== undefined ? durationMs(this.cfg.fetch_max_wait) : this.cluster ? KAFKA_SOURCE_LIMITS.clusterFetchMaxWaitMs : KAFKA_SOURCE_LIMITS.fetchMaxWaitMs,
      ...(this.cfg.session_timeout !== undefined ? { sessionTimeout: durationMs(this.cfg.session_timeout), heartbeatInterval: Math.max(500, Math.floor(durationMs(this.cfg.session_timeout) / 5)) } : {}),
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      this.tracker.failure(err);
      this.emit('poll', { ok: false, error: err } satisfies PollEvent);
    });
    // A rebalance: each partition is read again from its committed offset.
    consumer.on(consumer.events.GROUP_JOIN, () => this.gate.reassigned());
    // An idle topic is not a stale source: a live group membership counts as success.
    consumer.on(consumer.events.HEARTBEAT, () => this.tracker.success(0));
    if (this.stopping) return;
    // Intents this shard left standing when it was killed: settled before anything is consumed.
    await this.cluster?.fence.settle();
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: start !== 'latest' });
    if (this.stopping) return;
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (p) => this.onBatch(consumer, p),
    });
    this.tracker.success(0);
  }

  /** A group with no committed offset on a topic starts at the first message at or after `ms`. */
  private async seedOffsetsAt(ms: number, topics: Array<string | RegExp>): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const all = await admin.listTopics();
      const names = all.filter((t) => topics.some((x) => (typeof x === 'string' ? x === t : x.test(t))));
      for (const topic of names) {
        const committed = await admin.fetchOffsets({ groupId: this.groupId, topics: [topic] });
        const parts = committed[0]?.partitions ?? [];
        if (parts.some((p) => p.offset !== '-1')) continue;
        const at = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
        await admin.setOffsets({ groupId: this.groupId, topic, partitions: at.map((o) => ({ partition: o.partition, offset: o.offset })) });
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * A message's updates; none for a payload that does not decode: it is refused as ingest
   * refuses a bad value (docs/values.md), counted and logged with its path and place
   * (KafkaRefusals), and its offset is committed with the rest (it would never decode).
   */
  private updatesOf(topic: string, partition: number, message: KafkaMessage): Update[] {
    // A stale active's message, or a part of a message held until its set is complete.
    const m = this.gate.admit(topic, partition, message);
    if (!m) return [];
    const path = messagePath(this.cfg.path ?? '/kafka/{topic}/{key}', topic, partition, m);
    try {
      // A path the recorder would refuse (too long a key, NUL from a JSON key under explode)
      // is refused here, like a bad payload: thrown at the write, it would stop the
      // partition at this message for good.
      if (!isValidPath(path)) throw badPath(path);
      if (messageTimeUs(m.timestamp) === null) throw badTime(m.timestamp);
      const updates: Update[] = this.cfg.explode ? explode(path, decodePayload(this.cfg.format ?? 'json', m.value, path)) : [[path, decodePayload(this.cfg.format ?? 'json', m.value, path)]];
      for (const u of updates) if (!isValidPath(u[0])) throw badPath(u[0]);
      // In a cluster the shards' batch markers are settled from (docs/cluster.md): a message
      // cannot write one, as a push cannot (server/cluster/runtime.ts).
      if (this.cluster) for (const u of updates) if (isMarkerPath(u[0])) throw reservedPath(u[0]);
      return updates;
    } catch (err) {
      this.refusals.refuse(topic, partition, m.offset, err, path);
      return [];
    }
  }

  /** A partition's high watermark as the broker tells it now (an admin request: rare, the cluster fence's doubt). */
  private async highWatermarkNow(topic: string, partition: number): Promise<string> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const at = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition);
      if (!at) throw new Error(`partition ${partition} of ${topic} is not on the broker`);
      return at.high;
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch(consumer: Consumer, p: EachBatchPayload): Promise<void> {
    if (this.cluster) {
      const link = this.cluster;
      return recordClusterBatch({
        name: this.name,
        log: this.log,
        stats: this.stats,
        batchPerMessage: this.cfg.batch === 'message',
        batchUpdatesMax: KAFKA_SOURCE_LIMITS.batchUpdatesMax,
        sink: this.ctx.sink as IdentifiedSink & Partial<RecorderSink>,
        stopping: () => this.stopping,
        updatesOf: (topic, partition, m) => this.updatesOf(topic, partition, m),
        refuse: (topic, partition, offset, err) => this.refusals.refuse(topic, partition, offset, err),
        commit: (lastOffset, updates, startedMs) => this.commit(consumer, p, lastOffset, updates, startedMs),
        highWatermarkNow: (topic, partition) => this.highWatermarkNow(topic, partition),
      }, link, p);
    }
    const { batch, isRunning, isStale } = p;
    const { topic, partition } = batch;
    const stream = `${this.name}:${topic}:${partition}`;
    const sink = this.ctx.sink as IdentifiedSink;
    const startedMs = Date.now();
    let pending: Piece[] = [];
    let pendingUpdates = 0;
    let lastOffset: string | undefined;
    let updates = 0;
    let lastTs: number | undefined;
    // One batch of the pieces' updates, its identity the last message's offset; a batch the
    // writer refuses goes again message by message, and a message refused alone is refused.
    const write = async (ps: Piece[]): Promise<number | undefined> => {
      const ts = await writeIdentified(sink, ps.flatMap((x) => x.updates), batchTimeUs(ps), { stream, seq: (ps[ps.length - 1] as Piece).offset });
      for (const x of ps) updates += x.updates.length;
      return ts;
    };
    const emit = async (): Promise<void> => {
      lastTs = (await writePieces(pending, write, (x, err) => this.refusals.refuse(topic, partition, x.offset, err))) ?? lastTs;
      pending = [];
      pendingUpdates = 0;
    };
    for (const m of batch.messages) {
      if (!isRunning() || isStale()) break;
      const u = this.updatesOf(topic, partition, m);
      if (pendingUpdates > 0 && pendingUpdates + u.length > KAFKA_SOURCE_LIMITS.batchUpdatesMax) await emit();
      pending.push({ offset: m.offset, updates: u, tsUs: messageTimeUs(m.timestamp) ?? undefined });
      pendingUpdates += u.length;
      lastOffset = m.offset;
      this.stats.messages++;
      if (this.cfg.batch === 'message') await emit();
    }
    if (lastOffset === undefined) return;
    await emit();
    // Durable first, then acknowledged: a crash between the two records these again. When
    // the spec kept nothing of this fetch there is nothing of it to wait for.
    const durableSink = sink as Partial<RecorderSink>;
    if (typeof durableSink.durable === 'function') {
      if (lastTs !== undefined) await durableSink.durable(lastTs);
    } else if (sink.flush) {
      await sink.flush();
    }
    await this.commit(consumer, p, lastOffset, updates, startedMs);
  }

  /** Acknowledges a fetched message set through `lastOffset` to Kafka, once it is durable. */
  private async commit(consumer: Consumer, p: EachBatchPayload, lastOffset: string, updates: number, startedMs: number): Promise<void> {
    const { topic, partition, highWatermark } = p.batch;
    // No further than a set of parts still held: a restart reads it again.
    const next = this.gate.commitOffset(topic, partition, (BigInt(lastOffset) + 1n).toString());
    await consumer.commitOffsets([{ topic, partition, offset: next }]);
    this.stats.commits++;
    p.resolveOffset(lastOffset);
    this.lags.set(`${topic}\0${partition}`, { topic, partition, lag: Math.max(0, Number(BigInt(highWatermark) - BigInt(next))) });
    this.tracker.success(updates);
    this.emit('poll', { ok: true, updates, notModified: false, durationMs: Date.now() - startedMs } satisfies PollEvent);
    this.emit('committed', { topic, partition, offset: next });
    await p.heartbeat();
  }
}

export const kafkaSource: SourceFactory = {
  type: 'kafka',
  schema: {
    type: 'object',
    required: ['brokers'],
    additionalProperties: false,
    oneOf: [{ required: ['topics'], properties: { topics: {} } }, { required: ['topic_pattern'], properties: { topic_pattern: {} } }],
    properties: {
      brokers: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$' } },
      topics: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 249 } },
      topic_pattern: { type: 'string', minLength: 1 },
      group_id: { type: 'string', minLength: 1 },
      client_id: { type: 'string', minLength: 1 },
      start: { type: 'string', minLength: 1 },
      format: { enum: ['json', 'msgpack', 'string', 'binary'] },
      path: { type: 'string', pattern: '^/' },
      explode: { type: 'boolean' },
      batch: { enum: ['fetch', 'message'] },
      session_timeout: DURATION_SCHEMA,
      fetch_bytes_per_partition: { type: 'integer', minimum: 1024, maximum: KAFKA_SOURCE_LIMITS.fetchBytesPerPartitionMax },
      fetch_min_bytes: { type: 'integer', minimum: 1, maximum: KAFKA_SOURCE_LIMITS.fetchBytesMax },
      fetch_max_wait: DURATION_SCHEMA,
    },
  },
  check: (config) => {
    const out: string[] = [];
    const start = config.start as string | undefined;
    if (start !== undefined && start !== 'earliest' && start !== 'latest') {
      try {
        parseTs(start);
      } catch (err) {
        out.push(`start: must be earliest, latest, or a time (RFC 3339 or epoch): ${(err as Error).message}`);
      }
    }
    if (config.topic_pattern !== undefined) {
      try {
        linearRegExp(config.topic_pattern as string);
      } catch (err) {
        out.push(`topic_pattern: ${(err as Error).message}`);
      }
    }
    return out;
  },
  create: (config, ctx) => new KafkaSource(config as unknown as KafkaSourceConfig, ctx),
};
