/**
 * The Kafka sink's messages (docs/kafka.md, "The Kafka sink"): a recorded batch as one
 * message (key: its stream) or one per update (key: the path), values in the exact msgpack
 * or JSON form of protocol/ (docs/values.md), the batch time as the message timestamp, and
 * the headers that identify it (tpd-stream, tpd-seq, tpd-fence, tpd-recorder, and tpd-mac
 * with active/standby: sink-auth.ts). Also what a send's size is and the broker's refusal of
 * one as too large.
 */
import type { Message } from 'kafkajs';
import { KAFKA_PART_HEADERS, splitParts } from '../../protocol/kafka-parts.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { valueToJson } from '../../protocol/value-json.js';
import type { MsgpackWriter } from '../../protocol/value-msgpack.js';
import type { Update, Value } from '../../protocol/value.js';
import type { RecordedEvent } from '../recorder.js';
import type { SinkAuth } from './sink-auth.js';

export interface SinkMessageOptions {
  format: 'msgpack' | 'json';
  key: 'stream' | 'path';
  fence: number;
  recorderId: string;
  auth: SinkAuth;
  /** A writer reused from message to message. */
  mp: MsgpackWriter;
  /** Messages whose value is larger go as parts of at most this many bytes (protocol/kafka-parts.ts); undefined: whole. */
  partBytes?: number | undefined;
  /** No message timestamp (the broker's clock): the topic refused the batch time (its message.timestamp.*.max.ms). */
  brokerTime?: boolean | undefined;
}

function bufferOf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Containers of a message around its values, which are no level of theirs (docs/values.md:
 * a value of valueDepthMax levels is given back by every door). key: stream: the map,
 * `updates`, an [path, value] pair; key: path: the map.
 */
const ENVELOPE_LEVELS = { stream: 3, path: 1 } as const;

/** The msgpack of a message `m` whose values sit `levels` containers deep, each value counted from its own depth 0. */
function msgpackMessage(m: Record<string, unknown>, w: MsgpackWriter, levels: number): Buffer {
  w.reset();
  w.value(m as Value, -levels);
  return bufferOf(w.take());
}

/** The messages of one recorded batch. */
export function sinkMessages(e: RecordedEvent, o: SinkMessageOptions): Message[] {
  const id = { stream: e.id.stream, seq: e.id.seq, fence: String(o.fence), recorder: o.recorderId };
  const mac = o.auth.sign(id);
  const headers: Record<string, string> = { 'tpd-stream': id.stream, 'tpd-seq': id.seq, 'tpd-fence': id.fence, 'tpd-recorder': id.recorder, ...(mac !== undefined ? { 'tpd-mac': mac } : {}) };
  // The batch time (ms); the value's ts keeps it (µs) when the topic refuses it and the broker's clock stamps the message.
  const timestamp = o.brokerTime ? undefined : String(Math.floor(e.ts / 1000));
  // Values in the one msgpack or JSON form of protocol/ (docs/values.md), exact both ways.
  const json = o.format === 'json';
  const val = (v: Value): unknown => (json ? valueToJson(v) : v);
  const enc = (m: Record<string, unknown>): Buffer => (json ? Buffer.from(JSON.stringify(m)) : msgpackMessage(m, o.mp, ENVELOPE_LEVELS[o.key]));
  const whole: Message[] = o.key === 'stream'
    ? [{ key: e.id.stream, value: enc({ ts: e.ts, source: e.source, stream: e.id.stream, seq: e.id.seq, updates: e.updates.map((u: Update) => [u[0], val(u[1])]) }), headers }]
    : e.updates.map((u: Update, k: number) => ({ key: u[0], value: enc({ ts: e.ts, value: val(u[1]) }), headers: e.updates.length > 1 ? { ...headers, [KAFKA_PART_HEADERS.msg]: `${k + 1}/${e.updates.length}` } : headers }));
  if (timestamp !== undefined) for (const m of whole) m.timestamp = timestamp;
  const p = o.partBytes;
  if (p === undefined) return whole;
  // Too large for the topic: each message past partBytes as its parts (same key, time, identity).
  return whole.flatMap((m) => ((m.value as Buffer).length <= p ? [m] : splitParts(m.value as Buffer, p).map((x) => ({ ...m, value: x.value, headers: { ...m.headers, ...x.headers } }))));
}

/** The largest value among `ms` (bytes). */
export function largestValueBytes(ms: readonly Message[]): number {
  let n = 0;
  for (const m of ms) n = Math.max(n, m.value?.length ?? 0);
  return n;
}

/** The bytes a produce request's messages take (keys, values, headers; the record framing not counted). */
export function messagesBytes(ms: readonly Message[]): number {
  let n = 0;
  for (const m of ms) {
    n += (m.value?.length ?? 0) + (m.key?.length ?? 0);
    for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + String(v).length;
  }
  return n;
}

/** Where the request that begins at message `from` ends (exclusive): at most `bytesMax` bytes of messages, at least one message. */
export function requestEnd(ms: readonly Message[], from: number, bytesMax: number): number {
  let to = from;
  let bytes = 0;
  while (to < ms.length) {
    const b = messagesBytes([ms[to] as Message]);
    if (to > from && bytes + b > bytesMax) break;
    bytes += b;
    to++;
  }
  return to;
}

/**
 * The part size to try after the broker refused a batch alone as too large, sent whole
 * (`current` undefined) or in parts of `current` bytes, its largest message `largest` bytes:
 * partBytesStart (at most half the message), then half the last; undefined when that is
 * below partBytesMin or makes more than kafkaPartsPerSetMax parts (the batch is dropped).
 */
export function nextPartBytes(current: number | undefined, largest: number, o: { partBytesStart: number; partBytesMin: number }): number | undefined {
  const p = current === undefined ? Math.min(o.partBytesStart, Math.ceil(largest / 2)) : Math.floor(current / 2);
  return p >= o.partBytesMin && Math.ceil(largest / p) <= PROTOCOL_LIMITS.kafkaPartsPerSetMax ? p : undefined;
}

/**
 * The broker's refusals of a send for what its messages are, which no retry cures (retrying
 * them stopped the sink for good): too large (message.max.bytes), a time out of the topic's
 * range (message.timestamp.before.max.ms / after.max.ms: a replayed or old batch time), or a
 * record the broker will not take. Others (a leader moving, a broker away, ACLs an operator
 * can fix) are retried.
 */
export type SendRefusal = 'too-large' | 'time' | 'record';

export function sendRefusal(err: unknown): SendRefusal | undefined {
  const type = (err as { type?: unknown } | null)?.type;
  if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') return 'too-large';
  if (type === 'INVALID_TIMESTAMP') return 'time';
  if (type === 'CORRUPT_MESSAGE' || type === 'INVALID_RECORD') return 'record';
  return undefined;
}
