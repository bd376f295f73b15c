/**
 * Request parameters of the Prometheus API as Prometheus reads them (web/api/v1 parseTime,
 * parseDuration): a time is float seconds since the epoch or RFC 3339; a duration is float
 * seconds or a PromQL duration (`1m30s`). Answers are milliseconds. Pure.
 */
import { SERVER_LIMITS } from '../limits.js';
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

/** `step` and `timeout` as model.ParseDuration reads them (units in order); `lookback_delta`, which Prometheus 2.42 does not read, with units in any order. */
export function parseDurationParam(text: string, name: string): number {
  if (DECIMAL.test(text)) {
    const s = Number(text);
    if (Number.isFinite(s) && Math.abs(s) < 9.2e9) return Math.round(s * 1000);
    throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid duration. It overflows int64`);
  }
  try {
    return parseDurationMs(text, name === 'lookback_delta');
  } catch {
    throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid duration`);
  }
}

/** Go's time.Duration holds ±(2^63 - 1) ns. */
const DURATION_NS_MAX = 2 ** 63;

/**
 * A range query's `step` in whole ms, checked as Prometheus 2.42 checks it (web/api/v1):
 * read to the nanosecond (float seconds times 1e9, truncated, as time.Duration(ts)), refused
 * when zero or negative, and when (end - start) / step, in whole steps, passes
 * promqlPointsPerSeriesMax (so 11 001 points of a series are allowed, as there); then
 * evaluated at whole ms, the fraction cut as its engine cuts it (durationMilliseconds:
 * `0.0015` steps 1 ms). A step below 1 ms is refused here, where Prometheus' engine divides
 * by the zero it makes of it (a 422 runtime error).
 */
export function parseStepParam(text: string, startMs: number, endMs: number): number {
  let ns: number;
  if (DECIMAL.test(text)) {
    const v = Number(text) * 1e9;
    if (!(Math.abs(v) < DURATION_NS_MAX)) throw badData(`invalid parameter "step": cannot parse ${JSON.stringify(text.slice(0, 64))} to a valid duration. It overflows int64`);
    ns = Math.trunc(v);
  } else {
    ns = parseDurationParam(text, 'step') * 1e6;
  }
  if (ns <= 0) throw badData('invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer');
  if (BigInt(endMs - startMs) * 1_000_000n / BigInt(ns) > BigInt(SERVER_LIMITS.promqlPointsPerSeriesMax)) {
    throw badData(`exceeded maximum resolution of ${SERVER_LIMITS.promqlPointsPerSeriesMax.toLocaleString('en-US')} points per timeseries. Try decreasing the query resolution (?step=XX)`);
  }
  const ms = Math.floor(ns / 1e6);
  if (ms < 1) throw badData(`invalid parameter "step": ${JSON.stringify(text.slice(0, 64))} is below 1 ms, the resolution queries are evaluated at`);
  return ms;
}
