/**
 * Request parameters of the Prometheus API as Prometheus reads them (web/api/v1 parseTime,
 * parseDuration): a time is float seconds since the epoch or RFC 3339; a duration is float
 * seconds or a PromQL duration (`1m30s`). Answers are milliseconds. Pure.
 */
import { badData } from './errors.js';
import { DECIMAL, parseDurationMs } from './literals.js';

/** Prometheus' spellings of its smallest and largest time (clients send them for "all"). */
const MIN_TIME_TEXT = '-292273086-05-16T16:47:06Z';
const MAX_TIME_TEXT = '292277025-08-17T07:12:55.807Z';
/** Beyond any archive: µs timestamps end in 2255. */
const TIME_BOUND_MS = 8.64e15;

export function parseTimeParam(text: string, name: string): number {
  if (DECIMAL.test(text)) {
    const s = Number(text);
    if (Number.isFinite(s) && Math.abs(s) < TIME_BOUND_MS / 1000) {
      const whole = Math.trunc(s);
      return whole * 1000 + Math.round((s - whole) * 1000);
    }
  }
  if (text === MIN_TIME_TEXT) return -TIME_BOUND_MS;
  if (text === MAX_TIME_TEXT) return TIME_BOUND_MS;
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return ms;
  }
  throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid timestamp`);
}

export function parseDurationParam(text: string, name: string): number {
  if (DECIMAL.test(text)) {
    const s = Number(text);
    if (Number.isFinite(s) && Math.abs(s) < 9.2e9) return Math.round(s * 1000);
    throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid duration. It overflows int64`);
  }
  try {
    return parseDurationMs(text);
  } catch {
    throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid duration`);
  }
}
