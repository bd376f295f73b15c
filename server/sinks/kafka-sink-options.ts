/**
 * The Kafka sink's limits, options and status (docs/kafka.md; the sink itself is kafka.ts):
 * one table of its named bounds, the options a recorder's config gives it, and what it
 * reports on /status and /metrics.
 */
import type { Logger } from 'pino';

export const KAFKA_SINK_DEFAULTS = {
  /** Batches waiting to be published; past this the oldest are dropped (counted, logged). */
  queueMaxBatches: 100_000,
  /** Batches sent in one produce request. */
  sendBatchesMax: 500,
  /** Bytes of messages in one produce request (one record batch: the broker refuses it past message.max.bytes, 1 MiB by default); at least one message. */
  sendBytesMax: 512 * 1024,
  /**
   * A message the broker refuses alone as too large (key: "stream", a batch of tens of
   * thousands of updates; key: "path", one huge value) goes as parts (protocol/kafka-parts.ts)
   * of at most this many bytes, halved at each refusal down to partBytesMin.
   */
  partBytesStart: 256 * 1024,
  /** Smallest part; a message the topic refuses in parts of this size is not published (counted in dropped, logged). */
  partBytesMin: 1024,
  /** The standby buffer: batches recorded in the last window are kept for a promotion. */
  bufferWindowMs: 2_000,
  /** ... and at most this many of them. */
  bufferMaxBatches: 20_000,
  /** Messages per partition the tail follower reads back from the end of the topic at start. */
  tailReadMessages: 10_000,
  /** How long a promotion waits for the tail follower to reach the end of the topic. */
  catchUpMaxMs: 3_000,
  /** Identities the follower read before the pair's key was known, kept to be verified once it is (past it the oldest go: duplicates possible, never loss). */
  unverifiedMax: 20_000,
  /** How long a promotion waits in all (replacing a stuck follower) before it publishes regardless. */
  promotionMaxWaitMs: 60_000,
  /** A Kafka client that does not disconnect in this time is left behind. */
  disconnectMaxMs: 5_000,
  /** Pause after a failed send before the same batches are sent again. */
  retryBackoffMs: 250,
  /** How often a sink whose lease is not sure to hold (mayPublish) looks again before its next send. */
  leaseWaitMs: 20,
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
  /** See KAFKA_SINK_DEFAULTS.promotionMaxWaitMs. */
  promotionMaxWaitMs: number;
  /** Follow the topic's tail (needed by active/standby; off for a lone recorder). */
  followTail: boolean;
  log: Logger;
}


export interface SinkStatus {
  publishing: boolean;
  queueDepth: number;
  bufferDepth: number;
  published: number;
  dropped: number;
  sendErrors: number;
  /** Promotions that published without having read the topic's end (duplicates possible). */
  uncertainPromotions: number;
  /** Batches the topic may lack that left a full standby buffer. */
  bufferOverflows: number;
  lastPublished: { stream: string; seq: string; ts: number } | null;
  /** Epoch ms when the tail follower last read a message of the topic (null: never, or no follower). */
  tailReadAtMs: number | null;
  /** Messages on the topic with an identity this recorder pair did not write (passed over). */
  foreignMessages: number;
}
