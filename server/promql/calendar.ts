/**
 * PromQL's calendar functions (day_of_month, day_of_week, day_of_year, days_in_month, hour,
 * minute, month, year) as Prometheus 2.42 computes them (functions.go dateWrapper): the value
 * converted to a Go int64 as amd64 converts (truncated; NaN, ±Inf and anything out of range
 * become -2^63), taken as Unix seconds in UTC by Go 1.19's time package (time.go absDate,
 * its uint64 arithmetic wrapping as Go's does, so even absurd times answer as Prometheus
 * answers); days_in_month is 32 less the day of the 32nd of the month. Pure.
 */
import type { DateFunction } from './ast.js';

const U64 = (x: bigint): bigint => BigInt.asUintN(64, x);
const I64 = (x: bigint): bigint => BigInt.asIntN(64, x);

const SECONDS_PER_DAY = 86_400n;
const DAYS_PER_400_YEARS = 365n * 400n + 97n;
const DAYS_PER_100_YEARS = 365n * 100n + 24n;
const DAYS_PER_4_YEARS = 365n * 4n + 1n;
const ABSOLUTE_ZERO_YEAR = -292_277_022_399n;
// (absoluteZeroYear - internalYear) * 365.2425 * secondsPerDay, exact as Go's constant arithmetic is.
const ABSOLUTE_TO_INTERNAL = ((ABSOLUTE_ZERO_YEAR - 1n) * 3_652_425n * SECONDS_PER_DAY) / 10_000n;
const UNIX_TO_INTERNAL = (1969n * 365n + 1969n / 4n - 1969n / 100n + 1969n / 400n) * SECONDS_PER_DAY;
const DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

/** Go's int64(x) on amd64 (CVTTSD2SQ): truncation, the "integer indefinite" -2^63 where it does not fit. */
export function goInt64(x: number): bigint {
  if (!(x >= -(2 ** 63) && x < 2 ** 63)) return -(2n ** 63n);
  return BigInt(Math.trunc(x));
}

function isLeap(year: bigint): boolean {
  return year % 4n === 0n && (year % 100n !== 0n || year % 400n === 0n);
}

/** time.Time.abs() of time.Unix(sec, 0).UTC(): seconds since the absolute zero year, as uint64. */
function absOfUnix(sec: bigint): bigint {
  return U64(I64(sec + UNIX_TO_INTERNAL) - ABSOLUTE_TO_INTERNAL);
}

/** Go 1.19's absDate: year, month (1-12), day (1-31), yday (0-based). */
function absDate(abs: bigint): { year: bigint; month: number; day: number; yday: number } {
  let d = abs / SECONDS_PER_DAY;
  let n = d / DAYS_PER_400_YEARS;
  let y = U64(400n * n);
  d -= DAYS_PER_400_YEARS * n;
  n = d / DAYS_PER_100_YEARS;
  n -= n >> 2n;
  y = U64(y + 100n * n);
  d -= DAYS_PER_100_YEARS * n;
  n = d / DAYS_PER_4_YEARS;
  y = U64(y + 4n * n);
  d -= DAYS_PER_4_YEARS * n;
  n = d / 365n;
  n -= n >> 2n;
  y = U64(y + n);
  d -= 365n * n;
  const year = I64(I64(y) + ABSOLUTE_ZERO_YEAR);
  const yday = Number(d);
  let day = yday;
  if (isLeap(year)) {
    if (day > 31 + 29 - 1) day--;
    else if (day === 31 + 29 - 1) return { year, month: 2, day: 29, yday };
  }
  let month = Math.floor(day / 31);
  const end = DAYS_BEFORE[month + 1] as number;
  let begin: number;
  if (day >= end) {
    month++;
    begin = end;
  } else begin = DAYS_BEFORE[month] as number;
  return { year, month: month + 1, day: day - begin + 1, yday };
}

/** Go 1.19's daysSinceEpoch (days from the absolute zero year to the year's start), uint64. */
function daysSinceEpoch(year: bigint): bigint {
  let y = U64(year - ABSOLUTE_ZERO_YEAR);
  let n = y / 400n;
  y -= 400n * n;
  let d = U64(DAYS_PER_400_YEARS * n);
  n = y / 100n;
  y -= 100n * n;
  d = U64(d + DAYS_PER_100_YEARS * n);
  n = y / 4n;
  y -= 4n * n;
  d = U64(d + DAYS_PER_4_YEARS * n);
  return U64(d + 365n * y);
}

/** 32 - time.Date(year, month, 32, 0, 0, 0, 0, UTC).Day(), through Go's own arithmetic. */
function daysInMonth(year: bigint, month: number): number {
  let d = daysSinceEpoch(year) + BigInt(DAYS_BEFORE[month - 1] as number);
  if (isLeap(year) && month >= 3) d++;
  d += 31n;
  return 32 - absDate(U64(d * SECONDS_PER_DAY)).day;
}

/** One calendar field of Unix time `sec` (an int64). */
export function dateField(fn: DateFunction, sec: bigint): number {
  const abs = absOfUnix(sec);
  switch (fn) {
    case 'hour':
      return Number((abs % SECONDS_PER_DAY) / 3600n);
    case 'minute':
      return Number((abs % 3600n) / 60n);
    case 'day_of_week':
      return Number(((abs + SECONDS_PER_DAY) % (7n * SECONDS_PER_DAY)) / SECONDS_PER_DAY);
    default: {
      const date = absDate(abs);
      if (fn === 'year') return Number(date.year);
      if (fn === 'month') return date.month;
      if (fn === 'day_of_month') return date.day;
      if (fn === 'day_of_year') return date.yday + 1;
      return daysInMonth(date.year, date.month);
    }
  }
}
