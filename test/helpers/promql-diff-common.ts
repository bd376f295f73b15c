/**
 * What the differential tests against a real Prometheus share (test/promql-diff*.test.ts):
 * a data set's series, how they load into Tapedeck (one batch a millisecond) and into
 * Prometheus (remote write in time order), and how two answers compare.
 */
import type { Batch, Value } from '../../protocol/value.js';
import { remoteWrite, type PromSeries } from './promql-peers.js';
import type { RunningPrometheus } from './prometheus.js';

export const T0_MS = 1_700_000_000_000;
export const MINUTE_MS = 60_000;
export const SPAN_MS = 60 * MINUTE_MS;
export const INTERVAL_MS = 15_000;

/** One series of the data set: its labels and samples, and how Tapedeck records it. */
export interface DataSeries extends PromSeries {
  /** The archive path: seriesToPath for Prometheus series, the path itself for native ones. */
  path: string;
  /** Native boolean paths record true/false where Prometheus gets 1/0. */
  boolean?: boolean;
}

/** Tapedeck's batches: one per millisecond holding every sample taken then. */
export function toBatches(series: readonly DataSeries[]): Batch[] {
  const byTime = new Map<number, Array<[string, Value]>>();
  for (const s of series) {
    for (const [t, v] of s.samples) {
      const value: Value = v === 'stale' ? null : s.boolean ? v === 1 : v;
      let list = byTime.get(t);
      if (!list) byTime.set(t, (list = []));
      list.push([s.path, value]);
    }
  }
  return [...byTime.keys()].sort((a, b) => a - b).map((t) => ({ ts: t * 1000, updates: byTime.get(t) as Array<[string, Value]> }));
}

/** Remote write in 10-minute slices, in time order (the TSDB head takes samples within an hour of its newest). */
export async function loadPrometheus(prom: RunningPrometheus, series: readonly DataSeries[]): Promise<void> {
  for (let from = T0_MS; from <= T0_MS + SPAN_MS + INTERVAL_MS; from += 10 * MINUTE_MS) {
    const slice = series.map((s) => ({ labels: s.labels, samples: s.samples.filter(([t]) => t >= from && t < from + 10 * MINUTE_MS) })).filter((s) => s.samples.length > 0);
    await remoteWrite(`${prom.url}/api/v1/write`, slice);
  }
}

export type Point = [number, string];
export interface Normal {
  type: 'scalar' | 'series';
  series: Map<string, Point[]>;
}

/** promtool's JSON (scalar, vector or matrix) as series key -> points. */
export function normalize(result: unknown): Normal {
  if (Array.isArray(result) && result.length === 2 && typeof result[1] === 'string') {
    return { type: 'scalar', series: new Map([['scalar', [result as Point]]]) };
  }
  const series = new Map<string, Point[]>();
  for (const s of result as Array<{ metric: Record<string, string>; value?: Point; values?: Point[] }>) {
    const key = JSON.stringify(Object.entries(s.metric).sort(([a], [b]) => (a < b ? -1 : 1)));
    series.set(key, s.values ?? [s.value as Point]);
  }
  return { type: 'series', series };
}

export function close(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) && Number.isNaN(y)) return true;
  return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

/** The first difference between two answers, or undefined when they agree (`exact`: to the bit, not within 1e-9). */
export function difference(want: Normal, got: Normal, exact = false): string | undefined {
  if (want.type !== got.type) return `result type ${got.type}, Prometheus ${want.type}`;
  const wantKeys = [...want.series.keys()].sort();
  const gotKeys = [...got.series.keys()].sort();
  if (JSON.stringify(wantKeys) !== JSON.stringify(gotKeys)) return `series ${JSON.stringify(gotKeys)}, Prometheus ${JSON.stringify(wantKeys)}`;
  for (const k of wantKeys) {
    const w = want.series.get(k) as Point[];
    const g = got.series.get(k) as Point[];
    if (w.length !== g.length) return `${k}: ${g.length} points, Prometheus ${w.length}: ${JSON.stringify(g.slice(0, 5))} vs ${JSON.stringify(w.slice(0, 5))}`;
    for (let i = 0; i < w.length; i++) {
      const [wt, wv] = w[i] as Point;
      const [gt, gv] = g[i] as Point;
      if (wt !== gt || (exact ? wv !== gv : !close(wv, gv))) return `${k}: point ${i} is [${gt}, ${gv}], Prometheus [${wt}, ${wv}]`;
    }
  }
  return undefined;
}

/** Runs `fn` over items, `width` at a time (promtool is a process per query). */
export async function pool<T, R>(items: readonly T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  }));
  return out;
}

/** The query API's answer (what promtool prints with -o json), or its error. */
export async function ask(base: string, params: Record<string, string>): Promise<{ ok: true; result: unknown } | { ok: false; error: string }> {
  const route = 'step' in params ? 'query_range' : 'query';
  const body = (await (await fetch(`${base}/api/v1/${route}`, { method: 'POST', body: new URLSearchParams(params) })).json()) as { status: string; data?: { result: unknown }; error?: string };
  return body.status === 'success' ? { ok: true, result: body.data?.result } : { ok: false, error: String(body.error) };
}
