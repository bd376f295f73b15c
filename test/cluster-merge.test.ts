/**
 * Merged reads over a cluster (docs/cluster.md, "Merged reads"): three real shard servers, each with
 * its own archive holding part of a known input, and a front node whose StaticDirectory
 * lists them. Every merged answer is checked against a single archive that recorded the
 * whole input (differential), and sessions batch for batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../protocol/value.js';
import { formatTs } from '../protocol/time.js';
import { startServer, TestWs, api, type TestServer, type Frame } from './helpers/server.js';
import { frontNode, splitWorkload } from './helpers/merge-cluster.js';

let single: TestServer;
let shards: TestServer[] = [];
let front: TestServer;
let all: Batch[];
const sockets: TestWs[] = [];

beforeAll(async () => {
  const w = splitWorkload(7, 150);
  all = w.all;
  single = await startServer(w.all);
  shards = await Promise.all(w.parts.map((p) => startServer(p)));
  front = await frontNode(shards.map((s, i) => ({ id: `s${i}`, url: s.url })));
});

afterAll(async () => {
  for (const s of sockets.splice(0)) s.close();
  await front?.close();
  await Promise.all(shards.map((s) => s.close()));
  await single?.close();
});

async function text(base: string, path: string): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(base + path);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe('merged queries', () => {
  it('lists the union of the shards\' paths, sorted, as a single archive would', async () => {
    const m = await api(front.url, 'GET', '/api/v1/paths');
    const s = await api(single.url, 'GET', '/api/v1/paths');
    expect(m.status).toBe(200);
    expect(m.body.paths).toEqual([...s.body.paths].sort());
    expect(m.body.count).toBe(s.body.count);
    expect(m.body.partial).toBeUndefined();
    const g = await api(front.url, 'GET', '/api/v1/paths?glob=/s1/**');
    expect(g.body.paths.every((p: string) => p.startsWith('/s1/'))).toBe(true);
    expect(g.body.paths.length).toBeGreaterThan(0);
  });

  it('answers the state at any time as the single archive does', async () => {
    for (const b of [all[0], all[17], all[200], all[all.length - 1]] as Batch[]) {
      for (const at of [b.ts - 1, b.ts]) {
        const m = await api(front.url, 'GET', `/api/v1/state?at=${encodeURIComponent(formatTs(at))}`);
        const s = await api(single.url, 'GET', `/api/v1/state?at=${encodeURIComponent(formatTs(at))}`);
        expect(m.status).toBe(200);
        expect(m.body.values).toEqual(s.body.values);
        expect(m.body.ts).toBe(s.body.ts);
      }
    }
    const latest = await api(front.url, 'GET', '/api/v1/state');
    expect(latest.body.values).toEqual((await api(single.url, 'GET', '/api/v1/state')).body.values);
    expect(latest.body.ts).toBe(all[all.length - 1]!.ts);
  });

  it('streams history in NDJSON, CSV and Parquet identical to the single archive\'s', async () => {
    const from = encodeURIComponent(formatTs(all[10]!.ts));
    const to = encodeURIComponent(formatTs(all[300]!.ts));
    for (const format of ['ndjson', 'csv', 'parquet']) {
      const q = `/api/v1/history?format=${format}&from=${from}&to=${to}`;
      const m = await fetch(front.url + q);
      const s = await fetch(single.url + q);
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toBe(s.headers.get('content-type'));
      expect(Buffer.from(await m.arrayBuffer()).equals(Buffer.from(await s.arrayBuffer()))).toBe(true);
    }
    const lines = (await text(front.url, `/api/v1/history?from=${from}&to=${to}`)).body.trim().split('\n');
    expect(lines).toHaveLength(291);
  });

  it('states the merged horizon: the slowest shard\'s', async () => {
    const r = await text(front.url, '/api/v1/state');
    const slowest = Math.min(...shards.map((s) => s.archive.lastTs));
    expect(r.headers.get('tapedeck-horizon')).toBe(`${formatTs(slowest)} ${slowest}`);
    expect(JSON.parse(r.body).horizon).toBe(slowest);
  });

  it('answers scope=local for the node itself only, and never fans out again', async () => {
    const local = await api(front.url, 'GET', '/api/v1/paths?scope=local');
    expect(local.body.paths).toEqual([]);
    const shard = await api(shards[0]!.url, 'GET', '/api/v1/paths?scope=local');
    expect(shard.body.paths.every((p: string) => p.startsWith('/s0/'))).toBe(true);
  });

  it('refuses a bad glob or range with the same code as a single archive', async () => {
    for (const q of ['/api/v1/paths?glob=/a/**x', '/api/v1/state?glob=[', '/api/v1/history?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z']) {
      const m = await api(front.url, 'GET', q);
      const s = await api(single.url, 'GET', q);
      expect(m.status).toBe(s.status);
      expect(m.body.error.code).toBe(s.body.error.code);
    }
  });

  it('merges coverage per shard', async () => {
    const c = await api(front.url, 'GET', '/api/v1/coverage');
    expect(c.status).toBe(200);
    expect(c.body.shards.map((s: { shard: string }) => s.shard)).toEqual(['s0', 's1', 's2']);
    expect(c.body.horizon_us).toBe(Math.min(...shards.map((s) => s.archive.lastTs)));
  });
});

/** Frames until `end`, batches flattened, in one shape whatever the format. */
async function playToEnd(base: string, controls: object, format: 'json' | 'msgpack' = 'json'): Promise<{ state: Frame; batches: Batch[] }> {
  const c = await api(base, 'POST', '/api/v1/sessions', controls);
  expect(c.status).toBe(201);
  const ws = await TestWs.open(`${base}${c.body.stream}${format === 'msgpack' ? '' : ''}`, format);
  sockets.push(ws);
  const state = await ws.next((f) => f.type === 'state');
  const batches: Batch[] = [];
  for (;;) {
    const f = await ws.next((x) => x.type === 'batch' || x.type === 'batches' || x.type === 'end');
    if (f.type === 'end') break;
    if (f.type === 'batch') batches.push({ ts: f.ts as number, updates: f.updates as Batch['updates'] });
    else batches.push(...(f.batches as Batch[]));
  }
  ws.close();
  return { state, batches };
}

describe('merged sessions', () => {
  const end = (): string => formatTs(all[all.length - 1]!.ts + 1);

  it('replays the whole input batch for batch as the single archive does (JSON and msgpack)', async () => {
    for (const format of ['json', 'msgpack'] as const) {
      const controls = { speed: 'unlimited', end: end() };
      const m = await playToEnd(front.url, controls, format);
      const s = await playToEnd(single.url, controls, format);
      expect(m.batches).toHaveLength(all.length);
      expect(m.batches).toEqual(s.batches);
      expect(m.state.values).toEqual(s.state.values);
    }
  });

  it('seeks to a time, filters and steps as the single archive does', async () => {
    const cases: object[] = [
      { pos: formatTs(all[123]!.ts), speed: 'unlimited', end: end() },
      { pos: formatTs(all[123]!.ts - 1), speed: 'unlimited', end: end(), filter: ['/s2/**', '/s0/w1/dev-1/*'] },
      { start: formatTs(all[50]!.ts), end: formatTs(all[90]!.ts), speed: 'unlimited' },
    ];
    for (const controls of cases) {
      const m = await playToEnd(front.url, controls);
      const s = await playToEnd(single.url, controls);
      expect(m.state.values).toEqual(s.state.values);
      expect(m.state.ts).toEqual(s.state.ts);
      expect(m.batches).toEqual(s.batches);
    }
  });

  it('steps back and forward by batches across shards as the single archive does', async () => {
    const run = async (base: string): Promise<unknown[]> => {
      const c = await api(base, 'POST', '/api/v1/sessions', { pos: formatTs(all[200]!.ts), state: 'pause', end: end() });
      const ws = await TestWs.open(`${base}${c.body.stream}`);
      sockets.push(ws);
      const out: unknown[] = [];
      out.push((await ws.next((f) => f.type === 'state')).values);
      for (const pos of ['-7', '+3', '-1', '-250', '+2']) {
        ws.send({ type: 'control', set: { pos } });
        const st = await ws.next((f) => f.type === 'state');
        const ctl = await ws.next((f) => f.type === 'controls' && (f.controls as { state: string }).state === 'pause');
        out.push([pos, st.ts, st.values, (ctl.controls as { posUs: number }).posUs]);
      }
      ws.send({ type: 'control', set: { speed: 'unlimited', state: 'play' } });
      out.push(await ws.batches(5));
      ws.close();
      return out;
    };
    expect(await run(front.url)).toEqual(await run(single.url));
  });
});
