/**
 * Playback controls (seed 003's start, end, pos, speed, state, plus loop): parsing of the
 * values clients write, and their display form. Pure: "now" is passed in.
 *
 *   start, end  "unbounded" | RFC 3339 | epoch number (s, ms or µs) | offset from now "[+-]N[yMdhms]"
 *   pos         the same time forms | "beginning" | "end" | "+N" / "-N" batches (1..SEEK_STEPS_MAX)
 *   speed       a number in [SPEED_MIN, SPEED_MAX] (fraction of real time) | "unlimited"
 *   state       "play" | "pause" | "tail"
 *   loop        boolean
 *
 * A session's `filter` (a list of globs, protocol/glob.ts) is given when it is created and
 * checked by parseFilter; it is not a control.
 */
import { DateTime } from 'luxon';
import { TapedeckError } from './errors.js';
import { validateGlobs } from './glob.js';
import { formatTs, parseTs } from './time.js';

export const SPEED_MIN = 0.01;
export const SPEED_MAX = 1000;
/** Largest N in pos "+N"/"-N". */
export const SEEK_STEPS_MAX = 100_000;

export type Bound = { kind: 'unbounded' } | { kind: 'ts'; us: number };
export type PosTarget = { kind: 'ts'; us: number } | { kind: 'beginning' } | { kind: 'end' } | { kind: 'steps'; n: number };
export type Speed = number | 'unlimited';
export type PlayState = 'play' | 'pause' | 'tail';

export interface ControlsInput {
  start?: string | number;
  end?: string | number;
  pos?: string | number;
  speed?: string | number;
  state?: string;
  loop?: boolean;
}

export interface ParsedControls {
  start?: Bound;
  end?: Bound;
  pos?: PosTarget;
  speed?: Speed;
  state?: PlayState;
  loop?: boolean;
}

/** What clients read: times as RFC 3339 (µs), plus the position in µs for programs. */
export interface ControlsView {
  start: string;
  end: string;
  pos: string | null;
  posUs: number | null;
  speed: Speed;
  state: PlayState;
  loop: boolean;
}

const OFFSET = /^([+-])(\d+(?:\.\d+)?)([yMdhms])$/;
const STEPS = /^([+-])(\d+)$/;
const UNITS = { y: 'years', M: 'months', d: 'days', h: 'hours', m: 'minutes', s: 'seconds' } as const;

function bad(control: string, message: string): TapedeckError {
  return new TapedeckError('TPD_BAD_CONTROL', `${control}: ${message}`, { control });
}

/** A time: RFC 3339, epoch number, or an offset from `nowUs`. */
export function parseTime(control: string, v: string | number, nowUs: number): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw bad(control, `time must be a non-negative epoch number, got ${v}`);
    try {
      return parseTs(String(v));
    } catch (err) {
      throw bad(control, (err as Error).message);
    }
  }
  const s = v.trim();
  const m = OFFSET.exec(s);
  if (m) {
    const amount = Number(m[2]) * (m[1] === '-' ? -1 : 1);
    const unit = UNITS[m[3] as keyof typeof UNITS];
    const base = DateTime.fromMillis(Math.floor(nowUs / 1000), { zone: 'utc' });
    const at = base.plus({ [unit]: amount });
    if (!at.isValid) throw bad(control, `offset ${JSON.stringify(s)} is out of range`);
    const us = at.toMillis() * 1000 + (nowUs % 1000);
    if (us < 0) throw bad(control, `offset ${JSON.stringify(s)} goes before 1970`);
    return us;
  }
  try {
    return parseTs(s);
  } catch {
    throw bad(control, `expected RFC 3339, an epoch number or an offset like -3d, got ${JSON.stringify(s).slice(0, 80)}`);
  }
}

export function parseBound(control: 'start' | 'end', v: string | number, nowUs: number): Bound {
  if (typeof v === 'string' && v.trim().toLowerCase() === 'unbounded') return { kind: 'unbounded' };
  return { kind: 'ts', us: parseTime(control, v, nowUs) };
}

export function parsePos(v: string | number, nowUs: number): PosTarget {
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === 'beginning' || s === 'end') return { kind: s };
    const m = STEPS.exec(s);
    if (m) {
      const n = Number(m[2]);
      if (n < 1 || n > SEEK_STEPS_MAX) throw bad('pos', `step count must be 1..${SEEK_STEPS_MAX}, got ${n}`);
      return { kind: 'steps', n: m[1] === '-' ? -n : n };
    }
  }
  return { kind: 'ts', us: parseTime('pos', v, nowUs) };
}

export function parseSpeed(v: string | number): Speed {
  if (typeof v === 'string' && v.trim().toLowerCase() === 'unlimited') return 'unlimited';
  // A decimal number, optionally followed by "x" ("2x"); not hex, not exponents.
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?|\.\d+)x?$/i.exec(v.trim()) : null;
  const n = typeof v === 'number' ? v : m ? Number(m[1]) : NaN;
  if (typeof v === 'string' && v.trim() === '') throw bad('speed', 'empty');
  if (!Number.isFinite(n) || n < SPEED_MIN || n > SPEED_MAX) {
    throw bad('speed', `must be a number from ${SPEED_MIN} to ${SPEED_MAX} or "unlimited", got ${JSON.stringify(v)}`);
  }
  return n;
}

export function parseState(v: string): PlayState {
  if (v === 'play' || v === 'pause' || v === 'tail') return v;
  throw bad('state', `must be "play", "pause" or "tail", got ${JSON.stringify(v).slice(0, 40)}`);
}

/** Parses every given control; throws TPD_BAD_CONTROL naming the first bad one. */
export function parseControls(input: ControlsInput, nowUs: number): ParsedControls {
  if (typeof input !== 'object' || input === null) throw bad('controls', 'must be an object');
  const out: ParsedControls = {};
  for (const key of Object.keys(input)) {
    if (!['start', 'end', 'pos', 'speed', 'state', 'loop'].includes(key)) throw bad(key, 'unknown control');
  }
  const typed = (k: string, v: unknown): string | number => {
    if (typeof v !== 'string' && typeof v !== 'number') throw bad(k, `must be a string or a number, got ${typeof v}`);
    return v;
  };
  if (input.start !== undefined) out.start = parseBound('start', typed('start', input.start), nowUs);
  if (input.end !== undefined) out.end = parseBound('end', typed('end', input.end), nowUs);
  if (input.pos !== undefined) out.pos = parsePos(typed('pos', input.pos), nowUs);
  if (input.speed !== undefined) out.speed = parseSpeed(typed('speed', input.speed));
  if (input.state !== undefined) {
    if (typeof input.state !== 'string') throw bad('state', 'must be a string');
    out.state = parseState(input.state);
  }
  if (input.loop !== undefined) {
    if (typeof input.loop !== 'boolean') throw bad('loop', 'must be true or false');
    out.loop = input.loop;
  }
  if (out.start?.kind === 'ts' && out.end?.kind === 'ts' && out.end.us < out.start.us) {
    throw bad('end', 'is before start');
  }
  return out;
}

export function formatBound(b: Bound): string {
  return b.kind === 'unbounded' ? 'unbounded' : formatTs(b.us);
}

/**
 * JSON Schema of a session filter: the shape only. The globs themselves are judged by
 * parseFilter (TPD_BAD_GLOB), the one rule every edge shares, not by a schema pattern.
 */
export const FILTER_SCHEMA = { type: 'array', items: { type: 'string' } } as const;

/** A session filter, checked glob by glob; throws TPD_BAD_GLOB naming the first bad one. */
export function parseFilter(filter: unknown): string[] {
  validateGlobs(filter);
  return filter as string[];
}

/** JSON Schema of the controls object (REST bodies and WebSocket control frames). */
export const CONTROLS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    start: { type: ['string', 'number'], maxLength: 64 },
    end: { type: ['string', 'number'], maxLength: 64 },
    pos: { type: ['string', 'number'], maxLength: 64 },
    speed: { type: ['string', 'number'], maxLength: 16 },
    state: { type: 'string', enum: ['play', 'pause', 'tail'] },
    loop: { type: 'boolean' },
  },
} as const;

export const CONTROLS_VIEW_SCHEMA = {
  type: 'object',
  required: ['start', 'end', 'pos', 'posUs', 'speed', 'state', 'loop'],
  properties: {
    start: { type: 'string' },
    end: { type: 'string' },
    pos: { type: ['string', 'null'] },
    posUs: { type: ['number', 'null'] },
    speed: { type: ['number', 'string'] },
    state: { type: 'string', enum: ['play', 'pause', 'tail'] },
    loop: { type: 'boolean' },
  },
} as const;
