/**
 * The Kafka sink's messages (docs/kafka.md, "The Kafka sink"): a recorded batch as one
 * message (key: its stream) or one per update (key: the path), values in the exact msgpack
 * or JSON form of protocol/ (docs/values.md), the batch time as the message timestamp, and
 * the headers that identify it (tpd-stream, tpd-seq, tpd-fence, tpd-recorder, and tpd-mac
 * with active/standby: sink-auth.ts). Also what a send's size is and the broker's refusal of
 * one as too large.
 */
import type { Message } from 'kafkajs';
import { valueToJson } from '../../protocol/value-json.js';
import { encodeMsgpack, type MsgpackWriter } from '../../protocol/value-msgpack.js';
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
}

function bufferOf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The messages of one recorded batch. */
export function sinkMessages(e: RecordedEvent, o: SinkMessageOptions): Message[] {
  const id = { stream: e.id.stream, seq: e.id.seq, fence: String(o.fence), recorder: o.recorderId };
  const mac = o.auth.sign(id);
  const headers: Record<string, string> = { 'tpd-stream': id.stream, 'tpd-seq': id.seq, 'tpd-fence': id.fence, 'tpd-recorder': id.recorder, ...(mac !== undefined ? { 'tpd-mac': mac } : {}) };
  const timestamp = String(Math.floor(e.ts / 1000));
  // Values in the one msgpack or JSON form of protocol/ (docs/values.md), exact both ways.
  const json = o.format === 'json';
  const val = (v: Value): unknown => (json ? valueToJson(v) : v);
  const enc = (m: Record<string, unknown>): Buffer => (json ? Buffer.from(JSON.stringify(m)) : bufferOf(encodeMsgpack(m as Value, o.mp)));
  if (o.key === 'stream') {
    const updates = e.updates.map((u: Update) => [u[0], val(u[1])]);
    return [{ key: e.id.stream, value: enc({ ts: e.ts, source: e.source, stream: e.id.stream, seq: e.id.seq, updates }), timestamp, headers }];
  }
  return e.updates.map((u: Update) => ({ key: u[0], value: enc({ ts: e.ts, value: val(u[1]) }), timestamp, headers }));
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

/** The broker's refusal of a send as too large (its message.max.bytes): no retry cures it. */
export function isTooLarge(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type;
  return type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE';
}
