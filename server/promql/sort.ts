/**
 * The order of an instant query's answer: by label set, but sort's and sort_desc's by value
 * (eval.ts evaluates them; engine.ts orders the answer).
 */
import type { Sample } from './eval.js';
import { goSort } from './go-sort.js';
import { compareMetrics } from './labels.js';

/** Answers of sort / sort_desc, already in the order an instant query gives them. */
const byValue = new WeakSet<Sample[]>();

/** An instant query's answer in label order, but sort's and sort_desc's in theirs. */
export function sortSamples(samples: Sample[]): Sample[] {
  if (byValue.has(samples)) return samples;
  return samples.sort((a, b) => compareMetrics(a.metric, b.metric));
}

/**
 * sort / sort_desc as Prometheus 2.42 sorts (functions.go: sort.Sort of the reversed
 * opposite order, vectorByReverseValueHeap / vectorByValueHeap): Go's own algorithm
 * (go-sort.ts) with 2.42's less, `isNaN(b) || b > a` (sort) or `isNaN(b) || b < a`
 * (sort_desc), true both ways between two NaNs, so NaNs and equal values end where 2.42
 * puts them, whatever the vector's size.
 */
export function sortByValue(input: readonly Sample[], desc: boolean): Sample[] {
  const out = input.slice();
  goSort(out.length, {
    less: (i, j) => {
      const a = (out[i] as Sample).v;
      const b = (out[j] as Sample).v;
      return Number.isNaN(b) || (desc ? b < a : b > a);
    },
    swap: (i, j) => {
      const x = out[i] as Sample;
      out[i] = out[j] as Sample;
      out[j] = x;
    },
  });
  byValue.add(out);
  return out;
}
