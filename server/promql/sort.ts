/**
 * The order of an instant query's answer: by label set, but sort's and sort_desc's by value
 * (eval.ts evaluates them; engine.ts orders the answer).
 */
import type { Sample } from './eval.js';
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
 * opposite order, NaN last): Go's insertion sort up to 12 samples, so equal values keep
 * the input's order as Prometheus' do; a stable sort beyond.
 */
export function sortByValue(input: readonly Sample[], desc: boolean): Sample[] {
  const out = input.slice();
  const less = (a: Sample, b: Sample): boolean => Number.isNaN(b.v) || (desc ? b.v < a.v : b.v > a.v);
  if (out.length > 12) out.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0));
  else {
    for (let i = 1; i < out.length; i++) {
      for (let j = i; j > 0 && less(out[j] as Sample, out[j - 1] as Sample); j--) {
        const x = out[j] as Sample;
        out[j] = out[j - 1] as Sample;
        out[j - 1] = x;
      }
    }
  }
  byValue.add(out);
  return out;
}

