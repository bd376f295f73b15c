/**
 * Playback controls (seed 003's start, end, pos, speed, state, plus loop): parsing of the
 * values clients write, and their display form. Pure: "now" and the position are passed in.
 * Times follow the one grammar of protocol/time.ts (docs/time.md):
 *
 *   start, end  "unbounded" | RFC 3339 | epoch number | now, now±D, ±D | pos±D
 *   pos         the same time forms | "beginning" | "end" | batch steps "+N" / "-N" (or
 *               "+Nb" / "-Nb"), N from 1 to PROTOCOL_LIMITS.seekStepsMax
 *   speed       a number in [SPEED_MIN, SPEED_MAX] (fraction of real time) | "unlimited"
 *   state       "play" | "pause" | "tail"
 *   loop        boolean
 *
 * and two actions, which change no control but move the session along (seed 003's "observed
 * batching" kept exactly: batches go out as recorded, never merged or split):
 *
 *   burst       N (a number, or its digits as text), 1 to PROTOCOL_LIMITS.burstBatchesMax:
 *               send the next N batches at once, unpaced, then go on in the state the session
 *               is in after this change (playing plays on from there, paused stays paused)
 *   next        true: play-next, the next batch and then pause (`{ burst: 1, state: "pause" }`)
 *
 * `pos±D` is resolved against the session position given to parseControls (the position the
 * client was shown when the control arrived); without one it is refused.
 *
 * A session's `filter` (a list of globs, protocol/glob.ts) is given when it is created and
 * checked by parseFilter; it is not a control.
 */
import { TapedeckError } from './errors.js';
import { validateGlobs } from './glob.js';
import { PROTOCOL_LIMITS } from './limits.js';
import { formatTs, readTime, TIME_KINDS, type TimeContext, type TimeKind } from './time.js';

export const SPEED_MIN = 0.01;
export const SPEED_MAX = 1000;

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
  burst?: string | number;
  next?: boolean;
}

export interface ParsedControls {
  start?: Bound;
  end?: Bound;
  pos?: PosTarget;
  speed?: Speed;
  state?: PlayState;
  loop?: boolean;
  /** Batches to send at once, after the other controls of the same change are applied. */
  burst?: number;
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

function bad(control: string, message: string): TapedeckError {
  return new TapedeckError('TPD_BAD_CONTROL', `${control}: ${message}`, { control });
}

/** Reads `v` as one of the `allowed` time kinds; TPD_BAD_CONTROL naming the control. */
function readControlTime(control: string, v: string | number, allowed: readonly TimeKind[], ctx: TimeContext): { kind: 'ts'; us: number } | { kind: 'steps'; n: number } {
  const r = readTime(v, allowed, ctx);
  if (!r.ok) throw bad(control, r.message);
  return r.value.kind === 'batches' ? { kind: 'steps', n: r.value.n } : r.value;
}

/** A time: absolute, relative to now, or relative to the session position (`posUs`). */
export function parseTime(control: string, v: string | number, nowUs: number, posUs?: number | null): number {
  return (readControlTime(control, v, TIME_KINDS.bound, timeContext(nowUs, posUs)) as { us: number }).us;
}

function timeContext(nowUs: number, posUs: number | null | undefined): TimeContext {
  return posUs === undefined ? { nowUs } : { nowUs, posUs };
}

export function parseBound(control: 'start' | 'end', v: string | number, nowUs: number, posUs?: number | null): Bound {
  if (typeof v === 'string' && v.trim().toLowerCase() === 'unbounded') return { kind: 'unbounded' };
  return { kind: 'ts', us: parseTime(control, v, nowUs, posUs) };
}

export function parsePos(v: string | number, nowUs: number, posUs?: number | null): PosTarget {
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === 'beginning' || s === 'end') return { kind: s };
  }
  return readControlTime('pos', v, TIME_KINDS.pos, timeContext(nowUs, posUs));
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

/** N of `burst`: a whole number from 1 to burstBatchesMax (or its digits as text). */
export function parseBurst(v: string | number): number {
  const max = PROTOCOL_LIMITS.burstBatchesMax;
  const n = typeof v === 'number' ? v : /^\d{1,16}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw bad('burst', `sends 1 to ${max} batches (burstBatchesMax), got ${JSON.stringify(v).slice(0, 40)}`);
  }
  return n;
}

/** The notice of a burst that stopped short: how many batches went, and why it stopped. */
export function burstClampMessage(asked: number, sent: number, where: 'end' | 'live' | 'bound', atUs: number | null): string {
  const why = where === 'end' ? 'the end of the archive' : where === 'live' ? 'the newest recorded batch (live data comes as it is recorded)' : "the session's end";
  return `burst ${asked}: sent ${sent} of ${asked} batches and stopped at ${why} (${atUs === null ? 'the beginning' : formatTs(atUs)})`;
}

export function parseState(v: string): PlayState {
  if (v === 'play' || v === 'pause' || v === 'tail') return v;
  throw bad('state', `must be "play", "pause" or "tail", got ${JSON.stringify(v).slice(0, 40)}`);
}

/**
 * Parses every given control; throws TPD_BAD_CONTROL naming the first bad one. `posUs` is
 * the session position pos-relative times count from (absent: there is none, they are refused).
 */
export function parseControls(input: ControlsInput, nowUs: number, posUs?: number | null): ParsedControls {
  if (typeof input !== 'object' || input === null) throw bad('controls', 'must be an object');
  const out: ParsedControls = {};
  for (const key of Object.keys(input)) {
    if (!CONTROL_NAMES.includes(key)) throw bad(key, 'unknown control');
  }
  const typed = (k: string, v: unknown): string | number => {
    if (typeof v !== 'string' && typeof v !== 'number') throw bad(k, `must be a string or a number, got ${typeof v}`);
    return v;
  };
  if (input.start !== undefined) out.start = parseBound('start', typed('start', input.start), nowUs, posUs);
  if (input.end !== undefined) out.end = parseBound('end', typed('end', input.end), nowUs, posUs);
  if (input.pos !== undefined) out.pos = parsePos(typed('pos', input.pos), nowUs, posUs);
  if (input.speed !== undefined) out.speed = parseSpeed(typed('speed', input.speed));
  if (input.state !== undefined) {
    if (typeof input.state !== 'string') throw bad('state', 'must be a string');
    out.state = parseState(input.state);
  }
  if (input.loop !== undefined) {
    if (typeof input.loop !== 'boolean') throw bad('loop', 'must be true or false');
    out.loop = input.loop;
  }
  if (input.burst !== undefined) out.burst = parseBurst(typed('burst', input.burst));
  if (input.next !== undefined) parseNext(input, out);
  if (out.start?.kind === 'ts' && out.end?.kind === 'ts' && out.end.us < out.start.us) {
    throw bad('end', 'is before start');
  }
  return out;
}

/** `next: true` is `{ burst: 1, state: "pause" }`; it says so rather than mix with either. */
function parseNext(input: ControlsInput, out: ParsedControls): void {
  if (input.next !== true) throw bad('next', 'must be true (play the next batch, then pause)');
  if (input.burst !== undefined) throw bad('next', 'is a burst of 1; send either next or burst');
  if (out.state !== undefined && out.state !== 'pause') throw bad('next', `pauses after the batch; it cannot go with state "${out.state}"`);
  out.burst = 1;
  out.state = 'pause';
}

const CONTROL_NAMES = ['start', 'end', 'pos', 'speed', 'state', 'loop', 'burst', 'next'];

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
    start: { type: ['string', 'number'], maxLength: PROTOCOL_LIMITS.timeTextCharsMax },
    end: { type: ['string', 'number'], maxLength: PROTOCOL_LIMITS.timeTextCharsMax },
    pos: { type: ['string', 'number'], maxLength: PROTOCOL_LIMITS.timeTextCharsMax },
    speed: { type: ['string', 'number'], maxLength: 16 },
    state: { type: 'string', enum: ['play', 'pause', 'tail'] },
    loop: { type: 'boolean' },
    burst: { type: ['string', 'number'], maxLength: 16 },
    next: { type: 'boolean' },
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
