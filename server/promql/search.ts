/**
 * Searches of a series' sorted sample times: the binary searches, and the forward-moving
 * searches a range query uses step after step (eval.ts).
 */

/** Upper bound: first index in t[0..n) with t[i] > x. */
export function upper(t: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((t[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Lower bound: first index with t[i] >= x. */
export function lower(t: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((t[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * upper() from where the last search of this series ended: a range query steps forward in
 * time, so the answer moves forward a few samples per step (amortised O(1) instead of a
 * binary search per series per step). Any other move falls back to the binary search.
 */
export function upperFrom(t: Float64Array, n: number, x: number, hints: Int32Array, j: number): number {
  let i = hints[j] as number;
  if (i > n || (i > 0 && (t[i - 1] as number) > x)) i = upper(t, n, x);
  else while (i < n && (t[i] as number) <= x) i++;
  hints[j] = i;
  return i;
}

/** lower() from where the last search of this series ended (see upperFrom). */
export function lowerFrom(t: Float64Array, n: number, x: number, hints: Int32Array, j: number): number {
  let i = hints[j] as number;
  if (i > n || (i > 0 && (t[i - 1] as number) >= x)) i = lower(t, n, x);
  else while (i < n && (t[i] as number) < x) i++;
  hints[j] = i;
  return i;
}
