/**
 * A shard that joins a cluster while a merged session is open (docs/cluster.md, "Merged
 * sessions"): real shard processes and a real Redis. The session, made over two shards,
 * includes the third from its next seek on, in the tie rule's order; it is never named
 * missing before it joined, coverage frames keep coming, and once it is killed -9 the next
 * seek names it missing and plays the others. A tailing session takes the new shard in by
 * itself, from its position.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { pino } from 'pino';
import type { Batch } from '../protocol/value.js';
import { formatTs } from '../protocol/time.js';
import { Membership } from '../server/cluster/membership.js';
import { ShardCluster, useShardPeers, type Shard } from './helpers/cluster.js';
import { uniqueName } from './helpers/peers.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const peers = useShardPeers({ kafka: false });

/** Seconds since the epoch, ten minutes ago: past every shard's commit lag. */
const T_S = Math.floor(Date.now() / 1000) - 600;
const us = (s: number): number => Math.round((T_S + s) * 1e6);

/** Batches of one path each, at T + the given seconds. */
function batchesAt(path: string, seconds: readonly number[]): Batch[] {
  return seconds.map((s, i) => ({ ts: us(s), updates: [[path, i]] }));
}

async function push(s: Shard, batches: readonly Batch[]): Promise<void> {
  const body = batches.map((b) => JSON.stringify({ ts: b.ts / 1e6, updates: Object.fromEntries(b.updates) })).join('\n');
  const r = await fetch(`${s.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  expect(r.status, await r.clone().text()).toBe(200);
}

function flat(f: Frame): Batch[] {
  return f.type === 'batch' ? [{ ts: f.ts as number, updates: f.updates as Batch['updates'] }] : (f.batches as Batch[]);
}

/** Seeks to T, then plays to the session's end: the state frame, the coverage frame after it, the batches. */
async function replayFromStart(w: TestWs): Promise<{ state: Frame; coverage: Frame; batches: Batch[] }> {
  // Frames of earlier moves (a coverage frame sent when the shards' coverage changed) are not this one's.
  for (let i = w.frames.length - 1; i >= 0; i--) if (['state', 'coverage', 'controls'].includes(w.frames[i]!.type as string)) w.frames.splice(i, 1);
  w.send({ type: 'control', set: { pos: formatTs(us(0)), state: 'pause' } });
  const state = await w.next((x) => x.type === 'state');
  const coverage = await w.next((x) => x.type === 'coverage');
  w.send({ type: 'control', set: { speed: 'unlimited', state: 'play' } });
  const batches: Batch[] = [];
  for (;;) {
    const f = await w.next((x) => x.type === 'batch' || x.type === 'batches' || x.type === 'end');
    if (f.type === 'end') return { state, coverage, batches };
    batches.push(...flat(f));
  }
}

const byTs = (a: Batch, b: Batch): number => a.ts - b.ts;
const missingInfo = (frames: readonly Frame[]): Frame[] => frames.filter((f) => f.type === 'info' && f.code === 'TPD_SHARDS_MISSING');

describe('a shard joining an open merged session', () => {
  it('is merged from the next seek on, never named missing before, and named missing once it is lost', async () => {
    const dir = await tmpDir();
    const name = uniqueName('join');
    const c = new ShardCluster({ dir, redisUrl: peers().redis.url, name });
    onTestFinished(() => c.killAll());
    const a = await c.start('a', { globs: ['/a/**'] });
    const b = await c.start('b', { globs: ['/b/**'] });
    const fromA = batchesAt('/a/x', [1, 4, 7]);
    const fromB = batchesAt('/b/x', [2, 5, 8]);
    const fromC = batchesAt('/c/x', [3, 6, 8]); // 8: a tie with b, which c follows in id order
    await push(a, fromA);
    await push(b, fromB);

    const created = await api(a.url, 'POST', '/api/v1/sessions', { pos: formatTs(us(0)), state: 'pause', end: formatTs(us(20)) });
    expect(created.status).toBe(201);
    const w = await TestWs.open(`${a.url}${created.body.stream as string}`, 'msgpack');
    onTestFinished(() => w.close());
    await w.next((x) => x.type === 'state');
    await w.next((x) => x.type === 'coverage');
    const before = await replayFromStart(w);
    expect(before.batches).toEqual([...fromA, ...fromB].sort(byTs));
    expect(Object.keys(before.state.values as object).sort()).toEqual(['/a/x', '/b/x']);

    // The third shard starts and records while the session stays open.
    const third = await c.start('c', { globs: ['/c/**'] });
    await push(third, fromC);
    const directory = await Membership.reader({ redisUrl: peers().redis.url, cluster: name, log: pino({ level: 'silent' }) });
    onTestFinished(() => directory.stop());
    await until(async () => (await directory.shards()).some((s) => s.id === 'c' && s.live), 10_000, 'shard c live in the directory');

    const joined = await replayFromStart(w);
    expect(joined.batches).toEqual([...fromA, ...fromB, ...fromC].sort((x, y) => byTs(x, y) || (x.updates[0]![0] < y.updates[0]![0] ? -1 : 1)));
    expect(joined.state.values).toEqual({ '/a/x': null, '/b/x': null, '/c/x': null });
    expect(joined.coverage.type).toBe('coverage');
    expect(missingInfo(w.frames)).toEqual([]);

    // Lost: its lease expires; the next seek names it missing and plays the others.
    await c.kill9(third);
    await until(async () => (await directory.shards()).some((s) => s.id === 'c' && !s.live), 10_000, 'shard c not live');
    const lost = await replayFromStart(w);
    expect(lost.batches).toEqual([...fromA, ...fromB].sort(byTs));
    const info = missingInfo(w.frames);
    expect(info).toHaveLength(1);
    expect(info[0]!.message).toMatch(/shard c is missing/);
  });

  it('is merged by a tailing session without a seek, from its position on', async () => {
    const dir = await tmpDir();
    const name = uniqueName('join-tail');
    const c = new ShardCluster({ dir, redisUrl: peers().redis.url, name });
    onTestFinished(() => c.killAll());
    const a = await c.start('a', { globs: ['/a/**'] });
    await c.start('b', { globs: ['/b/**'] });
    const created = await api(a.url, 'POST', '/api/v1/sessions', { state: 'tail' });
    expect(created.status).toBe(201);
    const w = await TestWs.open(`${a.url}${created.body.stream as string}`, 'json');
    onTestFinished(() => w.close());
    await w.next((x) => x.type === 'state');
    await w.next((x) => x.type === 'controls' && (x.controls as { state: string }).state === 'tail');

    const third = await c.start('c', { globs: ['/c/**'] });
    const r = await fetch(`${third.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ updates: { '/c/live': 'hello' } }) });
    expect(r.status).toBe(200);
    const f = await w.next((x) => (x.type === 'batch' || x.type === 'batches') && flat(x).some((bt) => bt.updates.some((u) => u[0] === '/c/live')), 20_000);
    expect(flat(f).flatMap((bt) => bt.updates)).toContainEqual(['/c/live', 'hello']);
    expect(missingInfo(w.frames)).toEqual([]);
  });
});
