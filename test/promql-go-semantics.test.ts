/**
 * The Go semantics the newer PromQL functions rest on, against answers of Go itself (go1.26,
 * whose results here equal Prometheus 2.42's go1.19; test/promql-diff-fuzz.test.ts checks
 * the functions against Prometheus): strconv.ParseFloat as histogram_quantile reads `le`,
 * strconv.FormatFloat(v, 'f', -1) as count_values writes its label, and the time package's
 * calendar of an int64 conversion as the date functions read a value.
 */
import { describe, expect, it } from 'vitest';
import { goFormatFloatF } from '../server/promql/aggregate.js';
import { dateField, goInt64 } from '../server/promql/calendar.js';
import { bucketQuantile, goParseFloat } from '../server/promql/histogram.js';

describe('Go semantics of the PromQL functions', () => {
  it('reads le as strconv.ParseFloat', () => {
    const cases: Array<[string, number | undefined]> = [
      ['1', 1], ['1.0', 1], ['+Inf', Infinity], ['inf', Infinity], ['Infinity', Infinity], ['infinit', undefined], ['-inf', -Infinity],
      ['NaN', NaN], ['nan', NaN], ['+nan', undefined], ['-NaN', undefined], ['0x1p-2', 0.25], ['0x10', undefined], ['1_000', 1000],
      ['0x_1p0', 1], ['1e400', undefined], ['1e-400', 0], ['', undefined], [' 1', undefined], ['1.', 1], ['010', 10], ['.5', 0.5],
      ['0b1', undefined], ['1e', undefined], ['0x1.8p1', 3], ['1__0', undefined], ['_1', undefined], ['1_', undefined], ['1_.5', undefined],
      ['0x1p-1074', 5e-324], ['0x1p-1075', 0], ['0x3p-1076', 5e-324], ['0x1.fffffffffffff8p1023', undefined],
    ];
    for (const [s, want] of cases) expect(goParseFloat(s), s).toBe(want);
  });

  it("writes count_values' label as strconv.FormatFloat(v, 'f', -1)", () => {
    const cases: Array<[number, string]> = [
      [1e21, '1000000000000000000000'], [1e-7, '0.0000001'], [123.456, '123.456'], [0, '0'], [-0, '-0'], [0.1, '0.1'], [100, '100'],
      [-2.5e-10, '-0.00000000025'], [NaN, 'NaN'], [Infinity, '+Inf'], [-Infinity, '-Inf'], [1234567890123456800, '1234567890123456800'],
      [1.7976931348623157e308, `17976931348623157${'0'.repeat(292)}`], [5e-324, `0.${'0'.repeat(323)}5`],
    ];
    for (const [v, want] of cases) expect(goFormatFloatF(v), String(v)).toBe(want);
  });

  it('reads a value as Go reads time.Unix(int64(v), 0).UTC()', () => {
    // day_of_month day_of_week day_of_year days_in_month hour minute month year
    const cases: Array<[number, string]> = [
      [0, '1 4 1 31 0 0 1 1970'], [-1, '31 3 365 31 23 59 12 1969'], [1700000000.9, '14 2 318 30 22 13 11 2023'],
      [-1700000000.5, '18 5 49 29 1 46 2 1916'], [951782400, '29 2 60 29 0 0 2 2000'], [4102444800, '1 5 1 31 0 0 1 2100'],
      [-1e12, '5 2 95 30 22 13 4 -29719'], [1e17, '6 3 250 30 9 46 9 3168875820'], [-62135596801, '31 0 366 31 23 59 12 0'],
      [9.2e18, '31 5 244 31 11 33 8 291536396232'], [-9.2e18, '3 2 123 31 12 26 5 -291536392293'],
      [NaN, '4 0 339 31 15 30 12 292277026596'], [Infinity, '4 0 339 31 15 30 12 292277026596'], [-1e19, '4 0 339 31 15 30 12 292277026596'],
    ];
    const fns = ['day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'hour', 'minute', 'month', 'year'] as const;
    for (const [v, want] of cases) expect(fns.map((f) => dateField(f, goInt64(v))).join(' '), String(v)).toBe(want);
  });

  it('computes bucketQuantile as quantile.go', () => {
    const b = (...xs: Array<[number, number]>) => xs.map(([upperBound, count]) => ({ upperBound, count }));
    expect(bucketQuantile(0.5, b([1, 10], [Infinity, 20], [0.5, 5]))).toBe(0.5 + 0.5 * (5 / 5)); // sorted first
    expect(bucketQuantile(0.5, b([1, 10], [2, 10]))).toBeNaN(); // no +Inf bucket
    expect(bucketQuantile(2, b([1, 10], [2, 10]))).toBe(Infinity); // φ is checked first
    expect(bucketQuantile(0.9, b([1, 10], [Infinity, 100]))).toBe(1); // rank in +Inf: the highest finite bound
    expect(bucketQuantile(0.1, b([-1, 10], [Infinity, 20]))).toBe(-1); // lowest bound ≤ 0
    expect(bucketQuantile(0.25, b([1, 5], [1, 5], [Infinity, 20]))).toBe(0.5); // one bound twice: counts added
    expect(bucketQuantile(0.5, b([1, 15], [2, 5], [Infinity, 20]))).toBe(10 / 15); // monotonic: 2's count becomes 15
  });
});
