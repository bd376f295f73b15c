/**
 * A shard that is itself an active/standby pair (docs/cluster.md, "A shard as an
 * active/standby pair"): two `tapedeck serve` processes with the same `cluster.shard` and an
 * `ha` section poll one simulator, a real Redis holds both the cluster's membership and the
 * pair's roles, a real Kafka topic is the pair's sink. A third shard (push only) is the node
 * that answers merged reads. Checked: the pair is one shard in the directory; exactly one of
 * the two holds and renews the shard's lease; the one holding both leases is killed -9 at a
 * seeded moment (CLUSTER_HA_SEED, printed); merged reads never hang, name the shard missing
 * while nobody holds its lease, then answer for it from the survivor; and every batch the
 * pair published to its topic, and every batch merged reads served before the kill, within
 * the survivor's span, is in the merged history afterwards.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import pino from 'pino';
import { formatTs } from '../protocol/time.js';
import { Membership } from '../server/cluster/membership.js';
import { tapedeckArgs } from './helpers/built.js';
import { checkExactlyOnce, ha, kill9, stop, until, useCluster, type ClusterPeers, type Recorder } from './helpers/ha-cluster.js';
import { readTopic } from './helpers/kafka.js';
import { uniqueName } from './helpers/peers.js';
import { scheduleSeed } from './helpers/seed.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const LEASE_TTL_MS = 1000;
const peers = useCluster({ leaseTtlMs: LEASE_TTL_MS, simSeed: 11 });

interface Names {
  cluster: string;
  ha: string;
  topic: string;
}

/** A recorder process with a `cluster` section, and an `ha` section when `pair` is set. */
async function startNode(p: ClusterPeers, dir: string, id: string, n: Names, o: { shard: string; globs: string[]; pair: boolean }): Promise<Recorder> {
  const archive = join(dir, `archive-${id}`);
  const cfg = join(dir, `cfg-${id}.json`);
  const pairPart = o.pair
    ? {
        sources: [{ name: 'fabric', type: 'csv-matrix', url: `${p.simUrl}/counters`, prefix: '/fabric', interval: '20ms' }],
        kafka_sink: { brokers: [p.broker.brokers], topic: n.topic },
        ha: { redis: p.redis.url, cluster: n.ha, id, lease_ttl: `${LEASE_TTL_MS}ms`, buffer_window: '3s' },
      }
    : { sources: [{ name: 'in', type: 'push' }] };
  await writeFile(cfg, JSON.stringify({
    archive_directory: archive,
    record: { spec: ['/**'], flush_interval: '100ms' },
    publish: { bind: '127.0.0.1:0' },
    log_level: 'info',
    cluster: { name: n.cluster, shard: o.shard, redis: p.redis.url, globs: o.globs, lease_ttl: `${LEASE_TTL_MS}ms` },
    ...pairPart,
  }));
  const child = spawn(process.execPath, tapedeckArgs('serve', '--config', cfg), { stdio: ['ignore', 'pipe', 'inherit'] });
  p.procs.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`recorder ${id} exited with ${code} before listening`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      try {
        const j = JSON.parse(l) as Record<string, unknown>;
        if (j.msg === 'listening') resolve(j.url as string);
      } catch {
        // not a log line
      }
    });
  });
  return { id, url, archive, child, exited };
}

async function leaseHolder(r: Recorder): Promise<boolean> {
  const res = await request(`${r.url}/api/v1/cluster/status`, { headersTimeout: 2000, bodyTimeout: 2000 });
  const body = (await res.body.json()) as { lease_holder: boolean; registered: boolean };
  return body.registered && body.lease_holder;
}

interface Merged {
  status: number;
  partial: string | undefined;
  body: string;
}

/** A merged read at `node` (its answer must come: the bound is the fan-out's own). */
async function merged(node: Recorder, path: string): Promise<Merged> {
  const res = await request(`${node.url}${path}`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const partial = res.headers['tapedeck-partial'];
  return { status: res.statusCode, partial: typeof partial === 'string' ? partial : undefined, body: await res.body.text() };
}

/** The batch times of the merged history of /fabric/** from `fromUs` to `toUs`, when the answer is complete. */
async function fabricBatches(node: Recorder, fromUs: number, toUs: number): Promise<number[] | undefined> {
  const m = await merged(node, `/api/v1/history?glob=${encodeURIComponent('/fabric/**')}&from=${encodeURIComponent(formatTs(fromUs))}&to=${encodeURIComponent(formatTs(toUs))}`);
  if (m.status !== 200 || m.partial !== undefined) return undefined;
  return m.body.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { ts: number }).ts);
}

async function horizonOf(node: Recorder, shard: string): Promise<number> {
  const res = await request(`${node.url}/api/v1/coverage`, { headersTimeout: 10_000 });
  const body = (await res.body.json()) as { shards?: Array<{ shard: string; horizon_us?: number | null; horizon?: number | null }> };
  const s = body.shards?.find((x) => x.shard === shard);
  return Number(s?.horizon_us ?? s?.horizon ?? 0);
}

describe('a shard that is an active/standby pair', () => {
  it('is one shard in the directory, one lease holder; merged reads survive kill -9 of its active and lose nothing acknowledged', async () => {
    const p = peers();
    const dir = await tmpDir();
    const n: Names = { cluster: uniqueName('pairc'), ha: uniqueName('pairha'), topic: uniqueName('pair-sink') };
    const random = rng(scheduleSeed('CLUSTER_HA_SEED', 'cluster-ha kill moment'));
    const reader = await Membership.reader({ redisUrl: p.redis.url, cluster: n.cluster, log: pino({ level: 'silent' }) });
    try {
      const q = await startNode(p, dir, 'q', n, { shard: 'q', globs: ['/q/**'], pair: false });
      const a = await startNode(p, dir, 'a', n, { shard: 'p', globs: ['/fabric/**'], pair: true });
      await until(async () => ((await ha(a)).publishing && (await leaseHolder(a))) || undefined, 20_000, 'a active and holding the shard lease');
      const b = await startNode(p, dir, 'b', n, { shard: 'p', globs: ['/fabric/**'], pair: true });
      await until(async () => { const h = await ha(b); return h.role === 'standby' && h.buffer_depth > 0 || undefined; }, 20_000, 'b standby with a buffer');

      // One shard p in the directory, at a's URL; b does not hold (nor renew) the lease.
      const shards = await reader.shards();
      expect(shards.map((s) => s.id)).toEqual(['p', 'q']);
      expect(shards.find((s) => s.id === 'p')).toMatchObject({ live: true, url: a.url, globs: ['/fabric/**'] });
      expect(await leaseHolder(a)).toBe(true);
      expect(await leaseHolder(b)).toBe(false);
      // Merged reads at q answer for p, completely.
      await until(async () => { const m = await merged(q, '/api/v1/paths'); return m.status === 200 && m.partial === undefined && m.body.includes('/fabric/') || undefined; }, 10_000, 'merged paths holding p\'s');

      // b's first batch: the span both archives hold from here on.
      const bLocal = await until(async () => {
        const res = await request(`${b.url}/api/v1/history?scope=local&glob=${encodeURIComponent('/fabric/**')}&from=${encodeURIComponent(formatTs(0))}`);
        const first = (await res.body.text()).split('\n')[0];
        return first ? (JSON.parse(first) as { ts: number }).ts : undefined;
      }, 10_000, 'b recording');

      // A merged session tailing at q across the kill.
      const created = await api(q.url, 'POST', '/api/v1/sessions', { state: 'tail' });
      expect(created.status).toBe(201);
      const ws = await TestWs.open(`${q.url}${created.body.stream}`, 'json');
      await ws.next((f) => f.type === 'batch' || f.type === 'batches', 20_000);

      // A seeded moment in 0.3 to 2.3 s, merged reads going on meanwhile.
      const wait = 300 + Math.floor(random() * 2000);
      const deadline = Date.now() + wait;
      let servedBefore: number[] = [];
      await until(async () => {
        const h = await horizonOf(q, 'p');
        const got = h > bLocal ? await fabricBatches(q, bLocal, h) : undefined;
        if (got) servedBefore = got;
        return Date.now() >= deadline || undefined;
      }, wait + 20_000, 'the kill moment');
      expect(servedBefore.length).toBeGreaterThan(0);
      await kill9(a);

      // While p's lease is free, answers come and name p missing; b then takes the lease and
      // merged reads answer for p again, complete, from b.
      const sawPartial: string[] = [];
      await until(async () => {
        const m = await merged(q, '/api/v1/state');
        expect(m.status).toBe(200);
        if (m.partial !== undefined) {
          expect(m.partial).toContain('p ');
          sawPartial.push(m.partial);
          return undefined;
        }
        const s = (await reader.shards()).find((x) => x.id === 'p');
        return (s?.live && s.url === b.url && m.body.includes('/fabric/')) || undefined;
      }, 20_000, 'merged reads answering for p from b');
      expect(await leaseHolder(b)).toBe(true);
      await until(async () => (await ha(b)).publishing || undefined, 10_000, 'b publishing');

      // The session said p was missing, then back, and goes on with p's batches, in order,
      // none twice.
      const infoIndex = (word: string): number => ws.frames.findIndex((f) => f.type === 'info' && f.code === 'TPD_SHARDS_MISSING' && String(f.message).includes(`shard p is ${word}`));
      await until(async () => infoIndex('back') >= 0 || undefined, 20_000, 'the session told p is back');
      expect(infoIndex('missing')).toBeGreaterThanOrEqual(0);
      expect(infoIndex('missing')).toBeLessThan(infoIndex('back'));
      const batchTimes = (frames: Frame[]): number[] => frames.flatMap((f) => (f.type === 'batch' ? [f.ts as number] : f.type === 'batches' ? (f.batches as Array<{ ts: number }>).map((x) => x.ts) : []));
      const backAt = infoIndex('back');
      await until(async () => batchTimes(ws.frames.slice(backAt)).length >= 2 || undefined, 20_000, 'p\'s batches in the session again');
      const played = batchTimes(ws.frames);
      for (let i = 1; i < played.length; i++) expect(played[i], `session batch ${i}`).toBeGreaterThan(played[i - 1] as number);
      ws.close();

      // Nothing acknowledged lost: every batch merged reads served before the kill, and every
      // batch the pair published to its topic in b's span, is in the merged history now.
      const published = await until(async () => {
        const h = await horizonOf(q, 'p');
        const seqs = (await readTopic(p.broker.kafka, n.topic)).map((m) => Number(m.headers['tpd-seq'])).filter((s) => s >= bLocal && s <= h);
        return seqs.length > 0 && Math.max(...seqs) > Math.max(...servedBefore) ? { seqs, h } : undefined;
      }, 20_000, 'b publishing past the kill');
      const after = await until(() => fabricBatches(q, bLocal, published.h), 10_000, 'a complete merged history');
      const have = new Set(after);
      expect(servedBefore.filter((t) => !have.has(t)), 'batches served before the kill, gone after').toEqual([]);
      expect(published.seqs.filter((t) => !have.has(t)), 'batches published, missing from merged reads').toEqual([]);
      // Merged history has no duplicate batch: the pair's two archives are never both read.
      expect(new Set(after).size).toBe(after.length);
      console.log(`cluster-ha: kill after ${wait} ms; ${servedBefore.length} batches served before, ${after.length} after; ${published.seqs.length} published in b's span; ${sawPartial.length} partial answers in the gap`);

      await stop(b);
      await stop(q);
      // And the pair's sink, as for any active/standby pair: every batch either archive holds
      // in the topic's span was published, once, in order.
      await checkExactlyOnce(p.broker, n.topic, [a.archive, b.archive]);
    } finally {
      await reader.stop();
    }
  }, 180_000);
});
