/**
 * One path recorded by several shards (ownership moved, globs overlapping during a
 * rebalance, a restarted shard recording again): merged /paths, /state, /history and
 * coverage answer as one archive holding the same input would (docs/cluster.md, "The tie
 * rule"). Differential and seeded (CLUSTER_OVERLAP_SEED, printed): a random input where
 * any shard may update any path, and shards often record batches of one timestamp; the
 * single archive records, at each timestamp, the shards' batches as one batch in shard-id
 * order (what a replay of the merged order applies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { Batch, Update } from '../protocol/value.js';
import { formatTs } from '../protocol/time.js';
import { api, startServer, TestWs, type TestServer } from './helpers/server.js';
import { frontNode } from './helpers/merge-cluster.js';
import { randomValue, rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { lastUpdateTimes } from '../server/cluster/merge-update-times.js';
import { SERVER_LIMITS } from '../server/limits.js';

const IDS = ['a', 'b', 'c'];
// Reserved glob characters and a prototype key: a shard must still find these paths.
const PATHS = ['/o/p0', '/o/p1', '/o/p2', '/o/p3', '/o/deep/p4', '/o/deep/p5', '/o/w[1]?{x}*', '/__proto__', '/o/rare', '/o/once'];
const T0 = 1_760_000_000_000_000;

interface Input {
  parts: Batch[][];
  single: Batch[];
  times: number[];
}

/**
 * More timestamps than a shard steps back per round (clusterUpdateTimesStepBatches), so a
 * path updated once at the start is found several rounds back.
 */
function overlapInput(seed: number): Input {
  const r = rng(seed);
  const parts: Batch[][] = IDS.map(() => []);
  const single: Batch[] = [];
  const times: number[] = [];
  let ts = T0;
  const n = SERVER_LIMITS.clusterUpdateTimesStepBatches * 3;
  for (let k = 0; k < n; k++) {
    ts += 1 + Math.floor(r() * 3);
    times.push(ts);
    // One to three shards record at this time; a third of the times more than one (ties).
    const who = IDS.map((_, i) => i).filter(() => r() < 0.4);
    if (who.length === 0) who.push(Math.floor(r() * IDS.length));
    const joined: Update[] = [];
    for (const i of who) {
      const updates: Update[] = [];
      const m = 1 + Math.floor(r() * 3);
      for (let u = 0; u < m; u++) {
        // `/o/once` only in the first batch; `/o/rare` seldom; the rest at random.
        const p = k === 0 && u === 0 ? '/o/once' : r() < 0.01 ? '/o/rare' : (PATHS[Math.floor(r() * 8)] as string);
        updates.push([p, r() < 0.7 ? Math.round(r() * 1000) : randomValue(r)]);
        // Now and then the same path twice in one batch (both kept, the last wins).
        if (r() < 0.05) updates.push([p, Math.round(r() * 1000)]);
      }
      (parts[i] as Batch[]).push({ ts, updates });
      joined.push(...updates);
    }
    single.push({ ts, updates: joined });
  }
  return { parts, single, times };
}

let input: Input;
let single: TestServer;
let shards: TestServer[] = [];
let front: TestServer;
let front2: TestServer;

beforeAll(async () => {
  const seed = scheduleSeed('CLUSTER_OVERLAP_SEED', 'cluster overlap');
  input = overlapInput(seed);
  single = await startServer(input.single);
  shards = await Promise.all(input.parts.map((p) => startServer(p)));
  // Two fronts listing the shards in different orders: the rule is the ids', not the list's.
  const listed = IDS.map((id, i) => ({ id, url: (shards[i] as TestServer).url }));
  const r = rng(seed + 1);
  const shuffled = [...listed].sort(() => r() - 0.5);
  front = await frontNode([...listed].reverse());
  front2 = await frontNode(shuffled);
}, 60_000);

afterAll(async () => {
  await front?.close();
  await front2?.close();
  await Promise.all(shards.map((s) => s.close()));
  await single?.close();
});

const at = (us: number): string => encodeURIComponent(formatTs(us));

async function body(base: string, path: string): Promise<string> {
  const res = await fetch(base + path);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer()).toString('latin1');
}

/**
 * The merged NDJSON's lines joined at ties (`joined`) against the single archive's: the same
 * bytes, except a tie where several shards updated one path. There the joined text names the
 * path once per shard, and the single archive's batch names it once, with its last update at
 * its first place (docs/recording.md): what JSON.parse reads from the joined text, in the
 * same key order.
 */
function expectJoinedLines(joined: string, singleText: string): void {
  const a = joined.split('\n');
  const b = singleText.split('\n');
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const [x, y] = [JSON.parse(a[i] as string) as { updates: object }, JSON.parse(b[i] as string) as { updates: object }];
    expect(x, `line ${i}`).toEqual(y);
    expect(Object.keys(x.updates), `line ${i}`).toEqual(Object.keys(y.updates));
  }
}

/** NDJSON lines of equal time (one per shard) joined as one batch's line, as the single archive writes it. */
function joinTies(ndjson: string): string {
  const out: string[] = [];
  let last: { ts: string; line: string } | undefined;
  for (const line of ndjson.split('\n').filter((l) => l !== '')) {
    const ts = /^\{"ts":(\d+),/.exec(line)?.[1] as string;
    const updates = line.slice(line.indexOf('"updates":{') + 11, -2);
    if (last && last.ts === ts) {
      const open = last.line.slice(0, -2);
      last.line = open.endsWith('{') || updates === '' ? `${open}${updates}}}` : `${open},${updates}}}`;
      out[out.length - 1] = last.line;
    } else {
      last = { ts, line };
      out.push(line);
    }
  }
  return out.map((l) => `${l}\n`).join('');
}

describe('a path recorded by several shards', () => {
  it('lists each path once, as the single archive does', async () => {
    const m = await api(front.url, 'GET', '/api/v1/paths');
    const s = await api(single.url, 'GET', '/api/v1/paths');
    expect(m.body.paths).toEqual([...s.body.paths].sort());
    expect(m.body.count).toBe(s.body.count);
  });

  it('answers the latest state with each path\'s newest value, ties to the later shard', async () => {
    const m = await api(front.url, 'GET', '/api/v1/state');
    const s = await api(single.url, 'GET', '/api/v1/state');
    expect(m.body.partial).toBeUndefined();
    expect(m.body.values).toEqual(s.body.values);
    expect(m.body.ts).toBe(s.body.ts);
  });

  it('answers the state at any time as the single archive does', async () => {
    const r = rng(input.times.length);
    const picks = [input.times[0] as number, input.times[input.times.length - 1] as number, ...Array.from({ length: 40 }, () => input.times[Math.floor(r() * input.times.length)] as number)];
    for (const t of picks) {
      for (const us of [t - 1, t, t + 1]) {
        const q = `/api/v1/state?at=${at(us)}`;
        const [m, m2, s] = await Promise.all([api(front.url, 'GET', q), api(front2.url, 'GET', q), api(single.url, 'GET', q)]);
        expect(m.body.values, formatTs(us)).toEqual(s.body.values);
        expect(m2.body.values, formatTs(us)).toEqual(s.body.values);
        expect(m.body.ts).toBe(s.body.ts);
      }
    }
    // Globs that select some of the shared paths only.
    const g = `/api/v1/state?at=${at(input.times[900] as number)}&glob=/o/deep/**&glob=/o/once`;
    expect((await api(front.url, 'GET', g)).body.values).toEqual((await api(single.url, 'GET', g)).body.values);
  });

  it('gives a merged session the single archive\'s state frame at any position it seeks to', async () => {
    const r = rng(input.times.length + 7);
    const picks = Array.from({ length: 12 }, () => input.times[Math.floor(r() * input.times.length)] as number);
    const frames = async (base: string): Promise<unknown[]> => {
      const c = await api(base, 'POST', '/api/v1/sessions', { pos: formatTs(picks[0] as number), state: 'pause' });
      expect(c.status).toBe(201);
      const ws = await TestWs.open(`${base}${c.body.stream}`);
      try {
        const out: unknown[] = [];
        const st = await ws.next((f) => f.type === 'state');
        out.push([st.ts, st.values]);
        // Seeks by time only: a step counts batches, and at a tied time each shard's is its own.
        for (const pos of picks.slice(1).flatMap((t) => [formatTs(t), formatTs(t - 1)])) {
          ws.send({ type: 'control', set: { pos } });
          const f = await ws.next((x) => x.type === 'state');
          out.push([pos, f.ts, f.values]);
        }
        return out;
      } finally {
        ws.close();
      }
    };
    const [m, s] = [await frames(front.url), await frames(single.url)];
    expect(m).toEqual(s);
  });

  it('streams history in the single archive\'s order: CSV and Parquet byte for byte, NDJSON one line per shard at a tie', async () => {
    for (const range of ['', `&from=${at(input.times[300] as number)}&to=${at(input.times[1200] as number)}`]) {
      expect(await body(front.url, `/api/v1/history?format=csv${range}`)).toBe(await body(single.url, `/api/v1/history?format=csv${range}`));
      expect(await body(front.url, `/api/v1/history?format=parquet${range}`)).toBe(await body(single.url, `/api/v1/history?format=parquet${range}`));
      const m = await body(front.url, `/api/v1/history?format=ndjson${range}`);
      expectJoinedLines(joinTies(m), await body(single.url, `/api/v1/history?format=ndjson${range}`));
      expect(await body(front2.url, `/api/v1/history?format=ndjson${range}`)).toBe(m);
    }
  });

  it('answers coverage the same whatever order the directory lists the shards in', async () => {
    const a = JSON.parse(await body(front.url, '/api/v1/coverage')) as { shards: Array<{ shard: string }> };
    expect(a.shards.map((s) => s.shard)).toEqual(IDS);
    expect(JSON.parse(await body(front2.url, '/api/v1/coverage'))).toEqual(a);
  });

  it('finds a shard\'s last update of each path, rounds back, at or before a time', async () => {
    // The shard that recorded /o/once first holds more batches than a round steps back.
    const k = input.parts.findIndex((p) => p[0]?.ts === input.times[0]);
    const b = shards[k] as TestServer;
    const part = input.parts[k] as Batch[];
    expect(part.length).toBeGreaterThan(SERVER_LIMITS.clusterUpdateTimesStepBatches);
    const ask = [...PATHS, '/never'];
    for (const t of [null, input.times[50] as number, input.times[1500] as number, T0, part[0]!.ts]) {
      const expected = ask.map((p) => {
        let last: number | null = null;
        for (const x of part) if ((t === null || x.ts <= t) && x.updates.some(([q]) => q === p)) last = x.ts;
        return last;
      });
      expect(await lastUpdateTimes(b.archive, ask, t)).toEqual(expected);
      const res = await api(b.url, 'POST', '/api/v1/shard/updated', { at_us: t, paths: ask });
      expect(res.body.times).toEqual(expected);
    }
  });
});

describe('hostile questions and answers about update times', () => {
  it('refuses a malformed or oversize question with 400', async () => {
    const b = shards[0] as TestServer;
    const many = Array.from({ length: SERVER_LIMITS.clusterUpdateTimesPathsMax + 1 }, (_, i) => `/p${i}`);
    for (const q of [{ at_us: null, paths: many }, { at_us: -1, paths: ['/a'] }, { at_us: null, paths: '/a' }, { paths: ['/a'] }, { at_us: null, paths: [''] }, { at_us: 1.5, paths: ['/a'] }]) {
      const res = await api(b.url, 'POST', '/api/v1/shard/updated', q);
      expect(res.status, JSON.stringify(q).slice(0, 80)).toBe(400);
    }
  });

  it('names missing a shard whose update times are malformed, and keeps the others\' values', async () => {
    // A shard that answers its state, then nonsense about when it updated the shared path.
    const fake: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      res.setHeader('content-type', 'application/json');
      if (url.pathname === '/api/v1/shard') return res.end(JSON.stringify({ horizon_us: T0, recording: false }));
      if (url.pathname === '/api/v1/state') return res.end(JSON.stringify({ ts: T0, time: formatTs(T0), values: { '/o/p0': 'fake', '/o/only-fake': 1 } }));
      res.end(JSON.stringify({ times: ['soon'] }));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const f = await frontNode([{ id: 'a', url: (shards[0] as TestServer).url }, { id: 'z', url: `http://127.0.0.1:${(fake.address() as { port: number }).port}` }]);
    try {
      const m = await api(f.url, 'GET', '/api/v1/state');
      expect(m.body.partial).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 'z', reason: 'malformed answer to /api/v1/shard/updated' }] });
      expect(m.body.values).toEqual((await api((shards[0] as TestServer).url, 'GET', '/api/v1/state?scope=local')).body.values);
    } finally {
      await f.close();
      await new Promise((resolve) => fake.close(resolve));
    }
  });

  it('names missing a shard whose paths, state or coverage answer has the wrong shape, never a 500', async () => {
    const bad: Record<string, unknown> = { '/api/v1/paths': { paths: null }, '/api/v1/state': { ts: 1, values: null }, '/api/v1/coverage': { horizon_us: 1, runs: 5, gaps: [], outages: [] } };
    const fake: Server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(path === '/api/v1/shard' ? { horizon_us: T0, recording: false } : bad[path] ?? {}));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const f = await frontNode([{ id: 'a', url: (shards[0] as TestServer).url }, { id: 'z', url: `http://127.0.0.1:${(fake.address() as { port: number }).port}` }]);
    try {
      for (const q of Object.keys(bad)) {
        const m = await api(f.url, 'GET', q);
        expect(m.status, q).toBe(200);
        expect(m.body.partial, q).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 'z', reason: `malformed answer to ${q}` }] });
      }
    } finally {
      await f.close();
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
