/**
 * A batch's source identity: what lets two recorders with the same sources recognize the
 * same batch without trusting their clocks. `stream` names one ordered feed (a poller, a
 * Kafka topic-partition), `seq` its position in it (a decimal integer as a string: the
 * snapshot time in µs of a poller, the offset of a Kafka message). Within a stream, a
 * larger seq is a later batch.
 */
import type { Update } from '../../protocol/value.js';
import type { BatchSink } from '../sources/source.js';

export interface BatchIdentity {
  stream: string;
  seq: string;
}

/** A sink that also takes the batch's identity and can make what it holds durable (the recorder's). */
export interface IdentifiedSink extends BatchSink {
  write(updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<number | undefined>;
  /** Resolves when every batch written so far is committed to the archive. */
  flush?(): Promise<void>;
}

/** Writes with an identity when the sink takes one (the recorder's sinks do). */
export function writeIdentified(sink: BatchSink, updates: Update[], tsUs: number | undefined, id: BatchIdentity): Promise<number | undefined> {
  return (sink as IdentifiedSink).write(updates, tsUs, id);
}

/**
 * True for a seq as batches carry it: a decimal integer of at most 20 digits (an offset, a
 * time in µs). What else a message of the sink topic carries (another producer's, a damaged
 * header) is no batch of ours, and compareSeq is never asked about it.
 */
export function isSeq(s: string): boolean {
  return /^[0-9]{1,20}$/.test(s);
}

/** -1, 0, 1 as a is before, equal to or after b (same stream assumed). */
export function compareSeq(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
