/**
 * Timestamps are integer microseconds since the Unix epoch, and this is the one grammar of
 * the times clients write (docs/time.md has it with examples per edge):
 *
 *   absolute          RFC 3339 with an offset, up to µs ("2024-05-01T12:00:00.123456Z",
 *                     "2024-05-01T14:00:00+02:00"), or an epoch number whose magnitude tells
 *                     its unit: seconds below 1e11, milliseconds below 1e14, µs above
 *   relative to now   "now", "now-5m", "now+1h"; the short forms "-5m", "+1h" mean the same
 *   relative to pos   "pos-5m", "pos+30s": from a playback session's position (controls only)
 *   batch steps       "-5", "+5" or "-5b", "+5b": batches back or forward (session pos only)
 *
 * A duration is number-unit pairs from protocol/duration.ts ("90s", "1h30m", "-1M"); the
 * sign is required, so "5m" alone is refused rather than guessed. parseTimeExpr reads the
 * text into a tagged TimeExpr; each edge says which kinds it takes (TIME_KINDS) and gets a
 * message naming what was given and what is allowed there. Pure: "now" and the position are
 * passed in.
 */
import { parseDurationParts, type DurationParts } from './duration.js';
import { TapedeckError } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';
import { TS_MAX_US } from './value.js';

export type TimeExpr =
  | { kind: 'abs'; us: number }
  | { kind: 'now'; offsetMonths: number; offsetUs: number }
  | { kind: 'pos'; offsetMonths: number; offsetUs: number }
  | { kind: 'batches'; n: number };
export type TimeKind = TimeExpr['kind'];

/** Which kinds each edge takes. */
export const TIME_KINDS = {
  /** REST query parameters (`at`, `from`, `to`, coverage `start`, `end`). */
  rest: ['abs', 'now'],
  /** CLI options (`export --from/--to`, `inspect --at`). */
  cli: ['abs', 'now'],
  /** Session controls `start` and `end`. */
  bound: ['abs', 'now', 'pos'],
  /** Session control `pos`. */
  pos: ['abs', 'now', 'pos', 'batches'],
} as const satisfies Record<string, readonly TimeKind[]>;

const KIND_PHRASES: Readonly<Record<TimeKind, string>> = {
  abs: 'an absolute time (RFC 3339 or an epoch number)',
  now: 'a time relative to now (now, now-5m, -5m, +1h)',
  pos: 'a time relative to the position (pos-5m, pos+30s)',
  batches: 'a batch step (-5, +5, -5b, +5b)',
};

/** Either a value or the reason there is none; edges turn the reason into their own error. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** The time and position relative forms are resolved against. */
export interface TimeContext {
  nowUs: number;
  /** The session's position; null before its first batch; absent where there is no session. */
  posUs?: number | null;
}

/** A time read for an edge: a point in time, or a batch step. */
export type ResolvedTime = { kind: 'ts'; us: number } | { kind: 'batches'; n: number };

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;
const EPOCH = /^(\d+)(?:\.(\d+))?$/;
const STEPS = /^([+-])(\d+)b?$/;
const RELATIVE = /^(now|pos)?([+-])(\S+)$/;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const no = <T>(message: string): Parsed<T> => ({ ok: false, message });
const quote = (s: string): string => JSON.stringify(s).slice(0, 80);

export function formatTs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micros = String(((us % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}

/** An absolute time (RFC 3339 or epoch); throws TPD_BAD_ARGUMENT. Files, headers, pushes. */
export function parseTs(text: string): number {
  const r = parseAbsolute(text.trim());
  if (!r.ok) throw new TapedeckError('TPD_BAD_ARGUMENT', r.message);
  return r.value;
}

/** Reads any form of the grammar; which forms an edge takes is checked by readTime. */
export function parseTimeExpr(v: string | number): Parsed<TimeExpr> {
  if (typeof v === 'number') return mapOk(epochNumber(v), (us) => ({ kind: 'abs', us }));
  if (v.length > PROTOCOL_LIMITS.timeTextCharsMax) return no(`a time is at most ${PROTOCOL_LIMITS.timeTextCharsMax} characters (timeTextCharsMax), got ${v.length}`);
  const s = v.trim();
  if (s === 'now') return ok({ kind: 'now', offsetMonths: 0, offsetUs: 0 });
  if (EPOCH.test(s) || RFC3339.test(s)) return mapOk(parseAbsolute(s), (us) => ({ kind: 'abs', us }));
  const steps = STEPS.exec(s);
  if (steps) return parseSteps(s, steps[1] === '-' ? -1 : 1, Number(steps[2]));
  const rel = RELATIVE.exec(s);
  if (!rel) return no(`${quote(s)} is not a time: ${allowedPhrase(TIME_KINDS.pos)}`);
  let parts: DurationParts;
  try {
    parts = parseDurationParts(rel[3] as string, 'offset', true);
  } catch (err) {
    return no(`${quote(s)}: ${(err as Error).message.replace(/^offset: /, '')}`);
  }
  const sign = rel[2] === '-' ? -1 : 1;
  const offsetUs = Math.round(parts.ms * 1000) * sign;
  if (!Number.isFinite(offsetUs)) return no(`${quote(s)}: the offset is out of range`);
  return ok({ kind: rel[1] === 'pos' ? 'pos' : 'now', offsetMonths: parts.months * sign || 0, offsetUs: offsetUs || 0 });
}

/** The time a relative or absolute expression stands for, 1970 to 2255. */
function resolveTime(expr: Exclude<TimeExpr, { kind: 'batches' }>, ctx: TimeContext): Parsed<number> {
  if (expr.kind === 'abs') return ok(expr.us);
  let base = ctx.nowUs;
  if (expr.kind === 'pos') {
    if (ctx.posUs === undefined) return no('a time relative to the position needs a playback session position, and there is none here');
    if (ctx.posUs === null) return no('the session has no position yet (it is before its first batch): seek to a time first');
    base = ctx.posUs;
  }
  const us = addMonthsUtc(base, expr.offsetMonths) + expr.offsetUs;
  if (Number.isNaN(us)) return no('the offset goes out of range (1970 to 2255)');
  if (us < 0) return no('the offset goes before 1970');
  if (us > TS_MAX_US) return no('the offset goes past 2255');
  return ok(us);
}

/** Reads a time for an edge that takes `allowed` kinds, resolving relative forms against ctx. */
export function readTime(v: string | number, allowed: readonly TimeKind[], ctx: TimeContext): Parsed<ResolvedTime> {
  const r = parseTimeExpr(v);
  if (!r.ok) return r;
  const e = r.value;
  if (!allowed.includes(e.kind)) {
    return no(`${typeof v === 'string' ? quote(v.trim()) : String(v)} is ${KIND_PHRASES[e.kind]}, not taken here; this takes ${allowedPhrase(allowed)}`);
  }
  if (e.kind === 'batches') return ok({ kind: 'batches', n: e.n });
  return mapOk(resolveTime(e, ctx), (us) => ({ kind: 'ts', us }));
}

/**
 * A time on the wall clock, as REST parameters and CLI options take it (absolute or relative
 * to now); throws TPD_BAD_ARGUMENT naming `what`, what was given and what is allowed.
 */
export function parseWallTime(text: string, nowUs: number, what: string): number {
  const r = readTime(text, TIME_KINDS.rest, { nowUs });
  if (!r.ok) throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${r.message}`, { argument: what });
  return (r.value as { us: number }).us;
}

// ---------------------------------------------------------------- batch steps

/** Which end a batch step stopped at short of what was asked, if any. */
export type Clamp = 'start' | 'end' | null;

export interface StepOutcome {
  /** The position after the step (null: before the first batch). */
  us: number | null;
  /** Batches actually moved, 0..|requested|. */
  moved: number;
  clamped: Clamp;
}

/**
 * The outcome of a step of `requested` batches that moved `moved` of them and landed at
 * `us`: a step that ran into an end is clamped, so the session can say so (an `info` frame)
 * instead of leaving the position unchanged without a word.
 */
export function stepOutcome(requested: number, moved: number, us: number | null): StepOutcome {
  const short = moved < Math.abs(requested);
  return { us, moved, clamped: !short ? null : requested > 0 ? 'end' : 'start' };
}

/** The text of the notice for a clamped step (null when it was not clamped). */
export function clampMessage(requested: number, o: StepOutcome): string | null {
  if (o.clamped === null) return null;
  const at = o.us === null ? 'the beginning' : formatTs(o.us);
  const step = `${requested > 0 ? '+' : ''}${requested}`;
  return `pos "${step}": moved ${o.moved} of ${Math.abs(requested)} batches and stopped at the ${o.clamped} of the archive (${at})`;
}

// ---------------------------------------------------------------- helpers

function mapOk<A, B>(r: Parsed<A>, f: (a: A) => B): Parsed<B> {
  return r.ok ? ok(f(r.value)) : r;
}

function allowedPhrase(kinds: readonly TimeKind[]): string {
  const phrases = kinds.map((k) => KIND_PHRASES[k]);
  return phrases.length < 2 ? (phrases[0] ?? '') : `${phrases.slice(0, -1).join(', ')} or ${phrases[phrases.length - 1] as string}`;
}

function parseSteps(s: string, sign: 1 | -1, n: number): Parsed<TimeExpr> {
  const max = PROTOCOL_LIMITS.seekStepsMax;
  if (n < 1 || n > max) return no(`${quote(s)}: a batch step moves 1 to ${max} batches (seekStepsMax), got ${n}`);
  return ok({ kind: 'batches', n: sign * n });
}

/** RFC 3339 or an epoch number, 1970 to 2255. */
function parseAbsolute(s: string): Parsed<number> {
  const epoch = EPOCH.exec(s);
  const r = epoch ? epochTextUs(epoch[1] as string, epoch[2] ?? '') : parseRfc3339(s);
  if (!r.ok) return r;
  if (!Number.isSafeInteger(r.value) || r.value < 0 || r.value > TS_MAX_US) return no(`time out of range (1970 to 2255): ${quote(s)}`);
  return r;
}

/** Integer digits of the largest epoch number in range (TS_MAX_US as µs has 16). */
const EPOCH_INTEGER_DIGITS_MAX = 16;

/**
 * An epoch number's text to µs, exactly: its unit by magnitude (seconds below 1e11,
 * milliseconds below 1e14, else µs), digits past the µs dropped as RFC 3339's are. Read
 * from the digits, not through a double: seconds past 2^33 (2242) have no double for every
 * µs, and a rounded product would make the same instant two times at two edges.
 */
function epochTextUs(integer: string, fraction: string): Parsed<number> {
  const int = integer.replace(/^0+(?=\d)/, '');
  if (int.length > EPOCH_INTEGER_DIGITS_MAX) return no(`time out of range (1970 to 2255): ${quote(integer)}`);
  // Below 1e11 is at most 11 integer digits; below 1e14 at most 14.
  const unitDigits = int.length <= 11 ? 6 : int.length <= 14 ? 3 : 0;
  return ok(Number(int + fraction.slice(0, unitDigits).padEnd(unitDigits, '0')));
}

/**
 * A JSON (or msgpack) number as an epoch time: read as the text it is written as (its
 * shortest round-trip text), so `1714564800.123456` and `"1714564800.123456"` are one
 * instant at every edge. Exponent forms (below 1e-6, from 1e21) are refused.
 */
export function epochNumber(n: number): Parsed<number> {
  if (!Number.isFinite(n) || n < 0) return no(`an epoch number must be finite and non-negative, got ${n}`);
  const s = String(n);
  return EPOCH.test(s) ? parseAbsolute(s) : no(`epoch number ${s} is ${n < 1 ? 'finer than a microsecond' : 'out of range (1970 to 2255)'}`);
}

/** An epoch number as epochNumber reads it; throws TPD_BAD_ARGUMENT naming `what`. Pushed batches' ts. */
export function epochNumberUs(n: number, what: string): number {
  const r = epochNumber(n);
  if (!r.ok) throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${r.message}`);
  return r.value;
}

function parseRfc3339(s: string): Parsed<number> {
  const m = RFC3339.exec(s);
  if (!m) return no(`not an RFC 3339 time or epoch number: ${quote(s)}`);
  const ms = Date.parse(`${m[1]}T${m[2]}${m[4]?.toUpperCase()}`);
  // Date.parse rolls impossible dates over (02-30 becomes 03-02): refuse those instead.
  const [y, mo, d] = (m[1] as string).split('-').map(Number) as [number, number, number];
  const [hh, mm, ss] = (m[2] as string).split(':').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (Number.isNaN(ms) || day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || hh > 23 || mm > 59 || ss > 59) {
    return no(`invalid date: ${quote(s)}`);
  }
  const frac = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
  return ok(ms * 1000 + Number(frac));
}

/**
 * `us` moved by whole calendar months in UTC, the day kept or clamped to the month's last
 * (Jan 31 + 1 month is Feb 28 or 29), time of day and µs kept. NaN when out of Date's range.
 */
export function addMonthsUtc(us: number, months: number): number {
  if (months === 0) return us;
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0..99 as 1900..1999.
  const t = new Date(0);
  t.setUTCFullYear(year, month + 1, 0);
  t.setUTCFullYear(year, month, Math.min(d.getUTCDate(), t.getUTCDate()));
  t.setUTCHours(d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
  return t.getTime() * 1000 + (us - ms * 1000);
}
