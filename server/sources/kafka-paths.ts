/**
 * The path levels the Kafka source makes of a message's key and headers (its `path`
 * template, server/sources/kafka.ts), and the refusal of a path the recorder would not take.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { decodeUtf8, utf8SequenceLength } from '../../protocol/value.js';
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
