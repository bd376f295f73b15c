/**
 * The batch marker of a Kafka batch recorded in a cluster (docs/cluster.md, "Exactly once"):
 * one more update in the batch itself, at `/tapedeck/kafka/<source>/<topic>/<partition>`,
 * whose value is `{ "first": <offset>, "last": <offset> }`, the offsets of the messages the
 * batch holds. Being in the batch, it is durable exactly when the batch is: a shard that
 * restarts after kill -9 reads, from its own archive's end state, the last offset it
 * recorded durably of each partition, and so resolves a batch left in doubt in Redis.
 * Pure: no I/O.
 */
import type { Update, Value } from '../../protocol/value.js';
import { segment } from '../sources/csv-matrix.js';

export const KAFKA_MARKER_PREFIX = '/tapedeck/kafka';

/** A path under the markers' prefix (or the prefix itself). */
export function isMarkerPath(path: string): boolean {
  return path.startsWith(KAFKA_MARKER_PREFIX) && (path.length === KAFKA_MARKER_PREFIX.length || path[KAFKA_MARKER_PREFIX.length] === '/');
}

export function kafkaMarkerPath(source: string, topic: string, partition: number): string {
  return `${KAFKA_MARKER_PREFIX}/${segment(source)}/${segment(topic)}/${partition}`;
}

/** The marker update of a batch holding the messages `first`..`last` (offsets as decimal strings). */
export function kafkaMarker(source: string, topic: string, partition: number, first: string, last: string): Update {
  return [kafkaMarkerPath(source, topic, partition), { first: Number(first), last: Number(last) }];
}

/** The last offset a marker value names, or undefined when `v` is not a marker. */
export function markerLast(v: Value | undefined): bigint | undefined {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || Array.isArray(v)) return undefined;
  const last = (v as Record<string, Value>).last;
  if (typeof last === 'bigint') return last;
  return typeof last === 'number' && Number.isSafeInteger(last) ? BigInt(last) : undefined;
}

/**
 * Marker paths a kafka source's batches may use, for the config check that the record
 * spec keeps them: one per listed topic, or a stand-in topic under topic_pattern.
 */
export function kafkaMarkerProbes(source: string, options: Record<string, unknown>): string[] {
  const topics = Array.isArray(options.topics) ? (options.topics as string[]) : ['_'];
  return topics.map((t) => kafkaMarkerPath(source, t, 0));
}
