/**
 * One fetched Kafka message set recorded by a shard (docs/cluster.md, "Exactly once"):
 * claimed in Redis (offsets a previous owner recorded are skipped, another shard's
 * in-doubt batch is waited for), recorded with a marker in every batch, made durable,
 * resolved in Redis, then committed to Kafka. The kafka source (server/sources/kafka.ts)
 * hands the parts of itself this needs as a KafkaBatchHost.
 */
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { Update } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import type { RecorderSink } from '../recorder.js';
import { writeIdentified, type IdentifiedSink } from '../sinks/identity.js';
import type { Claim, KafkaFence } from './kafka-fence.js';
import { kafkaMarker } from './kafka-marker.js';
import { batchTimeUs, messageTimeUs } from '../sources/kafka-paths.js';
import { writePieces, type Piece } from '../sources/kafka-refusals.js';
// Every Kafka source imports this module: kafkajs' idle loop is fixed before any client connects.
import './kafka-request-queue.js';

/** A kafka source as one shard of a cluster: the Redis fence that makes its batches exactly once. */
export interface KafkaClusterLink {
  fence: KafkaFence;
  /** 0: wait for another shard's in-doubt batch however long. */
  inDoubtMaxWaitMs: number;
}

export interface KafkaBatchHost {
  /** The source's name: the batches' stream and marker paths. */
  readonly name: string;
  readonly log: Logger;
  readonly stats: { messages: number };
  /** `batch: "message"`: one recorded batch per message. */
  readonly batchPerMessage: boolean;
  /** Most updates in one recorded batch (KAFKA_SOURCE_LIMITS.batchUpdatesMax). */
  readonly batchUpdatesMax: number;
  readonly sink: IdentifiedSink & Partial<RecorderSink>;
  stopping(): boolean;
  /** A message's updates (none for a payload refused, counted by the source). */
  updatesOf(topic: string, partition: number, m: KafkaMessage): Update[];
  /** Counts and logs a message whose batch the writer refused (its offset is committed with the rest). */
  refuse(topic: string, partition: number, offset: string, err: unknown): void;
  /** Commits the offset after `lastOffset` to Kafka and accounts the fetch. */
  commit(lastOffset: string, updates: number, startedMs: number): Promise<void>;
  /** The partition's high watermark as the broker tells it now (the fence asks when its `done` lies past the fetch's). */
  highWatermarkNow(topic: string, partition: number): Promise<string>;
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, SERVER_LIMITS.clusterInDoubtPollMs));

/**
 * The claim on a fetched message set, once no other shard's intent stands on its partition
 * (waiting, with heartbeats, while one does or while Redis is unreachable); undefined when
 * the fetch went stale or the source stops meanwhile.
 */
async function claimWhenFree(host: KafkaBatchHost, link: KafkaClusterLink, p: EachBatchPayload, first: string, last: string): Promise<Exclude<Claim, { kind: 'wait' }> | undefined> {
  const { topic, partition } = p.batch;
  const waitStartedMs = Date.now();
  let logged = false;
  for (;;) {
    if (host.stopping() || !p.isRunning() || p.isStale()) return undefined;
    const force = link.inDoubtMaxWaitMs > 0 && Date.now() - waitStartedMs >= link.inDoubtMaxWaitMs;
    try {
      const c = await link.fence.claim(topic, partition, first, last, force, p.batch.highWatermark, () => host.highWatermarkNow(topic, partition));
      if (c.kind !== 'wait') return c;
      if (!logged) host.log.warn({ topic, partition, holder: c.holder }, 'cluster: waiting for another shard to settle its in-doubt batch of this partition');
    } catch (err) {
      if (!logged) host.log.error({ err, topic, partition }, 'cluster: Redis unreachable; this partition waits (Kafka keeps its messages)');
    }
    logged = true;
    await p.heartbeat();
    await pause();
  }
}

/** Resolves the claim once Redis answers (the batches are durable: only `done` is left to move). */
async function resolveWhenReachable(host: KafkaBatchHost, link: KafkaClusterLink, p: EachBatchPayload, lastOffset: string): Promise<void> {
  for (let logged = false; ; logged = true) {
    try {
      await link.fence.resolve(p.batch.topic, p.batch.partition, lastOffset);
      return;
    } catch (err) {
      if (host.stopping()) throw err;
      if (!logged) host.log.error({ err }, 'cluster: Redis unreachable; this partition\'s recorded batch waits to be resolved');
    }
    await p.heartbeat().catch(() => undefined);
    await pause();
  }
}

/** Records one fetched message set of a partition exactly once across the shards (the steps above). */
export async function recordClusterBatch(host: KafkaBatchHost, link: KafkaClusterLink, p: EachBatchPayload): Promise<void> {
  const { batch, isRunning, isStale } = p;
  const { topic, partition } = batch;
  const firstMsg = batch.messages[0];
  const lastMsg = batch.messages[batch.messages.length - 1];
  if (!firstMsg || !lastMsg) return;
  const startedMs = Date.now();
  const claim = await claimWhenFree(host, link, p, firstMsg.offset, lastMsg.offset);
  if (!claim) return;
  if (claim.kind === 'skip') {
    await host.commit(lastMsg.offset, 0, startedMs);
    return;
  }
  const stream = `${host.name}:${topic}:${partition}`;
  const sink = host.sink;
  let pending: Piece[] = [];
  let pendingUpdates = 0;
  let lastOffset: string | undefined;
  let updates = 0;
  let lastTs: number | undefined;
  // The first offset no marker covers yet: a batch's marker spans its messages from there, so
  // refused messages before its first update are in its range (also when the writer's refusal
  // of a batch had it written again message by message: writePieces), and markers tile.
  let rangeFirst: string | undefined;
  const write = async (ps: Piece[]): Promise<number | undefined> => {
    const last = (ps[ps.length - 1] as Piece).offset;
    const batchUpdates = ps.flatMap((x) => x.updates);
    batchUpdates.push(kafkaMarker(host.name, topic, partition, rangeFirst ?? (ps[0] as Piece).offset, last));
    const ts = await writeIdentified(sink, batchUpdates, batchTimeUs(ps), { stream, seq: last });
    updates += batchUpdates.length - 1;
    rangeFirst = (BigInt(last) + 1n).toString();
    return ts;
  };
  const emit = async (): Promise<void> => {
    lastTs = (await writePieces(pending, write, (x, err) => host.refuse(topic, partition, x.offset, err))) ?? lastTs;
    pending = [];
    pendingUpdates = 0;
  };
  try {
    for (const m of batch.messages) {
      if (BigInt(m.offset) < claim.from) continue;
      if (!isRunning() || isStale()) break;
      const u = host.updatesOf(topic, partition, m);
      if (pendingUpdates > 0 && pendingUpdates + u.length >= host.batchUpdatesMax) await emit();
      // A message without a time (or refused for its time) leaves the batch's to the others.
      pending.push({ offset: m.offset, updates: u, tsUs: messageTimeUs(m.timestamp) ?? undefined });
      rangeFirst ??= m.offset;
      pendingUpdates += u.length;
      lastOffset = m.offset;
      host.stats.messages++;
      if (host.batchPerMessage) await emit();
    }
    await emit();
    if (lastTs !== undefined) await (sink.durable ? sink.durable(lastTs) : sink.flush?.());
  } catch (err) {
    // What was appended is settled from the archive's durable markers; the rest is fetched again.
    await link.fence.settleOwn(topic, partition).catch(() => undefined);
    throw err;
  }
  if (lastOffset === undefined) {
    await link.fence.settleOwn(topic, partition);
    return;
  }
  await resolveWhenReachable(host, link, p, lastOffset);
  await host.commit(lastOffset, updates, startedMs);
}
