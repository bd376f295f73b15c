/**
 * Durations: one unit table for config values, query parameters and the offsets of the time
 * grammar (protocol/time.ts). A duration is `{ "secs": 5, "nanos": 0 }` (seed 003's form) or
 * a string of number-unit pairs such as "5s", "250ms", "1d", "1h30m"; "0" alone is zero.
 *
 *   fixed units     ns, us (or µs), ms, s, m (minutes), h, d, w
 *   calendar units  M (months), y (years = 12 months): whole numbers only, and only in time
 *                   offsets (`now-1M`): a config duration must have one fixed length
 *
 * Pure: no clock, no I/O.
 */
import { TapedeckError } from './errors.js';

export type Duration = string | { secs: number; nanos?: number };

/** A parsed offset: calendar months (applied first, in UTC) plus a fixed length. */
export interface DurationParts {
  months: number;
  ms: number;
}

/** Milliseconds per fixed unit. Longest names first so "ms" is never read as "m" + "s". */
const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};
/** Months per calendar unit. */
const CALENDAR_UNIT_MONTHS: Readonly<Record<string, number>> = { M: 1, y: 12 };

const FIXED = 'ns|us|µs|ms|s|m|h|d|w';
const PAIR = new RegExp(`(\\d+(?:\\.\\d+)?)(${FIXED}|M|y)`, 'y');
export const DURATION_STRING_PATTERN = `^(0|(\\d+(\\.\\d+)?(${FIXED}))+)$`;

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

function badDuration(what: string, text: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${JSON.stringify(text).slice(0, 60)} is not a duration such as "5s", "250ms" or "1d"`);
}

/**
 * Reads number-unit pairs. Calendar units are kept apart (a month has no fixed length);
 * `calendar: false` refuses them. The loop runs at most text.length times (each pair eats
 * at least two characters).
 */
export function parseDurationParts(text: string, what: string, calendar: boolean): DurationParts {
  const s = text.trim();
  if (s === '') throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: empty duration`);
  if (s === '0') return { months: 0, ms: 0 };
  const out: DurationParts = { months: 0, ms: 0 };
  let pos = 0;
  while (pos < s.length) {
    PAIR.lastIndex = pos;
    const m = PAIR.exec(s);
    if (!m) throw badDuration(what, text);
    const amount = Number(m[1]);
    const unit = m[2] as string;
    const months = CALENDAR_UNIT_MONTHS[unit];
    if (months === undefined) {
      out.ms += amount * (DURATION_UNIT_MS[unit] as number);
    } else if (!calendar) {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${JSON.stringify(text).slice(0, 60)}: "${unit}" (${unit === 'M' ? 'months' : 'years'}) has no fixed length; a duration takes ${FIXED.split('|').join(', ')}`);
    } else if (!Number.isInteger(amount)) {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${JSON.stringify(text).slice(0, 60)}: months and years take whole numbers`);
    } else {
      out.months += amount * months;
    }
    pos = PAIR.lastIndex;
  }
  return out;
}

/** Milliseconds of a duration (fractions kept); throws TPD_BAD_ARGUMENT naming `what` when malformed. */
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
  return parseDurationParts(d, what, false).ms;
}
