/**
 * Durations in config and queries: `{ "secs": 5, "nanos": 0 }` (seed 003's form) or a
 * string of number-unit pairs such as "5s", "250ms", "1d", "1h30m" (units ns, us, ms, s, m,
 * h, d, w). "0" alone is zero. Values are returned in milliseconds (fractions kept).
 */
import { TapedeckError } from '../protocol/errors.js';

export type Duration = string | { secs: number; nanos?: number };

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PAIR = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)/y;
export const DURATION_STRING_PATTERN = '^(0|(\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h|d|w))+)$';

/** JSON Schema of a duration; `x-expect` is the phrase used when a value fails it. */
export const DURATION_SCHEMA = {
  'x-expect': 'a duration: a string such as "5s", "250ms", "1d", or { "secs": N, "nanos": N }',
  anyOf: [
    { type: 'string', pattern: DURATION_STRING_PATTERN },
    {
      type: 'object',
      required: ['secs'],
      additionalProperties: false,
      properties: { secs: { type: 'integer', minimum: 0 }, nanos: { type: 'integer', minimum: 0, maximum: 999_999_999 } },
    },
  ],
} as const;

/** Milliseconds of a duration; throws TPD_BAD_ARGUMENT naming `what` when malformed. */
export function durationMs(d: Duration, what = 'duration'): number {
  if (typeof d === 'object' && d !== null) {
    const secs = d.secs;
    const nanos = d.nanos ?? 0;
    if (!Number.isInteger(secs) || secs < 0 || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: secs must be a non-negative integer and nanos an integer below 1e9`);
    }
    return secs * 1000 + nanos / 1e6;
  }
  if (typeof d !== 'string') throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: expected a duration such as "5s"`);
  const s = d.trim();
  if (s === '0') return 0;
  let total = 0;
  PAIR.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    PAIR.lastIndex = pos;
    const m = PAIR.exec(s);
    if (!m) throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${JSON.stringify(d).slice(0, 60)} is not a duration such as "5s", "250ms" or "1d"`);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = PAIR.lastIndex;
  }
  if (s.length === 0) throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: empty duration`);
  return total;
}
