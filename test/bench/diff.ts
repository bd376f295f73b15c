/**
 * "What changed" over one day of 10 k paths (npm run bench:diff): builds the day once into
 * bench-data/diff (kept for later runs) with the storage API, every path polled every
 * DIFF_BENCH_POLL_S seconds (default 60: 1 440 polls of 10 000 updates, 14.4 M updates;
 * each poll moves about a third of the values), then times GET /api/v1/diff's work
 * (diffRange: the state at start, one forward pass, the answer) over the whole day, over one
 * hour, and over the whole day for one glob of 100 paths (the other columns skipped). Then
 * the whole day once more the way the route read it before the column pass (a cursor's
 * batches folded update by update: dayCursorMs), so that a run on a busy machine still
 * compares the two on the same machine state. Prints one JSON object: wall and CPU
 * milliseconds, and the machine's load (figures taken on a busy machine say so).
 */
import { rm, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { Archive } from '../../storage/archive.js';
import type { Update, Value } from '../../protocol/value.js';
import { DiffFold, type DiffAnswer } from '../../server/diff.js';
import { diffRange } from '../../server/routes/diff.js';
import { rng } from '../helpers/workload.js';

const PATHS = 10_000;
const DAY_S = 24 * 3600;
const POLL_S = Number(process.env.DIFF_BENCH_POLL_S ?? 60);
const DIR = `bench-data/diff-${POLL_S}s`;
const T0 = 1_763_000_000_000_000;

async function build(): Promise<number> {
  if (await stat(`${DIR}/current`).catch(() => undefined)) return 0;
  await rm(DIR, { recursive: true, force: true });
  const r = rng(7);
  const paths = Array.from({ length: PATHS }, (_, i) => `/day/dev-${String(i % 100).padStart(3, '0')}/m-${i}`);
  const level = paths.map(() => Math.round(r() * 1000));
  const a = await Archive.open(DIR, { rotateSizeBytes: 64 * 1024 * 1024 });
  const w = a.writer!;
  const t0 = performance.now();
  for (let s = 0; s < DAY_S; s += POLL_S) {
    const ups: Update[] = new Array(PATHS);
    for (let i = 0; i < PATHS; i++) {
      if (r() < 0.33) level[i] = (level[i] as number) + Math.round((r() - 0.5) * 10);
      ups[i] = [paths[i] as string, level[i] as number];
    }
    w.append(ups, T0 + s * 1_000_000);
    if (w.needsDrain) await w.drain();
  }
  await a.close();
  return (performance.now() - t0) / 1000;
}

/** The pass before the column reader, for comparison: every batch from a cursor, folded update by update. */
async function cursorDiff(a: Archive, globs: string[], startUs: number, endUs: number): Promise<DiffAnswer> {
  const at = a.cursor({ filter: globs });
  await at.seek({ ts: startUs });
  const fold = new DiffFold(await at.stateById(), a.paths.length);
  const c = a.cursor();
  await c.seek({ ts: startUs });
  for (let b = await c.nextRaw(); b && b.ts <= endUs; b = await c.nextRaw()) {
    for (let i = b.from; i < b.to; i++) fold.apply(b.ids[i] as number, b.values[i] as Value, b.ts);
  }
  return fold.answer((id) => a.paths[id] as string, 10_000);
}

/** Wall time, and the process's CPU time (steadier than wall time on a shared machine). */
async function timed(a: Archive, globs: string[], startUs: number, endUs: number, diff = diffRange): Promise<{ ms: number; cpuMs: number; changed: number; listed: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const answer = await diff(a, globs, startUs, endUs);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  // What the route adds: the JSON text of the answer.
  JSON.stringify(answer);
  return { ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000), changed: answer.counts.changed, listed: answer.paths.length };
}

const buildS = await build();
const a = await Archive.open(DIR, { readonly: true });
const totals = a.totals();
const endUs = a.lastTs;
const cold = await timed(a, ['/**'], T0, endUs);
const day = await timed(a, ['/**'], T0, endUs);
const hour = await timed(a, ['/**'], endUs - 3600 * 1_000_000, endUs);
const oneDevice = await timed(a, ['/day/dev-042/*'], T0, endUs);
const before = await timed(a, ['/**'], T0, endUs, cursorDiff);
if (before.changed !== day.changed) throw new Error(`the cursor pass found ${before.changed} changed paths, the column pass ${day.changed}`);
await a.close();
console.log(JSON.stringify({ paths: PATHS, pollS: POLL_S, updates: totals.updates, buildS: Math.round(buildS), dayColdMs: cold.ms, dayMs: day.ms, dayCpuMs: day.cpuMs, dayChanged: day.changed, dayListed: day.listed, hourMs: hour.ms, oneDeviceDayMs: oneDevice.ms, oneDeviceDayCpuMs: oneDevice.cpuMs, dayCursorMs: before.ms, dayCursorCpuMs: before.cpuMs, targetDayMs: 1000, loadAverage1m: Number(loadavg()[0]!.toFixed(1)) }));
