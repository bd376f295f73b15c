/**
 * Coverage frames of merged sessions (docs/cluster.md, "Merged sessions"): three recording
 * shards, each a real server whose archive has a coverage journal of its own (a crashed run,
 * a cleanly stopped one, source outages), and a front node over a StaticDirectory. A merged
 * session's coverage frame, after each state frame, is the union of what the shards' own
 * `GET /api/v1/coverage?scope=local` answer for the session's range, each gap and outage
 * naming its shard, in JSON and msgpack; a tailing session gets a new coverage frame when a
 * shard's source goes down; a shard that stops answering keeps its last known holes.
 */
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { CoverageEvent } from '../protocol/coverage.js';
import { formatTs } from '../protocol/time.js';
import type { Batch } from '../protocol/value.js';
import { buildServer } from '../server/app.js';
import { shardCoverage } from '../server/cluster/merged-session-coverage.js';
import { MergedSessions } from '../server/cluster/merged-sessions.js';
import { StaticDirectory } from '../server/cluster/static-directory.js';
import { PLAYBACK_DEFAULTS } from '../server/sessions/manager.js';
import { CoverageLog } from '../server/coverage.js';
import { Recorder } from '../server/recorder.js';
import type { Source } from '../server/sources/source.js';
import { Archive } from '../storage/index.js';
import { JournalWriter } from '../storage/coverage-journal.js';
import { freePort } from './helpers/cluster.js';
import { frontNode, splitWorkload } from './helpers/merge-cluster.js';
import { api, TestWs, type Frame, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { waitFor } from './helpers/until.js';

interface CovShard extends TestServer {
  /** A source whose polls the shard's coverage journal follows: emit a failed poll for an outage. */
  source: EventEmitter;
}

/** A recording shard over `batches`, its journal holding `events` from earlier runs. */
async function coverageShard(batches: Batch[], events: CoverageEvent[]): Promise<CovShard> {
  const dir = await tmpDir('tapedeck-cov-shard-');
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  for (const b of batches) archive.writer!.append(b.updates, b.ts);
  await archive.writer!.flush();
  const j = new JournalWriter(dir, false);
  for (const e of events) await j.append(e);
  const recorder = await Recorder.open(archive);
  const source = Object.assign(new EventEmitter(), { name: 'poller' });
  const coverage = await CoverageLog.open(archive, pino({ level: 'silent' }), { recorder, sources: [source as unknown as Source] });
  const app = await buildServer({ archive, recorder, coverage });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  return {
    app, archive, source,
    url: `http://127.0.0.1:${addr.port}`,
    async close() {
      await app.close();
      await archive.close();
    },
  };
}

type Item = { shard: string; startUs: number; [k: string]: unknown };

/** What the shards themselves answer for [start, end], as a merged coverage frame must carry it. */
async function expectedFromShards(shards: ReadonlyArray<{ id: string; url: string }>, startUs: number, endUs: number): Promise<{ gaps: Item[]; outages: Item[] }> {
  const gaps: Item[] = [];
  const outages: Item[] = [];
  for (const s of shards) {
    const c = await api(s.url, 'GET', `/api/v1/coverage?scope=local&start=${encodeURIComponent(formatTs(startUs))}&end=${encodeURIComponent(formatTs(endUs))}`);
    expect(c.status).toBe(200);
    for (const g of c.body.gaps) gaps.push({ shard: s.id, startUs: g.start_us, endUs: g.end_us, reason: g.reason });
    for (const o of c.body.outages) outages.push({ shard: s.id, source: o.source, startUs: o.start_us, endUs: o.end_us, reason: o.reason });
  }
  const order = (a: Item, b: Item): number => a.startUs - b.startUs || (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0);
  return { gaps: gaps.sort(order), outages: outages.sort(order) };
}

const w = splitWorkload(16, 60);
const ts = (i: number): number => (w.all[i] as Batch).ts;
const run = (r: string): { run: string } => ({ run: r });
const shardEvents: CoverageEvent[][] = [
  // s0: a run that crashed after batch 40, the next one's first batch at 60: a gap.
  [
    { kind: 'run-start', ...run('a1'), atUs: ts(0) - 10, lastTsUs: null },
    { kind: 'run-first-batch', ...run('a1'), atUs: ts(0), tsUs: ts(0) },
    { kind: 'run-start', ...run('a2'), atUs: ts(60), lastTsUs: ts(40) },
    { kind: 'run-first-batch', ...run('a2'), atUs: ts(60), tsUs: ts(60) },
    { kind: 'run-stop', ...run('a2'), atUs: ts(179), lastTsUs: ts(179) },
  ],
  // s1: a source down from batch 20 to 30, and one still down since batch 150.
  [
    { kind: 'run-start', ...run('b1'), atUs: ts(0) - 10, lastTsUs: null },
    { kind: 'run-first-batch', ...run('b1'), atUs: ts(1), tsUs: ts(1) },
    { kind: 'source-down', ...run('b1'), atUs: ts(20), source: 'upstream', reason: 'HTTP 503' },
    { kind: 'source-up', ...run('b1'), atUs: ts(30), source: 'upstream' },
    { kind: 'source-down', ...run('b1'), atUs: ts(150), source: 'other', reason: 'ECONNREFUSED' },
    { kind: 'run-stop', ...run('b1'), atUs: ts(179), lastTsUs: ts(179) },
  ],
  // s2: stopped cleanly at batch 90, started again at 100: a gap (recorder-stopped).
  [
    { kind: 'run-start', ...run('c1'), atUs: ts(0) - 10, lastTsUs: null },
    { kind: 'run-first-batch', ...run('c1'), atUs: ts(2), tsUs: ts(2) },
    { kind: 'run-stop', ...run('c1'), atUs: ts(90), lastTsUs: ts(90) },
    { kind: 'run-start', ...run('c2'), atUs: ts(100), lastTsUs: ts(90) },
    { kind: 'run-first-batch', ...run('c2'), atUs: ts(100), tsUs: ts(100) },
    { kind: 'run-stop', ...run('c2'), atUs: ts(179), lastTsUs: ts(179) },
  ],
];

let shards: CovShard[] = [];
let ids: Array<{ id: string; url: string }> = [];
let front: TestServer;
const sockets: TestWs[] = [];

beforeAll(async () => {
  shards = await Promise.all(w.parts.map((p, k) => coverageShard(p, shardEvents[k] as CoverageEvent[])));
  ids = shards.map((s, k) => ({ id: `s${k}`, url: s.url }));
  front = await frontNode(ids);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await front.close();
  for (const s of shards) await s.close();
});

async function open(controls: object, format: 'json' | 'msgpack' = 'json'): Promise<TestWs> {
  const c = await api(front.url, 'POST', '/api/v1/sessions', controls);
  expect(c.status).toBe(201);
  const ws = await TestWs.open(`${front.url}${c.body.stream}`, format);
  sockets.push(ws);
  return ws;
}

/** The coverage frame that follows the next state frame. */
async function coverageAfterState(ws: TestWs): Promise<Frame> {
  await ws.next((f) => f.type === 'state');
  return ws.next((f) => f.type === 'coverage' || f.type === 'state');
}

describe('coverage frames of merged sessions', () => {
  for (const format of ['json', 'msgpack'] as const) {
    it(`carry the union of the shards' coverage, each item naming its shard (${format})`, async () => {
      const ws = await open({ state: 'pause' }, format);
      const f = await coverageAfterState(ws);
      expect(f.type).toBe('coverage');
      const want = await expectedFromShards(ids, 0, Number.MAX_SAFE_INTEGER);
      // Every shard contributes (the fixtures give each a hole), and the union is exact.
      expect(new Set([...want.gaps, ...want.outages].map((x) => x.shard))).toEqual(new Set(['s0', 's1', 's2']));
      expect({ gaps: f.gaps, outages: f.outages, truncated: f.truncated }).toEqual({ ...want, truncated: false });
    });
  }

  it('only what touches the session\'s [start, end]; again after a seek', async () => {
    const start = ts(45);
    const end = ts(95);
    const ws = await open({ state: 'pause', start: formatTs(start), end: formatTs(end) });
    const f = await coverageAfterState(ws);
    const want = await expectedFromShards(ids, start, end);
    expect(want.gaps.length + want.outages.length).toBeGreaterThan(0);
    expect({ gaps: f.gaps, outages: f.outages }).toEqual(want);
    // The s1 outage of batches 20..30 is outside the range.
    expect((f.outages as Item[]).some((o) => o.shard === 's1' && o.startUs === ts(20))).toBe(false);
    ws.send({ type: 'control', set: { pos: formatTs(ts(70)) } });
    const again = await coverageAfterState(ws);
    expect({ gaps: again.gaps, outages: again.outages }).toEqual(want);
  });

  it('a tailing session gets a new coverage frame when a shard\'s source goes down, naming the shard', async () => {
    const ws = await open({ state: 'tail' });
    await coverageAfterState(ws);
    const seen = ws.frames.length;
    (shards[2] as CovShard).source.emit('poll', { ok: false, error: new Error('upstream gone') });
    const f = await waitFor(async () => ws.frames.slice(seen).find((x) => x.type === 'coverage' && (x.outages as Item[]).some((o) => o.shard === 's2' && o.reason === 'upstream gone')), 10_000, 'a coverage frame with s2\'s outage');
    const want = await expectedFromShards(ids, 0, Number.MAX_SAFE_INTEGER);
    expect({ gaps: f.gaps, outages: f.outages }).toEqual(want);
  });

  it('a shard that stops answering keeps its last known holes in the frames', async () => {
    const ws = await open({ state: 'pause' });
    const before = await coverageAfterState(ws);
    expect((before.gaps as Item[]).some((g) => g.shard === 's0')).toBe(true);
    // s0 goes away: a session made now (which asks the shards again) still has its gap, and
    // says s0 is missing.
    await (shards[0] as CovShard).app.close();
    const ws2 = await open({ state: 'pause' });
    const after = await coverageAfterState(ws2);
    expect(after.gaps).toEqual(before.gaps);
    await ws2.next((f) => f.type === 'info' && f.code === 'TPD_SHARDS_MISSING' && String(f.message).includes('s0'));
    ws.send({ type: 'control', set: { pos: formatTs(ts(10)) } });
    expect((await coverageAfterState(ws)).gaps).toEqual(before.gaps);
  });
});

describe('a shard missing before the client attaches', () => {
  it('is told to the client when it attaches (the loss found while the session was made went to nobody)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const m = new MergedSessions(new StaticDirectory('front', [{ id: 's1', url: (shards[1] as CovShard).url }, { id: 'zz', url: dead }]), PLAYBACK_DEFAULTS, 0, pino({ level: 'silent' }));
    try {
      const s = await m.create('client', { state: 'pause' }, []);
      const sent: Frame[] = [];
      m.attach(s, {
        format: 'json',
        coalesce: false,
        send: (d) => sent.push(JSON.parse(String(d)) as Frame),
        bufferedBytes: () => 0,
        drained: () => Promise.resolve(),
        close: () => undefined,
      });
      const info = await waitFor(async () => sent.find((f) => f.type === 'info' && f.code === 'TPD_SHARDS_MISSING'), 10_000, 'an info frame naming the missing shard');
      expect(String(info.message)).toContain('shard zz is missing');
      const cov = await waitFor(async () => sent.find((f) => f.type === 'coverage'), 10_000, 'the coverage frame');
      expect((cov.outages as Item[]).every((o) => o.shard === 's1')).toBe(true);
    } finally {
      await m.close();
    }
  });
});

describe('more holes than coverageItemsMax', () => {
  it('the newest are kept over all shards, truncated: true', async () => {
    const two = [{ id: 's1', url: (shards[1] as CovShard).url }, { id: 's2', url: (shards[2] as CovShard).url }];
    const m = new MergedSessions(new StaticDirectory('front', two), { ...PLAYBACK_DEFAULTS, coverageItemsMax: 2 }, 0, pino({ level: 'silent' }));
    try {
      const s = await m.create('client', { state: 'pause' }, []);
      const sent: Frame[] = [];
      m.attach(s, { format: 'json', coalesce: false, send: (d) => sent.push(JSON.parse(String(d)) as Frame), bufferedBytes: () => 0, drained: () => Promise.resolve(), close: () => undefined });
      const cov = await waitFor(async () => sent.find((f) => f.type === 'coverage'), 10_000, 'the coverage frame');
      const all = await expectedFromShards(two, 0, Number.MAX_SAFE_INTEGER);
      expect(all.gaps.length + all.outages.length).toBeGreaterThan(2);
      const newest = [...all.gaps, ...all.outages].sort((a, b) => b.startUs - a.startUs).slice(0, 2);
      expect(cov.truncated).toBe(true);
      expect(new Set([...(cov.gaps as Item[]), ...(cov.outages as Item[])])).toEqual(new Set(newest));
    } finally {
      await m.close();
    }
  });
});

describe('a shard\'s coverage answer, hostile or malformed', () => {
  it('keeps the well-formed items only, each naming the shard', () => {
    const got = shardCoverage('sx', {
      gaps: [
        { start_us: 10, end_us: null, reason: 'recorder-crashed' },
        { start_us: -1, end_us: 5, reason: 'recorder-stopped' },
        { start_us: 1.5, end_us: 5, reason: 'recorder-stopped' },
        { start_us: '10', end_us: 20, reason: 'recorder-stopped' },
        { start_us: 10, end_us: 'later', reason: 'recorder-stopped' },
        { start_us: 10, end_us: 20 },
        null as unknown as { start_us: number },
        { start_us: 2 ** 60, end_us: 20, reason: 'recorder-stopped' },
        { start_us: 30, end_us: 40, reason: 'recorder-stopped' },
      ],
      outages: [
        { source: 'up', start_us: 5, end_us: 6, reason: 'HTTP 503' },
        { source: 7, start_us: 5, end_us: 6, reason: 'x' },
        { source: 'up', start_us: 5, end_us: undefined, reason: 'x' },
        { source: 'up', start_us: 5, end_us: null, reason: 'down' },
      ],
    });
    expect(got).toEqual({
      gaps: [{ shard: 'sx', startUs: 10, endUs: null, reason: 'recorder-crashed' }, { shard: 'sx', startUs: 30, endUs: 40, reason: 'recorder-stopped' }],
      outages: [{ shard: 'sx', source: 'up', startUs: 5, endUs: 6, reason: 'HTTP 503' }, { shard: 'sx', source: 'up', startUs: 5, endUs: null, reason: 'down' }],
    });
    expect(shardCoverage('sx', {})).toEqual({ gaps: [], outages: [] });
    expect(shardCoverage('sx', { gaps: 'nope' as unknown as [], outages: 3 as unknown as [] })).toEqual({ gaps: [], outages: [] });
  });
});
