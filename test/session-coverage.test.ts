/**
 * Coverage in session frames: a session over an archive with a recorder crash gap and
 * source outages says where the record is blind (a `coverage` frame after each state
 * frame, and again when the coverage changes while it tails), limited to its range and to
 * coverageItemsMax items, newest kept.
 *
 * The journal is written as a crashed earlier run left it (the journal's own encoder), the
 * archive and the CoverageLog are real and in this process, the server listens on a free
 * port.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../storage/index.js';
import { COVERAGE_FILE, encodeJournalLine } from '../storage/coverage-journal.js';
import type { CoverageEvent } from '../protocol/coverage.js';
import { coverageFrame } from '../protocol/frames.js';
import { buildServer } from '../server/app.js';
import { CoverageLog } from '../server/coverage.js';
import { Recorder } from '../server/recorder.js';
import type { PlaybackOptions } from '../server/sessions/manager.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';

const T0_US = 1_800_000_000_000_000;
const STEP_US = 1_000_000;
const at = (i: number): number => T0_US + i * STEP_US;
/** Run a recorded batches 0..4 and crashed; run b found the archive ending at 4 and recorded 10..14. */
const GAP = { startUs: at(4), endUs: at(10), reason: 'recorder-crashed' } as const;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function crashedRuns(extra: CoverageEvent[] = []): CoverageEvent[] {
  return [
    { kind: 'run-start', run: 'a', atUs: at(0) - 1, lastTsUs: null },
    { kind: 'run-first-batch', run: 'a', atUs: at(0), tsUs: at(0) },
    { kind: 'source-down', run: 'a', atUs: at(2), source: 'sw', reason: 'HTTP 500' },
    { kind: 'source-up', run: 'a', atUs: at(3), source: 'sw' },
    // no run-stop: run a crashed
    { kind: 'run-start', run: 'b', atUs: at(9), lastTsUs: at(4) },
    { kind: 'run-first-batch', run: 'b', atUs: at(10), tsUs: at(10) },
    ...extra,
    { kind: 'run-stop', run: 'b', atUs: at(15), lastTsUs: at(14) },
  ];
}

interface Setup {
  url: string;
  app: FastifyInstance;
  archive: Archive;
  coverage: CoverageLog;
}

async function serve(events: CoverageEvent[], opts: { recording?: boolean; playback?: Partial<PlaybackOptions> } = {}): Promise<Setup & { recorder?: Recorder }> {
  const dir = await tmpDir('tapedeck-cov-session-');
  await writeFile(join(dir, COVERAGE_FILE), events.map(encodeJournalLine).join(''));
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  for (const i of [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]) archive.writer!.append([['/sw/cpu', i]], at(i));
  await archive.writer!.flush();
  const log = pino({ level: 'silent' });
  const recorder = opts.recording ? await Recorder.open(archive) : undefined;
  const coverage = await CoverageLog.open(archive, log, recorder ? { recorder, sources: [] } : undefined);
  const app = await buildServer({ archive, coverage, loggerInstance: log, ...(opts.playback ? { playback: opts.playback } : {}) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    await app.close();
    await coverage.stop();
    await archive.close();
  });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, app, archive, coverage, ...(recorder ? { recorder } : {}) };
}

async function stream(url: string, controls: Record<string, unknown>, format: 'json' | 'msgpack' = 'json'): Promise<TestWs> {
  const c = await api(url, 'POST', '/api/v1/sessions', controls);
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  const ws = await TestWs.open(url + (c.body as { stream: string }).stream, format);
  cleanups.push(async () => ws.close());
  return ws;
}

const isCoverage = (f: Frame): boolean => f.type === 'coverage';

describe('coverage frames', () => {
  it('follow the state frame with the crash gap and the outage of the session range, in JSON and msgpack', async () => {
    const { url } = await serve(crashedRuns());
    for (const format of ['json', 'msgpack'] as const) {
      const ws = await stream(url, { state: 'pause' }, format);
      const first = await ws.next();
      expect(first.type).toBe('state');
      await ws.next((f) => f.type === 'controls');
      const cov = await ws.next(isCoverage);
      expect(cov).toEqual({ type: 'coverage', gaps: [GAP], outages: [{ source: 'sw', startUs: at(2), endUs: at(3), reason: 'HTTP 500' }], truncated: false });
      // After a seek: a state frame, then coverage again.
      ws.send({ type: 'control', set: { pos: at(12) } });
      await ws.next((f) => f.type === 'state' && f.ts === at(12));
      expect(await ws.next(isCoverage)).toMatchObject({ gaps: [GAP] });
    }
  });

  it('leave out what lies outside [start, end]', async () => {
    const { url } = await serve(crashedRuns());
    const ws = await stream(url, { state: 'pause', start: at(11), end: at(14) });
    expect(await ws.next(isCoverage)).toEqual({ type: 'coverage', gaps: [], outages: [], truncated: false });
    // A range over the hole: the gap, not the outage before it.
    ws.send({ type: 'control', set: { start: at(5), pos: at(5) } });
    await ws.next((f) => f.type === 'state');
    expect(await ws.next(isCoverage)).toEqual({ type: 'coverage', gaps: [GAP], outages: [], truncated: false });
  });

  it('carry at most coverageItemsMax items, the newest, and say truncated', async () => {
    const flaps: CoverageEvent[] = [];
    for (let k = 0; k < 40; k++) {
      flaps.push({ kind: 'source-down', run: 'b', atUs: at(10) + k * 10, source: 'sw', reason: `flap ${k}` });
      flaps.push({ kind: 'source-up', run: 'b', atUs: at(10) + k * 10 + 5, source: 'sw' });
    }
    const { url } = await serve(crashedRuns(flaps), { playback: { coverageItemsMax: 8 } });
    const ws = await stream(url, { state: 'pause' });
    const cov = await ws.next(isCoverage);
    expect(cov.truncated).toBe(true);
    expect(cov.gaps).toEqual([]);
    expect((cov.outages as Array<{ reason: string }>).map((o) => o.reason)).toEqual(Array.from({ length: 8 }, (_, i) => `flap ${32 + i}`));
  });

  it('are sent again while tailing when the coverage changes: the gap of this run closes at its first batch', async () => {
    const s = await serve(crashedRuns().slice(0, -1), { recording: true }); // run b crashed too
    const ws = await stream(s.url, { state: 'tail' });
    const before = await ws.next(isCoverage);
    // This run started after b crashed at 14: a gap from 14, open until this run records.
    expect(before.gaps).toEqual([GAP, { startUs: at(14), endUs: null, reason: 'recorder-crashed' }]);
    await ws.next((f) => f.type === 'controls' && (f.controls as { state: string }).state === 'tail');
    await s.recorder!.record('push', [['/sw/cpu', 20]], at(20));
    const after = await ws.next(isCoverage);
    expect(after.gaps).toEqual([GAP, { startUs: at(14), endUs: at(20), reason: 'recorder-crashed' }]);
  });

  it('are not sent by a server without a coverage journal', async () => {
    const dir = await tmpDir('tapedeck-cov-none-');
    const archive = await Archive.open(dir, { flushIntervalMs: 0 });
    archive.writer!.append([['/a', 1]], at(0));
    await archive.writer!.flush();
    const app = await buildServer({ archive });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(async () => {
      await app.close();
      await archive.close();
    });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const ws = await stream(url, { state: 'pause' });
    await ws.next((f) => f.type === 'controls');
    // A seek to the same place: its state and controls frames come after any coverage frame would have.
    ws.send({ type: 'control', set: { pos: 'beginning' } });
    await ws.next((f) => f.type === 'state');
    await ws.next((f) => f.type === 'controls');
    expect(ws.frames.filter(isCoverage)).toEqual([]);
  });
});

describe('coverageFrame', () => {
  const gap = (startUs: number) => ({ startUs, endUs: startUs + 1, reason: 'recorder-stopped' as const });
  const outage = (startUs: number) => ({ source: 's', startUs, endUs: null, reason: 'down' });

  it('keeps the newest items of both lists together, ties at the cut included up to the limit', () => {
    const f = coverageFrame({ gaps: [gap(1), gap(5), gap(9)], outages: [outage(2), outage(5), outage(7)] }, 3);
    expect(f.truncated).toBe(true);
    expect(f.gaps.map((g) => g.startUs)).toEqual([5, 9]);
    expect(f.outages.map((o) => o.startUs)).toEqual([7]);
    expect(f.gaps.length + f.outages.length).toBe(3);
  });

  it('passes a coverage within the limit through untouched, and keeps nothing at a limit of 0', () => {
    const c = { gaps: [gap(1)], outages: [outage(2)] };
    expect(coverageFrame(c, 2)).toEqual({ type: 'coverage', ...c, truncated: false });
    expect(coverageFrame(c, 0)).toEqual({ type: 'coverage', gaps: [], outages: [], truncated: true });
  });
});
