/**
 * The data the PromQL fuzz (test/promql-diff-fuzz.test.ts) loads into Prometheus and into
 * Tapedeck alike: counters with resets, gauges with NaN and ±Inf values, a gap longer than
 * the lookback, stale markers, jittered times, classic histogram buckets with hostile bucket
 * sets, native paths. Seeded by the caller's rand.
 */
import { seriesToPath } from '../../protocol/prom-path.js';
import { MINUTE_MS, SPAN_MS, T0_MS, type DataSeries } from './promql-diff-common.js';

export type Rand = () => number;
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
export const chance = (r: Rand, p: number): boolean => r() < p;

export const INSTANCES = ['i1', 'i2', 'i3'];
/** Each metric's labels and their values (what selectors and matching draw from). */
export const METRICS: Record<string, Record<string, readonly string[]>> = {
  fz_req_total: { job: ['api'], instance: INSTANCES, code: ['200', '500'] },
  fz_temp: { job: ['env'], instance: INSTANCES, room: ['a', 'b'] },
  fz_gap: { job: ['env'], instance: ['i1'] },
  fz_late: { job: ['env'], instance: ['i1'] },
  fz_aligned: { job: ['api'], instance: ['i1', 'i2'] },
  fz_stale: { job: ['env'], instance: ['i2', 'i3'] },
  fz_info: { instance: [...INSTANCES, 'i4'], team: ['red', 'blue'] },
  fz_up: { job: ['api', 'env'], instance: INSTANCES },
  tapedeck_value: { path: ['/fabric/sw-1/cpu', '/fabric/sw-1/link_up'] },
  fz_lat_bucket: { job: ['api'], instance: [...INSTANCES, 'i4'], le: ['0.1', '1', '1.0', '+Inf', 'abc', '-1'] },
};
export const LABELS = ['job', 'instance', 'code', 'room', 'team', 'path', 'zz', '__name__', 'le'];
/**
 * Classic histogram buckets (cumulative counters by `le`): i1 as exporters write them (with
 * a reset), i2 without a +Inf bucket, i3 hostile (a bound spelled twice, "1" and "1.0", an
 * `le` that is no number, counts that go down across buckets and now and then NaN), i4's
 * bounds at and below zero.
 */
export const BUCKETS: Record<string, readonly string[]> = {
  i1: ['0.1', '0.5', '1', '5', '+Inf'],
  i2: ['0.1', '1', '10'],
  i3: ['0.1', '1', '1.0', '5', 'Inf', 'abc'],
  i4: ['-5', '-1', '0', '2.5e0', '+Inf'],
};
export const SPECIALS = [NaN, Infinity, -Infinity, 0, -0];

export function generate(rand: Rand): DataSeries[] {
  const out: DataSeries[] = [];
  const times = (intervalMs: number, keep: (o: number) => boolean = () => true): number[] => {
    const ts: number[] = [];
    for (let o = 0; o <= SPAN_MS; o += intervalMs) if (keep(o)) ts.push(T0_MS + o + Math.floor(rand() * 2000));
    return ts;
  };
  const add = (labels: Record<string, string>, samples: Array<[number, number | 'stale']>): void => {
    const { __name__: name, ...rest } = labels;
    out.push({ labels, samples, path: seriesToPath({ name: name as string, labels: rest }) });
  };
  for (const instance of INSTANCES) {
    for (const code of ['200', '500']) {
      let v = Math.floor(rand() * 500);
      // Resets: to 0, twice in a row, by a little, at random steps.
      const kind = Math.floor(rand() * 4);
      add({ __name__: 'fz_req_total', job: 'api', instance, code }, times(15_000).map((t, i) => {
        if (kind === 1 && i % 37 === 20) v = 0;
        else if (kind === 2 && (i % 53 === 30 || i % 53 === 31)) v = Math.floor(rand() * 3);
        else if (kind === 3 && i % 41 === 10) v -= 0.5;
        else v += Math.floor(rand() * 30) + (chance(rand, 0.2) ? 0.25 : 0);
        return [t, v];
      }));
    }
    for (const room of ['a', 'b']) {
      add({ __name__: 'fz_temp', job: 'env', instance, room }, times(10_000).map((t) => [t, chance(rand, 0.03) ? pick(rand, SPECIALS) : Math.round((rand() * 40 - 5) * 100) / 100]));
    }
    for (const job of ['api', 'env']) add({ __name__: 'fz_up', job, instance }, times(15_000).map((t) => [t, chance(rand, 0.85) ? 1 : 0]));
  }
  // No sample for 12 minutes: longer than the 5 minute lookback.
  add({ __name__: 'fz_gap', job: 'env', instance: 'i1' }, times(15_000, (o) => o < 20 * MINUTE_MS || o >= 32 * MINUTE_MS).map((t) => [t, Math.round(rand() * 1000) / 10]));
  // Exactly every 15 s (no jitter), i2 with a gap from 20m to 32m: window and lookback boundaries met exactly.
  for (const instance of ['i1', 'i2']) {
    let v = 0;
    add({ __name__: 'fz_aligned', job: 'api', instance }, Array.from({ length: SPAN_MS / 15_000 + 1 }, (_x, i): [number, number] => [T0_MS + i * 15_000, (v += Math.floor(rand() * 10))]).filter(([t]) => instance === 'i1' || t - T0_MS < 20 * MINUTE_MS || t - T0_MS >= 32 * MINUTE_MS));
  }
  // Only while fz_gap has no sample (23m to 29m): the same labels but the name, never at one step with it.
  add({ __name__: 'fz_late', job: 'env', instance: 'i1' }, times(15_000, (o) => o >= 23 * MINUTE_MS && o < 29 * MINUTE_MS).map((t) => [t, Math.round(rand() * 100)]));
  // Stale markers: one ending a run at 25m17s (back at 40m), two in a row, one between samples 5 s apart.
  const stale = (instance: string, from: number): void => {
    const s: Array<[number, number | 'stale']> = [];
    for (const t of times(15_000, (o) => o <= 25 * MINUTE_MS || o >= 40 * MINUTE_MS)) {
      s.push([t, Math.round(rand() * 100)]);
      const o = t - T0_MS;
      if (o >= 25 * MINUTE_MS && o < 25 * MINUTE_MS + 15_000) s.push([T0_MS + 25 * MINUTE_MS + 17_000, 'stale']);
      else if (o > from && o < 40 * MINUTE_MS && Math.floor(o / 15_000) % 9 === 4) s.push([t + 5000, 'stale'], [t + 10_000, 'stale']);
      else if (o > 40 * MINUTE_MS && Math.floor(o / 15_000) % 7 === 3) s.push([t + 5000, 'stale'], [t + 7000, Math.round(rand() * 100)]);
    }
    add({ __name__: 'fz_stale', job: 'env', instance }, s);
  };
  stale('i2', 0);
  stale('i3', 10 * MINUTE_MS);
  // Info series: one per instance (i4 has no other metric), i3's with two teams over time.
  for (const instance of [...INSTANCES, 'i4']) add({ __name__: 'fz_info', instance, team: instance === 'i2' ? 'blue' : 'red' }, times(30_000).map((t) => [t, 1]));
  add({ __name__: 'fz_info', instance: 'i3', team: 'blue' }, times(30_000, (o) => o >= 50 * MINUTE_MS).map((t) => [t, 1]));
  for (const [instance, les] of Object.entries(BUCKETS)) {
    const counts = les.map(() => 0);
    const ts = times(15_000);
    const rows = ts.map((_t, i) => {
      if (instance === 'i1' && i === 150) counts.fill(0);
      // New observations: each lands in its bucket and every one above (cumulative).
      for (let n = Math.floor(rand() * 6); n > 0; n--) {
        const b = Math.floor(rand() * les.length);
        for (let j = b; j < les.length; j++) counts[j] = (counts[j] as number) + 1;
      }
      return counts.map((c) => (instance === 'i3' && chance(rand, 0.05) ? (chance(rand, 0.5) ? NaN : Math.max(0, c - 3 - Math.floor(rand() * 5))) : c));
    });
    les.forEach((le, j) => add({ __name__: 'fz_lat_bucket', job: 'api', instance, le }, ts.map((t, i) => [t, (rows[i] as number[])[j] as number])));
  }
  // Paths that did not come from Prometheus: tapedeck_value{path="..."}, a boolean as 1 and 0.
  out.push({ labels: { __name__: 'tapedeck_value', path: '/fabric/sw-1/cpu' }, path: '/fabric/sw-1/cpu', samples: times(15_000).map((t) => [t, Math.round(rand() * 1000) / 10]) });
  out.push({ labels: { __name__: 'tapedeck_value', path: '/fabric/sw-1/link_up' }, path: '/fabric/sw-1/link_up', boolean: true, samples: times(15_000).map((t) => [t, chance(rand, 0.8) ? 1 : 0]) });
  return out;
}
