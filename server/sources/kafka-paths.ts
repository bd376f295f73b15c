/**
 * What the Kafka source (server/sources/kafka.ts) makes of a message: its path (the `path`
 * template, with levels made of its topic, key and headers), its payload's value, the refusal
 * of a path the recorder would not take, and its time as the archive takes it.
 */
import type { KafkaMessage } from 'kafkajs';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { TS_MAX_US, decodeUtf8, utf8SequenceLength, type Value } from '../../protocol/value.js';
import { parseJsonText, valueFromJson } from '../../protocol/value-json.js';
import { decodeMsgpack } from '../../protocol/value-msgpack.js';
import { segment } from './csv-matrix.js';

const PLACEHOLDER = /\{(topic|partition|key|offset|header\.[^}]+)\}/g;

/** A message's path from the source's template: each placeholder one level. */
export function messagePath(tpl: string, topic: string, partition: number, m: KafkaMessage): string {
  return tpl.replace(PLACEHOLDER, (_all, name: string) => {
    if (name === 'topic') return segment(topic);
    if (name === 'partition') return String(partition);
    if (name === 'offset') return m.offset;
    if (name === 'key') return m.key === null ? '_' : bytesSegment(m.key);
    const h = m.headers?.[name.slice('header.'.length)];
    const first = Array.isArray(h) ? h[0] : h;
    return first === undefined ? '_' : bytesSegment(typeof first === 'string' ? Buffer.from(first) : first);
  });
}

/** The payload's value in format `f`, or the TapedeckError refusing it (naming `path`). */
export function decodePayload(f: 'json' | 'msgpack' | 'string' | 'binary', v: Buffer | null, path: string): Value {
  if (v === null) return null;
  try {
    // Bytes that are not UTF-8 are refused, not recorded with U+FFFD in their place.
    if (f === 'json') return valueFromJson(parseJsonText(decodeUtf8(v, 'payload')), path);
    if (f === 'msgpack') return decodeMsgpack(v, true);
    if (f === 'string') return decodeUtf8(v, 'payload');
    return new Uint8Array(v);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // valueFromJson names the path already; JSON.parse and the msgpack reader do not.
    if (isTapedeckError(err)) throw new TapedeckError(err.code, why.startsWith(path) ? why : `${path}: ${why}`);
    throw new TapedeckError('TPD_BAD_ARGUMENT', `${path}: not ${f}: ${why}`);
  }
}

/**
 * A key's or header's bytes as one path level: its UTF-8 text with `%` and `/`
 * percent-encoded (segment), and NUL and each byte that is not part of well-formed UTF-8 as
 * %XX. Binary keys (an int64, an Avro id) stay apart: decoded with U+FFFD in place of their
 * bytes, distinct keys would be one path.
 */
export function bytesSegment(b: Uint8Array): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < b.length;) {
    const n = b[i] === 0 ? 0 : utf8SequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += `${segment(decodeUtf8(b.subarray(from, i), 'key'))}%${(b[i] as number).toString(16).toUpperCase().padStart(2, '0')}`;
    from = ++i;
  }
  return out + segment(decodeUtf8(b.subarray(from), 'key'));
}

export function badPath(path: string): TapedeckError {
  return new TapedeckError('TPD_BAD_PATH', `${JSON.stringify(path.slice(0, 200))} is not a path: at most ${PROTOCOL_LIMITS.pathCharsMax} characters (pathCharsMax), no NUL`);
}

/** A path under the cluster's batch markers (/tapedeck/kafka), which a message cannot write. */
export function reservedPath(path: string): TapedeckError {
  return new TapedeckError('TPD_BAD_PATH', `${JSON.stringify(path.slice(0, 200))}: paths under /tapedeck/kafka are the cluster's Kafka batch markers (docs/cluster.md, "Exactly once"); a message cannot write them`);
}

/**
 * A message's time for the archive (µs), from its timestamp (ms, a producer's CreateTime or
 * the broker's LogAppendTime): undefined for a message without one (-1, the old message
 * format: the recorder's clock stamps it), null for a time no archive holds (negative, or
 * past TS_MAX_US): such a message is refused like an undecodable payload (badTime), as the
 * write would refuse it and the partition would stop at it.
 */
export function messageTimeUs(timestamp: string): number | undefined | null {
  if (timestamp === '-1') return undefined;
  const ms = Number(timestamp);
  const us = ms * 1000;
  return Number.isSafeInteger(ms) && ms >= 0 && us <= TS_MAX_US ? us : null;
}

export function badTime(timestamp: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `message timestamp ${timestamp.slice(0, 40)} ms is not a time the archive holds (0 to ${TS_MAX_US} µs)`);
}

/** The newest of two batch times, a message without one (undefined) counting as none. */
export function newerTime(a: number | undefined, b: number | undefined | null): number | undefined {
  if (b === undefined || b === null) return a;
  return a === undefined || b > a ? b : a;
}

/** A batch's time: the newest of its messages' that carry updates (undefined: none has one; the recorder's clock stamps it). */
export function batchTimeUs(pieces: ReadonlyArray<{ updates: readonly unknown[]; tsUs: number | undefined }>): number | undefined {
  let t: number | undefined;
  for (const p of pieces) if (p.updates.length > 0) t = newerTime(t, p.tsUs);
  return t;
}
