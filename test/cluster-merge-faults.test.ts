/**
 * Merged reads when shards tie, die, hang, come back, and when clients leave
 * (docs/cluster.md, "Merged reads"): the tie rule, the partial marker, a lost shard mid-session, the
 * slowest shard's horizon in tail, and every state of a session freeing its shard streams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Batch } from '../protocol/value.js';
import { formatTs } from '../protocol/time.js';
import { startServer, TestWs, api, type TestServer, type Frame } from './helpers/server.js';
import { ChildShard, frontNode, inFlight, recordingShard, splitWorkload } from './helpers/merge-cluster.js';
import { until } from './helpers/until.js';
import { tmpDir } from './helpers/tmp.js';
import { wallClockUs } from '../storage/index.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function served(batches: Batch[]): Promise<TestServer> {
  const s = await startServer(batches);
  closers.push(() => s.close());
  return s;
}

async function front(shards: Array<{ url: string }>, ids = shards.map((_, i) => `s${i}`)): Promise<TestServer> {
  const f = await frontNode(shards.map((s, i) => ({ id: ids[i] as string, url: s.url })));
  closers.push(() => f.close());
  return f;
}

async function ws(base: string, stream: string): Promise<TestWs> {
  const w = await TestWs.open(base + stream);
  closers.push(() => w.close());
  return w;
}

function flat(f: Frame): Batch[] {
  return f.type === 'batch' ? [{ ts: f.ts as number, updates: f.updates as Batch['updates'] }] : (f.batches as Batch[]);
}

/** Batches until `end`, and the info frames seen meanwhile. */
async function drain(w: TestWs): Promise<Batch[]> {
  const out: Batch[] = [];
  for (;;) {
    const f = await w.next((x) => x.type === 'batch' || x.type === 'batches' || x.type === 'end');
    if (f.type === 'end') return out;
    out.push(...flat(f));
  }
}

describe('the tie rule', () => {
  it('orders batches of equal time by shard id, and state by the later shard, at every position', async () => {
    const T = 1_760_000_000_000_000;
    const a = await served([{ ts: T - 5, updates: [['/x', 0]] }, { ts: T, updates: [['/x', 1], ['/a', 'a']] }]);
    const b = await served([{ ts: T, updates: [['/x', 2], ['/b', 'b']] }]);
    const c = await served([{ ts: T, updates: [['/c', 'c']] }, { ts: T + 5, updates: [['/x', 3]] }]);
    // Listed out of id order: the rule is the id's, not the list's.
    const f = await front([c, a, b], ['c', 'a', 'b']);
    const h = (await (await fetch(`${f.url}/api/v1/history`)).text()).trim().split('\n').map((l) => JSON.parse(l) as { ts: number; updates: object });
    expect(h.map((l) => [l.ts - T, l.updates])).toEqual([[-5, { '/x': 0 }], [0, { '/x': 1, '/a': 'a' }], [0, { '/x': 2, '/b': 'b' }], [0, { '/c': 'c' }], [5, { '/x': 3 }]]);
    const st = await api(f.url, 'GET', `/api/v1/state?at=${encodeURIComponent(formatTs(T))}`);
    expect(st.body.values).toEqual({ '/x': 2, '/a': 'a', '/b': 'b', '/c': 'c' });

    const s = await api(f.url, 'POST', '/api/v1/sessions', { state: 'pause', end: formatTs(T + 10) });
    const w = await ws(f.url, s.body.stream);
    await w.next((x) => x.type === 'state');
    const stateAfter = async (pos: string): Promise<unknown> => {
      w.send({ type: 'control', set: { pos } });
      return (await w.next((x) => x.type === 'state')).values;
    };
    expect(await stateAfter('+3')).toEqual({ '/x': 2, '/a': 'a', '/b': 'b', '/c': null }); // after a's and b's batches at T
    expect(await stateAfter('-1')).toEqual({ '/x': 1, '/a': 'a', '/b': null, '/c': null }); // between a and b at T
    w.send({ type: 'control', set: { speed: 'unlimited', state: 'play' } });
    expect((await drain(w)).map((x) => x.updates)).toEqual([[['/x', 2], ['/b', 'b']], [['/c', 'c']], [['/x', 3]]]);
  });
});

describe('missing shards', () => {
  it('answers every merged read with the partial marker naming a shard killed -9, and again in full once it is back', async () => {
    const w = splitWorkload(3, 40);
    const children = await Promise.all(w.parts.map((p) => ChildShard.start(p)));
    closers.push(() => Promise.all(children.map((c) => c.kill9())));
    const f = await front(children);
    const full = await api(f.url, 'GET', '/api/v1/paths');
    expect(full.body.partial).toBeUndefined();
    await children[1]!.kill9();
    for (const q of ['/api/v1/paths', '/api/v1/state', `/api/v1/state?at=${encodeURIComponent(formatTs(w.all[30]!.ts))}`, '/api/v1/coverage']) {
      const r = await fetch(f.url + q);
      expect(r.status, q).toBe(200);
      expect(r.headers.get('tapedeck-partial'), q).toMatch(/^TPD_SHARDS_MISSING: s1 \(/);
      const body = (await r.json()) as { partial: { code: string; missing: Array<{ shard: string; reason: string }> } };
      expect(body.partial.code).toBe('TPD_SHARDS_MISSING');
      expect(body.partial.missing.map((m) => m.shard)).toEqual(['s1']);
    }
    const h = await fetch(`${f.url}/api/v1/history`);
    expect(h.headers.get('tapedeck-partial')).toMatch(/s1/);
    const lines = (await h.text()).trim().split('\n');
    // The shards that answered, then the partial record naming the one that did not.
    expect(lines).toHaveLength(w.parts[0]!.length + w.parts[2]!.length + 1);
    expect(JSON.parse(lines.pop() as string)).toEqual({ partial: { code: 'TPD_SHARDS_MISSING', missing: [{ shard: 's1', reason: expect.any(String) }] } });
    // Parquet names the missing shard in the file's footer metadata, as pyarrow reads it.
    const pq = await fetch(`${f.url}/api/v1/history?format=parquet`);
    expect(pq.headers.get('tapedeck-partial')).toMatch(/s1/);
    const file = join(await tmpDir('merged-parquet'), 'partial.parquet');
    await writeFile(file, Buffer.from(await pq.arrayBuffer()));
    const py = "import json,sys,pyarrow.parquet as pq; m=pq.read_metadata(sys.argv[1]); print(json.dumps({'rows': m.num_rows, 'meta': {k.decode(): v.decode() for k, v in (m.metadata or {}).items()}}))";
    const read = JSON.parse((await promisify(execFile)('python3', ['-c', py, file])).stdout) as { rows: number; meta: Record<string, string> };
    expect(read.rows).toBe([...w.parts[0]!, ...w.parts[2]!].reduce((n, b) => n + b.updates.length, 0));
    expect(JSON.parse(read.meta['tapedeck.partial'] as string)).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 's1', reason: expect.any(String) }] });
    const paths = (await api(f.url, 'GET', '/api/v1/paths')).body.paths as string[];
    expect(paths.some((p) => p.startsWith('/s1/'))).toBe(false);

    await children[1]!.run(children[1]!.port);
    await until(async () => (await api(f.url, 'GET', '/api/v1/paths')).body.partial === undefined, 10_000, 'the shard back in merged reads');
    expect((await api(f.url, 'GET', '/api/v1/paths')).body.paths).toEqual(full.body.paths);
  });

  it('names a hung shard (SIGSTOP) missing once its time is up, without waiting on it', async () => {
    const w = splitWorkload(4, 20);
    const children = await Promise.all(w.parts.map((p) => ChildShard.start(p)));
    closers.push(() => Promise.all(children.map((c) => { c.proc?.kill('SIGCONT'); return c.kill9(); })));
    const f = await front(children);
    children[2]!.proc!.kill('SIGSTOP');
    const r = await api(f.url, 'GET', '/api/v1/state');
    expect(r.status).toBe(200);
    expect(r.body.partial.missing).toEqual([{ shard: 's2', reason: expect.any(String) }]);
    expect(Object.keys(r.body.values).some((p) => p.startsWith('/s2/'))).toBe(false);
    expect(Object.keys(r.body.values).some((p) => p.startsWith('/s0/'))).toBe(true);
  });

  it('answers 503 TPD_CLUSTER_UNAVAILABLE when no shard answers', async () => {
    const children = await Promise.all([ChildShard.start(splitWorkload(5, 5).parts[0]!)]);
    const f = await front(children);
    await children[0]!.kill9();
    const r = await api(f.url, 'GET', '/api/v1/paths');
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('TPD_CLUSTER_UNAVAILABLE');
  });

  it('goes on without a shard lost mid-session, says so, and merges it again from the position when it is back', async () => {
    const w = splitWorkload(6, 60);
    const single = await served(w.all);
    const children = await Promise.all(w.parts.map((p) => ChildShard.start(p)));
    closers.push(() => Promise.all(children.map((c) => c.kill9())));
    const f = await front(children);
    const end = formatTs(w.all[w.all.length - 1]!.ts + 1);
    const s = await api(f.url, 'POST', '/api/v1/sessions', { state: 'pause', end });
    const m = await ws(f.url, s.body.stream);
    await m.next((x) => x.type === 'state');

    await children[0]!.kill9();
    const t1 = w.all[40]!.ts;
    m.send({ type: 'control', set: { pos: formatTs(t1) } });
    const lost = await m.next((x) => x.type === 'info');
    expect(lost).toMatchObject({ code: 'TPD_SHARDS_MISSING' });
    expect(lost.message).toMatch(/shard s0 is missing/);
    await m.next((x) => x.type === 'state');
    m.send({ type: 'control', set: { burst: 20 } });
    const some = await m.batches(20);
    expect(some).toEqual(w.all.filter((b) => b.ts > t1 && !b.updates[0]![0].startsWith('/s0/')).slice(0, 20));

    await children[0]!.run(children[0]!.port);
    // Steps read on; once the retry is due the shard is merged again.
    let back: Frame | undefined;
    await until(async () => {
      m.send({ type: 'control', set: { pos: '+1' } });
      await m.next((x) => x.type === 'state');
      back = m.frames.find((x) => x.type === 'info' && /is back/.test(String(x.message)));
      return back !== undefined;
    }, 15_000, 'the shard back in the session');
    const posUs = (await (async () => {
      m.send({ type: 'control', set: { speed: 'unlimited', state: 'play' } });
      return (await m.next((x) => x.type === 'controls' && (x.controls as { state: string }).state === 'play')).controls as { posUs: number };
    })()).posUs;
    const rest = await drain(m);
    const expected = w.all.filter((b) => b.ts > posUs);
    expect(rest).toEqual(expected);
    void single;
  });
});

describe('tail over recording shards', () => {
  it('follows the slowest shard\'s horizon: a batch recorded later but stamped earlier still comes first', async () => {
    const shards = await Promise.all([0, 1, 2].map(() => recordingShard([])));
    for (const s of shards) closers.push(() => s.close());
    const f = await front(shards);
    const s = await api(f.url, 'POST', '/api/v1/sessions', { state: 'tail' });
    const m = await ws(f.url, s.body.stream);
    await m.next((x) => x.type === 'state');
    const x = wallClockUs();
    // Recorded in this order; stamped so that the merged order is the reverse.
    const record = async (k: number, v: number): Promise<void> => {
      await shards[k]!.recorder.write('t', [[`/s${k}/v`, v]], x + v);
      await shards[k]!.archive.writer!.flush();
    };
    await record(0, 10);
    await record(1, 7);
    await record(2, 5);
    const got = await m.batches(3, 15_000);
    expect(got.map((b) => b.ts - x)).toEqual([5, 7, 10]);
  });
});

describe('clients leaving', () => {
  /** Three shards whose streams outlast the sockets' buffers (so a paced session keeps them open). */
  async function bigCluster(): Promise<{ f: TestServer; open: () => number; single: Batch[] }> {
    const pad = 'x'.repeat(4096);
    const parts = [0, 1, 2].map((k) => Array.from({ length: 3000 }, (_, i) => ({ ts: 1_760_000_000_000_000 + i * 3_000 + k, updates: [[`/s${k}/v`, `${pad}${i}`]] as Batch['updates'] })));
    const shards = await Promise.all(parts.map((p) => served(p)));
    const counters = shards.map((s) => inFlight(s));
    const f = await front(shards);
    return { f, open: () => counters.reduce((n, c) => n + c(), 0), single: parts.flat() };
  }

  for (const how of ['playing', 'paused', 'seeking', 'terminated'] as const) {
    it(`frees every shard stream when the client leaves a session ${how}`, async () => {
      const { f, open } = await bigCluster();
      const s = await api(f.url, 'POST', '/api/v1/sessions', { speed: 1 });
      const m = await TestWs.open(f.url + s.body.stream);
      await m.batches(2);
      await until(() => open() >= 3, 5000, 'one stream per shard open');
      if (how === 'paused') {
        m.send({ type: 'control', set: { state: 'pause' } });
        await m.next((x) => x.type === 'controls' && (x.controls as { state: string }).state === 'pause');
      }
      if (how === 'seeking') m.send({ type: 'control', set: { pos: '+2000' } });
      if (how === 'terminated') m.ws.terminate();
      else m.close();
      await until(() => open() === 0, 5000, 'every shard stream closed');
      // The session itself lives on for its grace period, and plays again when a client is back.
      const again = await TestWs.open(f.url + s.body.stream);
      await again.next((x) => x.type === 'state');
      again.send({ type: 'control', set: { state: 'play', speed: 'unlimited' } });
      expect((await again.batches(3)).length).toBe(3);
      await until(() => open() >= 1, 5000, 'streams open again');
      expect((await api(f.url, 'DELETE', `/api/v1/sessions/${s.body.id}`)).status).toBe(204);
      await until(() => open() === 0, 5000, 'every shard stream closed after DELETE');
      again.close();
    });
  }

  it('frees every shard stream when a tailing session is deleted', async () => {
    const { f, open } = await bigCluster();
    const s = await api(f.url, 'POST', '/api/v1/sessions', { state: 'tail' });
    const m = await TestWs.open(f.url + s.body.stream);
    await m.next((x) => x.type === 'state');
    expect((await api(f.url, 'DELETE', `/api/v1/sessions/${s.body.id}`)).status).toBe(204);
    await m.next((x) => x.type === 'end');
    await until(() => open() === 0, 5000, 'every shard stream closed');
  });
});
