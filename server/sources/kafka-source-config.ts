/**
 * The Kafka source's limits table, its config and the lag it reports (docs/kafka.md; the
 * source itself is kafka.ts).
 */
import type { Duration } from '../duration.js';

export const KAFKA_SOURCE_LIMITS = {
  /** Most updates in one recorded batch; a larger fetched message set is cut into several. */
  batchUpdatesMax: 50_000,
  /** Bytes fetched per partition per request (kafkajs maxBytesPerPartition). */
  fetchBytesPerPartitionMax: 1024 * 1024,
  /** Bytes fetched per request over all partitions (kafkajs maxBytes). */
  fetchBytesMax: 10 * 1024 * 1024,
  /** Default longest time the broker holds a fetch waiting for data (fetch_max_wait). */
  fetchMaxWaitMs: 250,
  /**
   * In a cluster, the defaults of fetch_min_bytes and fetch_max_wait: every batch costs a
   * durable flush, two Redis calls and an offset commit, so N shards sharing a topic's rate
   * would each pay them N times as often per update with fetches answered at once
   * (test/bench/cluster-record.ts: +82 % CPU per update from 1 to 3 shards; with these, none).
   */
  clusterFetchMinBytes: 256 * 1024,
  /** In a cluster, how long the broker may hold a fetch to fill clusterFetchMinBytes (adds at most this much latency). */
  clusterFetchMaxWaitMs: 1000,
  /**
   * Log lines naming one refused message each, per source per second (kafka-refusals.ts); past
   * it a partition's refusals are summed into one line a second (count, offsets, codes): a
   * topic of garbage cannot flood the log, and no refused offset goes unnamed.
   */
  refusalLogLinesPerSecond: 10,
  /** Offsets such a summary line lists (it also names the last one). */
  refusalSummaryOffsetsMax: 20,
  /**
   * Bytes of message parts held (protocol/kafka-parts.ts: sink batches larger than their
   * topic takes) while their sets are not complete, over all partitions; past it the oldest
   * set is refused. Above the largest batch (batchBytesMax, 48 MiB) in its wire form.
   */
  partsHeldBytesMax: 96 * 1024 * 1024,
  /** A set whose last part has not come within this many messages of its partition after its first is refused (its producer stopped mid-set). */
  partSetSpanMessagesMax: 100_000,
  /**
   * A message of an active/standby pair under a tpd-fence below the highest read on its
   * partition is refused as stale only within this many messages after that highest began
   * (an old active's late send lands right after the takeover); past it, it is a reset of the
   * pair's tokens (protocol/kafka-fence-watch.ts): taken, logged.
   */
  staleFenceWindowMessages: 10_000,
} as const;

export interface KafkaSourceConfig {
  brokers: string[];
  topics?: string[];
  topic_pattern?: string;
  group_id?: string;
  client_id?: string;
  /** Where a group with no committed offset starts: earliest, latest, or a time (RFC 3339 or epoch). */
  start?: string;
  format?: 'json' | 'msgpack' | 'string' | 'binary';
  path?: string;
  explode?: boolean;
  batch?: 'fetch' | 'message';
  /** Bytes fetched per partition per request (default KAFKA_SOURCE_LIMITS.fetchBytesPerPartitionMax). */
  fetch_bytes_per_partition?: number;
  /**
   * The broker answers a fetch once it holds this many bytes, or after fetch_max_wait
   * (default 1 byte: at once; in a cluster 256 KiB). Larger fetches mean fewer batches, each one durable flush
   * and offset commit: less CPU per update, at up to fetch_max_wait more latency.
   */
  fetch_min_bytes?: number;
  /** How long the broker may hold a fetch for fetch_min_bytes (default 250ms; in a cluster 1s). */
  fetch_max_wait?: Duration;
  /** Consumer group session timeout: how long a recorder that died holds its partitions (default 30 s; the broker allows 6 s to 5 min). */
  session_timeout?: Duration;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  lag: number;
}
