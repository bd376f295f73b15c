/**
 * The arithmetic of PromQL, ported from Prometheus 2.42 (promql/functions.go, engine.go) so
 * answers equal the installed Prometheus' to the last bit where the algorithm allows:
 * extrapolatedRate, instantValue, the *_over_time family with Kahan-Neumaier sums,
 * linearRegression, quantile, and the element-wise binary operators. Pure.
 */
import type { ArithOp, BinaryOp, ClampFunction, ElementFunction, RangeFunction } from './ast.js';
import { execution } from './errors.js';
import { goSort } from './go-sort.js';
import { goExp, goLog, goLog10, goLog2, goMax, goMin, goPow } from './gomath.js';
import { goAcos, goAcosh, goAsin, goAsinh, goAtan, goAtan2, goAtanh, goCos, goCosh, goSin, goSinh, goTan, goTanh } from './gotrig.js';

/** A window of samples: t[lo..hi), v[lo..hi). */
export interface Window {
  readonly t: Float64Array;
  readonly v: Float64Array;
  readonly lo: number;
  readonly hi: number;
}

function kahanSumInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  // Neumaier: compensate with whichever term lost precision.
  if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
  else c += inc - t + sum;
  return [t, c];
}

/** rate / increase / delta: the increase over the range, extrapolated to its edges. */
function extrapolatedRate(w: Window, rangeStartMs: number, rangeEndMs: number, isCounter: boolean, isRate: boolean, rangeMs: number): number | undefined {
  const { t, v, lo, hi } = w;
  const n = hi - lo;
  if (n < 2) return undefined;
  const first = v[lo] as number;
  const firstT = t[lo] as number;
  const lastT = t[hi - 1] as number;
  let result = (v[hi - 1] as number) - first;
  if (isCounter) {
    let prev = first;
    for (let i = lo + 1; i < hi; i++) {
      const cur = v[i] as number;
      if (cur < prev) result += prev;
      prev = cur;
    }
  }
  let durationToStart = (firstT - rangeStartMs) / 1000;
  const durationToEnd = (rangeEndMs - lastT) / 1000;
  const sampledInterval = (lastT - firstT) / 1000;
  const averageDurationBetweenSamples = sampledInterval / (n - 1);
  if (isCounter && result > 0 && first >= 0) {
    // A counter does not go below zero: extrapolate at most to where it would be zero.
    const durationToZero = sampledInterval * (first / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const extrapolationThreshold = averageDurationBetweenSamples * 1.1;
  let extrapolateToInterval = sampledInterval;
  extrapolateToInterval += durationToStart < extrapolationThreshold ? durationToStart : averageDurationBetweenSamples / 2;
  extrapolateToInterval += durationToEnd < extrapolationThreshold ? durationToEnd : averageDurationBetweenSamples / 2;
  let factor = extrapolateToInterval / sampledInterval;
  if (isRate) factor /= rangeMs / 1000;
  return result * factor;
}

/** irate / idelta: the last two samples. */
function instantValue(w: Window, isRate: boolean): number | undefined {
  const { t, v, hi } = w;
  if (hi - w.lo < 2) return undefined;
  const last = v[hi - 1] as number;
  const prev = v[hi - 2] as number;
  const result = isRate && last < prev ? last : last - prev;
  const sampledIntervalMs = (t[hi - 1] as number) - (t[hi - 2] as number);
  if (sampledIntervalMs === 0) return undefined;
  return isRate ? result / (sampledIntervalMs / 1000) : result;
}

/** linearRegression of functions.go: slope and intercept at `interceptMs` (deriv: the first sample's time; predict_linear: the evaluation time). */
function linearRegression(w: Window, interceptMs: number): [number, number] {
  const { t, v, lo, hi } = w;
  let n = 0;
  let sumX = 0, cX = 0, sumY = 0, cY = 0, sumXY = 0, cXY = 0, sumX2 = 0, cX2 = 0;
  const initY = v[lo] as number;
  let constY = true;
  for (let i = lo; i < hi; i++) {
    const y = v[i] as number;
    if (constY && i > lo && y !== initY) constY = false;
    n += 1;
    const x = ((t[i] as number) - interceptMs) / 1e3;
    [sumX, cX] = kahanSumInc(x, sumX, cX);
    [sumY, cY] = kahanSumInc(y, sumY, cY);
    [sumXY, cXY] = kahanSumInc(x * y, sumXY, cXY);
    [sumX2, cX2] = kahanSumInc(x * x, sumX2, cX2);
  }
  if (constY) return Number.isFinite(initY) || Number.isNaN(initY) ? [0, initY] : [NaN, NaN];
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  const slope = covXY / varX;
  return [slope, sumY / n - (slope * sumX) / n];
}

/** holt_winters (2.42's name): double exponential smoothing with smoothing factor sf and trend factor tf, both in (0, 1). */
function holtWinters(w: Window, sf: number, tf: number): number | undefined {
  if (sf <= 0 || sf >= 1) throw execution(`invalid smoothing factor. Expected: 0 < sf < 1, got: ${goFloatF6(sf)}`);
  if (tf <= 0 || tf >= 1) throw execution(`invalid trend factor. Expected: 0 < tf < 1, got: ${goFloatF6(tf)}`);
  const { v, lo, hi } = w;
  if (hi - lo < 2) return undefined;
  let s0 = 0;
  let s1 = v[lo] as number;
  let b = (v[lo + 1] as number) - (v[lo] as number);
  for (let i = lo + 1; i < hi; i++) {
    const x = sf * (v[i] as number);
    // calcTrendValue: the first step keeps the initial trend.
    if (i > lo + 1) b = tf * (s1 - s0) + (1 - tf) * b;
    const y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

/** Go's %f of a float (six decimals), for error messages. */
function goFloatF6(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  return x.toFixed(6);
}

function avgOverTime(w: Window): number {
  let mean = 0, c = 0, count = 0;
  for (let i = w.lo; i < w.hi; i++) {
    const x = w.v[i] as number;
    count++;
    if (!Number.isFinite(mean) && !Number.isNaN(mean)) {
      // An infinite mean stays as it is unless a NaN or the other infinity comes.
      if (!Number.isFinite(x) && !Number.isNaN(x) && mean > 0 === x > 0) continue;
      if (Number.isFinite(x)) continue;
    }
    [mean, c] = kahanSumInc(x / count - mean / count, mean, c);
  }
  return !Number.isFinite(mean) && !Number.isNaN(mean) ? mean : mean + c;
}

function sumOverTime(w: Window): number {
  let sum = 0, c = 0;
  for (let i = w.lo; i < w.hi; i++) [sum, c] = kahanSumInc(w.v[i] as number, sum, c);
  return !Number.isFinite(sum) && !Number.isNaN(sum) ? sum : sum + c;
}

function stdvarOverTime(w: Window): number {
  let count = 0, mean = 0, cMean = 0, aux = 0, cAux = 0;
  for (let i = w.lo; i < w.hi; i++) {
    const x = w.v[i] as number;
    count++;
    const delta = x - (mean + cMean);
    [mean, cMean] = kahanSumInc(delta / count, mean, cMean);
    [aux, cAux] = kahanSumInc(delta * (x - (mean + cMean)), aux, cAux);
  }
  return (aux + cAux) / count;
}

function extreme(w: Window, better: (a: number, b: number) => boolean): number {
  let best = w.v[w.lo] as number;
  for (let i = w.lo; i < w.hi; i++) {
    const x = w.v[i] as number;
    if (better(x, best) || Number.isNaN(best)) best = x;
  }
  return best;
}

/** Prometheus' quantile: linear interpolation between the two nearest ranks. */
export function quantile(q: number, values: number[]): number {
  if (values.length === 0 || Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  // 2.42 runs Go's sort.Sort with vectorByValueHeap's less (isNaN(a) || a < b: NaN first),
  // so -0 and 0 end where Go puts them, and so does the answer's sign.
  goSort(values.length, {
    less: (i, j) => Number.isNaN(values[i] as number) || (values[i] as number) < (values[j] as number),
    swap: (i, j) => {
      const x = values[i] as number;
      values[i] = values[j] as number;
      values[j] = x;
    },
  });
  const n = values.length;
  const rank = q * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return (values[lower] as number) * (1 - weight) + (values[upper] as number) * weight;
}

function changes(w: Window, resetsOnly: boolean): number {
  let n = 0;
  for (let i = w.lo + 1; i < w.hi; i++) {
    const prev = w.v[i - 1] as number;
    const cur = w.v[i] as number;
    if (resetsOnly ? cur < prev : cur !== prev && !(Number.isNaN(cur) && Number.isNaN(prev))) n++;
  }
  return n;
}

/**
 * One range function over one series' window ending at `endMs` (the selector's evaluation
 * time less its offset); undefined when the series gives no sample at this step.
 */
export function rangeFunction(fn: RangeFunction, w: Window, endMs: number, rangeMs: number, param: number, param2 = 0, evalMs = endMs): number | undefined {
  if (w.hi <= w.lo) return undefined;
  const startMs = endMs - rangeMs;
  switch (fn) {
    case 'rate':
      return extrapolatedRate(w, startMs, endMs, true, true, rangeMs);
    case 'increase':
      return extrapolatedRate(w, startMs, endMs, true, false, rangeMs);
    case 'delta':
      return extrapolatedRate(w, startMs, endMs, false, false, rangeMs);
    case 'irate':
      return instantValue(w, true);
    case 'idelta':
      return instantValue(w, false);
    case 'deriv':
      return w.hi - w.lo < 2 ? undefined : linearRegression(w, w.t[w.lo] as number)[0];
    case 'changes':
      return changes(w, false);
    case 'resets':
      return changes(w, true);
    case 'avg_over_time':
      return avgOverTime(w);
    case 'sum_over_time':
      return sumOverTime(w);
    case 'count_over_time':
      return w.hi - w.lo;
    case 'present_over_time':
      return 1;
    case 'last_over_time':
      return w.v[w.hi - 1];
    case 'min_over_time':
      return extreme(w, (a, b) => a < b);
    case 'max_over_time':
      return extreme(w, (a, b) => a > b);
    case 'stdvar_over_time':
      return stdvarOverTime(w);
    case 'stddev_over_time':
      return Math.sqrt(stdvarOverTime(w));
    case 'quantile_over_time':
      return quantile(param, Array.from(w.v.subarray(w.lo, w.hi)));
    case 'predict_linear': {
      if (w.hi - w.lo < 2) return undefined;
      const [slope, intercept] = linearRegression(w, evalMs);
      return slope * param + intercept;
    }
    case 'holt_winters':
      return holtWinters(w, param, param2);
  }
}

/** Go's math.Mod (same as `%` for floats, kept for symmetry). */
function arith(op: ArithOp, l: number, r: number): number {
  switch (op) {
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return l / r;
    case '%':
      return l % r;
    case '^':
      return goPow(l, r);
    case 'atan2':
      return goAtan2(l, r);
  }
}

/** vectorElemBinop: the value and whether a comparison keeps the element. */
export function binop(op: BinaryOp, l: number, r: number): { value: number; keep: boolean } {
  switch (op) {
    case '==':
      return { value: l, keep: l === r };
    case '!=':
      return { value: l, keep: l !== r };
    case '>':
      return { value: l, keep: l > r };
    case '<':
      return { value: l, keep: l < r };
    case '>=':
      return { value: l, keep: l >= r };
    case '<=':
      return { value: l, keep: l <= r };
    default:
      return { value: arith(op, l, r), keep: true };
  }
}

export function isComparison(op: BinaryOp): boolean {
  return op === '==' || op === '!=' || op === '>' || op === '<' || op === '>=' || op === '<=';
}

export function elementFunction(fn: ElementFunction, x: number): number {
  switch (fn) {
    case 'abs':
      return Math.abs(x);
    case 'ceil':
      return Math.ceil(x);
    case 'floor':
      return Math.floor(x);
    case 'exp':
      return goExp(x);
    case 'ln':
      return goLog(x);
    case 'log2':
      return goLog2(x);
    case 'log10':
      return goLog10(x);
    case 'sqrt':
      return Math.sqrt(x);
    case 'sgn':
      return x > 0 ? 1 : x < 0 ? -1 : x;
    case 'sin':
      return goSin(x);
    case 'cos':
      return goCos(x);
    case 'tan':
      return goTan(x);
    case 'asin':
      return goAsin(x);
    case 'acos':
      return goAcos(x);
    case 'atan':
      return goAtan(x);
    case 'sinh':
      return goSinh(x);
    case 'cosh':
      return goCosh(x);
    case 'tanh':
      return goTanh(x);
    case 'asinh':
      return goAsinh(x);
    case 'acosh':
      return goAcosh(x);
    case 'atanh':
      return goAtanh(x);
    case 'deg':
      return (x * 180) / Math.PI;
    case 'rad':
      return (x * Math.PI) / 180;
  }
}

/** clamp, clamp_min, clamp_max and round of one value with the step's parameters (functions.go, with Go's math.Max and math.Min). */
export function clampFunction(fn: ClampFunction, x: number, p: readonly number[]): number {
  switch (fn) {
    case 'clamp_min':
      return goMax(p[0] as number, x);
    case 'clamp_max':
      return goMin(p[0] as number, x);
    case 'clamp':
      return goMax(p[0] as number, goMin(p[1] as number, x));
    case 'round': {
      // Ties up; the inverse, as Prometheus computes it (fewer rounding errors than dividing).
      const inverse = 1 / (p.length > 0 ? (p[0] as number) : 1);
      return Math.floor(x * inverse + 0.5) / inverse;
    }
  }
}
