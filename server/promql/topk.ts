/** topk and bottomk as Prometheus' engine computes them (server/promql/eval.ts aggregates). */
import { execution } from './errors.js';
import type { Sample } from './eval.js';
import { formatValue } from './format.js';

/** engine.go's maxInt64 and minInt64: the floats an int64 holds. */
const K_MAX = 9223372036854774784;
const K_MIN = -9223372036854775808;

/**
 * topk / bottomk's k at one step, checked as Prometheus 2.42 checks it (engine.go
 * aggregation, convertibleToInt64): NaN, ±Inf and anything past int64 are an evaluation
 * error at every step, whether or not the input has samples.
 */
export function checkK(param: number): void {
  if (!(param <= K_MAX && param >= K_MIN)) throw execution(`Scalar value ${formatValue(param)} overflows int64`);
}

/**
 * topk / bottomk of one group, chosen exactly as Prometheus 2.42 chooses among equal values
 * and NaNs: its engine keeps a binary heap of k samples (the worst on top, a NaN counting as
 * worst), takes the group's samples in input order (series sorted by labels) and, when the
 * heap is full, takes a sample that is strictly better than the top, or any sample when the
 * top is NaN, by popping the top and pushing the sample (Go's container/heap: pop = swap the
 * last to the top + down, push = append + up; k = 1 replaces in place). With ties the heap's
 * shape decides which equal sample stays, so a stable sort picks differently, and so does a
 * replace of the top in place (set top + Fix, later Prometheus versions): test/promql-diff's
 * edge data (ties next to +-Inf and NaN) tells them apart. Cost O(n log k).
 */
export function selectK(op: 'topk' | 'bottomk', samples: Sample[], param: number): Sample[] {
  const k = Math.trunc(param);
  if (!(k >= 1) || samples.length === 0) return [];
  // less(a, b): a ranks below b, so it sits nearer the top of the heap.
  const less = op === 'topk'
    ? (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v < b.v
    : (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v > b.v;
  const better = op === 'topk'
    ? (s: Sample, top: Sample): boolean => top.v < s.v || Number.isNaN(top.v)
    : (s: Sample, top: Sample): boolean => top.v > s.v || Number.isNaN(top.v);
  const h: Sample[] = [];
  for (const s of samples) {
    if (h.length < k) {
      h.push(s);
      heapUp(h, h.length - 1, less);
    } else if (better(s, h[0] as Sample)) {
      if (k === 1) {
        h[0] = s;
        continue;
      }
      // heap.Pop then heap.Push.
      const last = h.length - 1;
      [h[0], h[last]] = [h[last] as Sample, h[0] as Sample];
      heapDown(h, 0, last, less);
      h[last] = s;
      heapUp(h, last, less);
    }
  }
  // Best first; which of two equal values comes first does not change the set.
  return h.sort((a, b) => (less(a, b) ? 1 : less(b, a) ? -1 : 0));
}

function heapUp(h: Sample[], j: number, less: (a: Sample, b: Sample) => boolean): void {
  while (j > 0) {
    const i = (j - 1) >> 1;
    if (!less(h[j] as Sample, h[i] as Sample)) break;
    [h[i], h[j]] = [h[j] as Sample, h[i] as Sample];
    j = i;
  }
}

function heapDown(h: Sample[], i0: number, n: number, less: (a: Sample, b: Sample) => boolean): boolean {
  let i = i0;
  for (;;) {
    const j1 = 2 * i + 1;
    if (j1 >= n) break;
    let j = j1;
    const j2 = j1 + 1;
    if (j2 < n && less(h[j2] as Sample, h[j1] as Sample)) j = j2;
    if (!less(h[j] as Sample, h[i] as Sample)) break;
    [h[i], h[j]] = [h[j] as Sample, h[i] as Sample];
    i = j;
  }
  return i > i0;
}

/**
 * selectK of many groups at every step of a range query, fed series by series (stream.ts):
 * each (group, step) keeps the heap selectK would keep, as series indexes and values in
 * typed arrays, and takes the series in the order they come (the order selectK is given
 * them), with selectK's comparisons: the same set at every step, without a Sample per
 * series per step or every series' values held until the end. Memory: per group, steps ×
 * min(k, its series) entries.
 */
export class StepHeaps {
  private readonly k: number;
  private readonly topk: boolean;
  private readonly groups: Array<{ idx: Int32Array; val: Float64Array; len: Int32Array; cap: number }> = [];

  /** `param` as selectK takes it; no group ever keeps anything when its integer part is below 1. */
  constructor(op: 'topk' | 'bottomk', param: number, private readonly steps: number) {
    const k = Math.trunc(param);
    this.k = k >= 1 ? k : 0;
    this.topk = op === 'topk';
  }

  /** A new group that will be given at most `series` series; its index. Entries held: steps × min(k, series). */
  addGroup(series: number): { group: number; entries: number } {
    const cap = Math.min(this.k, series);
    const n = this.steps * cap;
    this.groups.push({ idx: new Int32Array(n), val: new Float64Array(n), len: new Int32Array(this.steps), cap });
    return { group: this.groups.length - 1, entries: n };
  }

  /** Series `s` of group `g` with value v[step] at the steps where present[step] is 1. */
  add(g: number, s: number, v: Float64Array, present: Uint8Array): void {
    const grp = this.groups[g] as { idx: Int32Array; val: Float64Array; len: Int32Array; cap: number };
    const { idx, val, len } = grp;
    const K = this.k;
    if (K === 0) return;
    const top = this.topk;
    for (let step = 0; step < this.steps; step++) {
      if (present[step] === 0) continue;
      const x = v[step] as number;
      const base = step * grp.cap;
      const n = len[step] as number;
      if (n < K) {
        idx[base + n] = s;
        val[base + n] = x;
        len[step] = n + 1;
        up(idx, val, base, n, top);
        continue;
      }
      // selectK's better(s, top): strictly better, or anything where the top is NaN; then pop and push.
      const t = val[base] as number;
      const isBetter = top ? t < x || t !== t : t > x || t !== t;
      if (!isBetter) continue;
      if (K > 1) {
        swap(idx, val, base, base + n - 1);
        down(idx, val, base, n - 1, top);
      }
      idx[base + n - 1] = s;
      val[base + n - 1] = x;
      if (K > 1) up(idx, val, base, n - 1, top);
    }
  }

  /** Calls f(series, step, value) for every kept entry, group by group, steps in order. */
  forEach(f: (s: number, step: number, v: number) => void): void {
    for (const { idx, val, len, cap } of this.groups) {
      for (let step = 0; step < this.steps; step++) {
        const base = step * cap;
        for (let j = 0; j < (len[step] as number); j++) f(idx[base + j] as number, step, val[base + j] as number);
      }
    }
  }
}

/** selectK's less(a, b) on values: a ranks below b (a NaN ranks below all). */
function lessV(a: number, b: number, top: boolean): boolean {
  return a !== a || (top ? a < b : a > b);
}

function swap(idx: Int32Array, val: Float64Array, i: number, j: number): void {
  const ti = idx[i] as number;
  idx[i] = idx[j] as number;
  idx[j] = ti;
  const tv = val[i] as number;
  val[i] = val[j] as number;
  val[j] = tv;
}

/** heapUp of entry j of the heap at base. */
function up(idx: Int32Array, val: Float64Array, base: number, j0: number, top: boolean): void {
  let j = j0;
  while (j > 0) {
    const i = (j - 1) >> 1;
    if (!lessV(val[base + j] as number, val[base + i] as number, top)) break;
    swap(idx, val, base + i, base + j);
    j = i;
  }
}

/** heapDown from the top of the heap of n entries at base. */
function down(idx: Int32Array, val: Float64Array, base: number, n: number, top: boolean): void {
  let i = 0;
  for (;;) {
    const j1 = 2 * i + 1;
    if (j1 >= n) break;
    let j = j1;
    const j2 = j1 + 1;
    if (j2 < n && lessV(val[base + j2] as number, val[base + j1] as number, top)) j = j2;
    if (!lessV(val[base + j] as number, val[base + i] as number, top)) break;
    swap(idx, val, base + i, base + j);
    i = j;
  }
}
