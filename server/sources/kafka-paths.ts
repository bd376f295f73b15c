/**
 * The path levels the Kafka source makes of a message's key and headers (its `path`
 * template, server/sources/kafka.ts), the refusal of a path the recorder would not take, and
 * a message's time as the archive takes it.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { TS_MAX_US, decodeUtf8, utf8SequenceLength } from '../../protocol/value.js';
import { segment } from './csv-matrix.js';

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
