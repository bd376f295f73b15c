/** topk and bottomk as Prometheus' engine computes them (server/promql/eval.ts aggregates). */
import type { Sample } from './eval.js';

/**
 * topk / bottomk of one group, chosen exactly as Prometheus chooses among equal values: its
 * engine keeps a binary heap of k samples (the worst on top, a NaN counting as worst), takes
 * the group's samples in input order, and replaces the top only with a strictly better
 * sample (Go's container/heap: push = append + up, replace = set top + Fix). With ties the
 * heap's shape decides which equal sample stays, so a stable sort picks differently.
 * Cost O(n log k).
 */
export function selectK(op: 'topk' | 'bottomk', samples: Sample[], param: number): Sample[] {
  const k = Math.trunc(param);
  if (!(k >= 1) || samples.length === 0) return [];
  // less(a, b): a ranks below b, so it sits nearer the top of the heap.
  const less = op === 'topk'
    ? (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v < b.v
    : (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v > b.v;
  const better = op === 'topk'
    ? (s: Sample, top: Sample): boolean => top.v < s.v || (Number.isNaN(top.v) && !Number.isNaN(s.v))
    : (s: Sample, top: Sample): boolean => top.v > s.v || (Number.isNaN(top.v) && !Number.isNaN(s.v));
  const h: Sample[] = [];
  for (const s of samples) {
    if (h.length < k) {
      h.push(s);
      heapUp(h, h.length - 1, less);
    } else if (better(s, h[0] as Sample)) {
      h[0] = s;
      if (k > 1 && !heapDown(h, 0, h.length, less)) heapUp(h, 0, less);
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
