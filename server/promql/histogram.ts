/**
 * histogram_quantile(φ, v) over classic histograms (`_bucket` series with an `le` label),
 * as Prometheus 2.42 computes it (promql/functions.go funcHistogramQuantile, quantile.go
 * bucketQuantile): the samples are grouped by their labels but `le` (the metric name kept
 * apart, then dropped), `le` read as Go's strconv.ParseFloat reads it (a sample whose `le`
 * does not parse is skipped), the buckets sorted as Go's sort.Sort sorts them (go-sort.ts:
 * NaN bounds and equal bounds end where Go's pdqsort puts them), the quantile
 * NaN without a +Inf bucket, buckets of one bound merged, counts made monotonic, and the
 * answer interpolated linearly inside its bucket, the lowest bucket starting at 0 unless
 * its bound is ≤ 0. Pure.
 */
import { goSort } from './go-sort.js';
import { dropName, labelValue, makeMetric, type Metric } from './labels.js';

export interface Bucket {
  upperBound: number;
  count: number;
}

const DIGITS = String.raw`\d+(?:_\d+)*`;
const HEX = String.raw`[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*`;
const GO_DECIMAL = new RegExp(`^[+-]?(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`);
const GO_HEX = new RegExp(`^([+-]?)0[xX]_?(${HEX})?(?:\\.(${HEX})?)?[pP]([+-]?${DIGITS})$`);

/**
 * Go's strconv.ParseFloat(s, 64), undefined where it fails: decimal (digits may be parted by
 * single `_`), hexadecimal with a `p` exponent, inf / infinity with a sign, nan without one,
 * any case; a value past the largest double is an error (out of range), a tiny one 0.
 */
export function goParseFloat(s: string): number | undefined {
  const body = s.replace(/^[+-]/, '');
  const sign = s.startsWith('-') ? -1 : 1;
  if (/^(inf|infinity)$/i.test(body)) return sign * Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (GO_DECIMAL.test(s)) {
    const v = Number(s.replace(/_/g, ''));
    return Number.isFinite(v) ? v : undefined;
  }
  const hex = GO_HEX.exec(s);
  if (hex && (hex[2] !== undefined || hex[3] !== undefined)) {
    const int = (hex[2] ?? '').replace(/_/g, '');
    const frac = (hex[3] ?? '').replace(/_/g, '');
    const mantissa = BigInt(`0x${int}${frac}` === '0x' ? '0x0' : `0x${int}${frac}`);
    const exp = Number((hex[4] as string).replace(/_/g, '')) - 4 * frac.length;
    const v = hexValue(mantissa, exp);
    if (!Number.isFinite(v)) return undefined;
    return (hex[1] === '-' ? -1 : 1) * v;
  }
  return undefined;
}

/** mantissa × 2^exp rounded once to a double (half to even). */
function hexValue(mantissa: bigint, exp: number): number {
  if (mantissa === 0n) return 0;
  const bits = mantissa.toString(2).length;
  // Keep 53 significant bits (fewer below the normal range), round the rest half to even.
  const top = bits + exp; // the value is in [2^(top-1), 2^top)
  const keep = Math.max(0, Math.min(53, top + 1074));
  let shift = bits - keep;
  let m = mantissa;
  if (shift > 0) {
    const half = 1n << BigInt(shift - 1);
    const rest = m & ((1n << BigInt(shift)) - 1n);
    m >>= BigInt(shift);
    if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
  } else shift = 0;
  const e = exp + shift;
  if (e > 1023) return Infinity;
  // m has at most 54 bits: Number(m) is exact, and the power of two scales it exactly (in two steps near the ends).
  const half = Math.trunc(e / 2);
  return Number(m) * 2 ** half * 2 ** (e - half);
}

/** Go's sort.Sort of the buckets by bound (go-sort.ts, pdqsort step for step): NaN and equal bounds end where 2.42 puts them, however many. */
function sortBuckets(b: Bucket[]): void {
  goSort(b.length, {
    less: (i, j) => (b[i] as Bucket).upperBound < (b[j] as Bucket).upperBound,
    swap: (i, j) => {
      const t = b[i] as Bucket;
      b[i] = b[j] as Bucket;
      b[j] = t;
    },
  });
}

/** Go's sort.Search: the smallest i in [0, n) with f(i), by its bisection (so also where f is not monotonic). */
function goSearch(n: number, f: (i: number) => boolean): number {
  let i = 0;
  let j = n;
  while (i < j) {
    const h = (i + j) >>> 1;
    if (!f(h)) i = h + 1;
    else j = h;
  }
  return i;
}

/** bucketQuantile of Prometheus 2.42 (quantile.go); sorts and merges `buckets` in place. */
export function bucketQuantile(q: number, buckets: Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  sortBuckets(buckets);
  if ((buckets[buckets.length - 1] as Bucket).upperBound !== Infinity) return NaN;
  // coalesceBuckets: one bucket per bound, counts added.
  const b: Bucket[] = [];
  let last = { ...(buckets[0] as Bucket) };
  for (let i = 1; i < buckets.length; i++) {
    const x = buckets[i] as Bucket;
    if (x.upperBound === last.upperBound) last.count += x.count;
    else {
      b.push(last);
      last = { ...x };
    }
  }
  b.push(last);
  // ensureMonotonic: from the first count (a NaN first count changes nothing).
  let max = (b[0] as Bucket).count;
  for (let i = 1; i < b.length; i++) {
    const c = (b[i] as Bucket).count;
    if (c > max) max = c;
    else if (c < max) (b[i] as Bucket).count = max;
  }
  if (b.length < 2) return NaN;
  const observations = (b[b.length - 1] as Bucket).count;
  if (observations === 0) return NaN;
  let rank = q * observations;
  const i = goSearch(b.length - 1, (k) => (b[k] as Bucket).count >= rank);
  if (i === b.length - 1) return (b[b.length - 2] as Bucket).upperBound;
  if (i === 0 && (b[0] as Bucket).upperBound <= 0) return (b[0] as Bucket).upperBound;
  let bucketStart = 0;
  const bucketEnd = (b[i] as Bucket).upperBound;
  let count = (b[i] as Bucket).count;
  if (i > 0) {
    const prev = b[i - 1] as Bucket;
    bucketStart = prev.upperBound;
    count -= prev.count;
    rank -= prev.count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/** Per input metric: its `le` bound read, and its group's key and output metric (label sets recur at every step). */
const bucketOf = new WeakMap<Metric, { upperBound: number | undefined; key: string; out: Metric }>();

function bucketMetric(m: Metric): { upperBound: number | undefined; key: string; out: Metric } {
  let b = bucketOf.get(m);
  if (!b) {
    const rest = makeMetric(m.labels.filter(([n]) => n !== 'le'));
    b = { upperBound: goParseFloat(labelValue(m, 'le')), key: rest.key, out: dropName(rest) };
    bucketOf.set(m, b);
  }
  return b;
}

/** The samples of histogram_quantile at one step: one per group of buckets, in the order the groups came. */
export function histogramQuantile(q: number, input: ReadonlyArray<{ readonly metric: Metric; readonly v: number }>): Array<{ metric: Metric; v: number }> {
  const groups = new Map<string, { metric: Metric; buckets: Bucket[] }>();
  for (const s of input) {
    const b = bucketMetric(s.metric);
    if (b.upperBound === undefined) continue;
    let g = groups.get(b.key);
    if (!g) groups.set(b.key, (g = { metric: b.out, buckets: [] }));
    g.buckets.push({ upperBound: b.upperBound, count: s.v });
  }
  return [...groups.values()].map((g) => ({ metric: g.metric, v: bucketQuantile(q, g.buckets) }));
}
