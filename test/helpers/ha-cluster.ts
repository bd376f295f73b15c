/**
 * Recorders in active/standby as real processes (`tapedeck serve`, built), for the HA tests:
 * start one on a simulator, a Redis and a Kafka broker; read GET /api/v1/ha; kill or stop it;
 * and check the sink topic with a consumer of its own (exactly once, in order). The broker and
 * the Redis are the run's shared ones unless the test file asks for a private one (to stop
 * or restart it); cluster names and topics are made unique by the tests (uniqueName).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { afterAll, beforeAll, expect, onTestFinished } from 'vitest';
import { Archive } from '../../storage/index.js';
import { Simulator } from '../../server/sim/simulator.js';
import { tapedeckArgs } from './built.js';
import { readTopic, startKafka, type KafkaBroker, type KafkaPeer } from './kafka.js';
import { PEER_START_MAX_MS, sharedKafka, sharedRedis } from './peers.js';
import { startRedis, type RedisPeer, type RedisServer } from './redis.js';
export { waitFor as until } from './until.js';

export interface ClusterPeers<K extends KafkaPeer = KafkaPeer, R extends RedisPeer = RedisPeer> {
  broker: K;
  redis: R;
  /** The simulator's base URL. */
  simUrl: string;
  leaseTtlMs: number;
  /** Every child started, so that afterAll can kill what a failed test left running. */
  procs: Set<ChildProcess>;
}

export interface Recorder {
  id: string;
  url: string;
  archive: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export interface HaBody {
  role: string;
  publishing: boolean;
  lease_holder: string | null;
  fencing_token: number;
  buffer_depth: number;
  forced: string | null;
  redis: string;
  last_published: { stream: string; seq: string } | null;
}

export async function ha(r: Recorder): Promise<HaBody> {
  const res = await request(`${r.url}/api/v1/ha`, { headersTimeout: 1000, bodyTimeout: 1000 });
  return (await res.body.json()) as HaBody;
}

export async function control(r: Recorder, action: string): Promise<number> {
  const res = await request(`${r.url}/api/v1/ha/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action }) });
  await res.body.dump();
  return res.statusCode;
}

export async function startRecorder(p: ClusterPeers, dir: string, id: string, topic: string, cluster: string, sources?: unknown[]): Promise<Recorder> {
  const archive = join(dir, `archive-${id}`);
  const cfg = join(dir, `cfg-${id}.json`);
  await writeFile(cfg, JSON.stringify({
    archive_directory: archive,
    record: { spec: ['/**'], flush_interval: '100ms' },
    publish: { bind: '127.0.0.1:0' },
    log_level: 'info',
    sources: sources ?? [{ name: 'fabric', type: 'csv-matrix', url: `${p.simUrl}/counters`, prefix: '/fabric', interval: '20ms' }],
    kafka_sink: { brokers: [p.broker.brokers], topic },
    ha: { redis: p.redis.url, cluster, id, lease_ttl: `${p.leaseTtlMs}ms`, buffer_window: '3s' },
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
        if (process.env.HA_DEBUG && (j.level as number) >= 40) console.log('LOG', id, l.slice(0, 400));
      } catch {
        // not a log line
      }
    });
  });
  return { id, url, archive, child, exited };
}

export async function kill9(r: Recorder): Promise<void> {
  r.child.kill('SIGKILL');
  await r.exited;
}

export async function stop(r: Recorder): Promise<void> {
  r.child.kill('SIGTERM');
  expect(await r.exited).toBe(0);
}

interface ClusterOptions {
  leaseTtlMs: number;
  simSeed: number;
}

/**
 * One test file's peers: a Kafka broker (the run's shared one, or with `privateKafka` one of
 * the file's own, to stop and restart), the run's shared Redis and a simulator, ready in
 * beforeAll; in afterAll every recorder still running killed and the private broker removed.
 * Call at the top level of the file; the returned function gives the peers inside tests.
 */
export function useCluster(o: ClusterOptions & { privateKafka: true }): () => ClusterPeers<KafkaBroker>;
export function useCluster(o: ClusterOptions): () => ClusterPeers;
export function useCluster(o: ClusterOptions & { privateKafka?: boolean }): () => ClusterPeers {
  let broker: KafkaPeer | undefined;
  let owned: KafkaBroker | undefined;
  let redis: RedisPeer | undefined;
  let sim: Simulator | undefined;
  const procs = new Set<ChildProcess>();
  beforeAll(async () => {
    const kafka = o.privateKafka ? startKafka().then((k) => (owned = k)) : sharedKafka();
    [broker, redis] = await Promise.all([kafka, sharedRedis()]);
    sim = await Simulator.start({ port: 0, switches: 4, intervalMs: 250, fault500Pct: 0, faultSlowMs: 0, seed: o.simSeed });
  }, PEER_START_MAX_MS);
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await sim?.close();
    await owned?.destroy();
  });
  return () => {
    if (!broker || !redis || !sim) throw new Error('useCluster: the peers are not started (call it at the top level of the test file)');
    return { broker, redis, simUrl: sim.url, leaseTtlMs: o.leaseTtlMs, procs };
  };
}

/** A Redis of the test's own, to stop and restart (removed when the test ends). */
export async function privateRedis(): Promise<RedisServer> {
  const r = await startRedis();
  onTestFinished(() => r.destroy());
  return r;
}

async function archivedSeqs(dir: string): Promise<Set<number>> {
  const a = await Archive.open(dir, { readonly: true });
  const c = a.cursor();
  const out = new Set<number>();
  for (let b = await c.next(); b; b = await c.next()) out.add(b.ts);
  await a.close();
  return out;
}

/** Exactly once, in order: the published seqs increase strictly and hold every batch either recorder archived in their span. */
export async function checkExactlyOnce(broker: KafkaPeer, topic: string, archives: string[], opts: { allowDuplicates?: boolean } = {}): Promise<number> {
  const msgs = await readTopic(broker.kafka, topic);
  const seqs = msgs.map((m) => Number(m.headers['tpd-seq']));
  expect(seqs.length).toBeGreaterThan(0);
  if (!opts.allowDuplicates) {
    for (let i = 1; i < seqs.length; i++) expect(seqs[i], `message ${i} from ${msgs[i]?.headers['tpd-recorder']} (fence ${msgs[i]?.headers['tpd-fence']}) after seq ${seqs[i - 1]} from ${msgs[i - 1]?.headers['tpd-recorder']} (fence ${msgs[i - 1]?.headers['tpd-fence']})`).toBeGreaterThan(seqs[i - 1] as number);
  }
  const first = Math.min(...seqs);
  const last = Math.max(...seqs);
  const published = new Set(seqs);
  const missing: number[] = [];
  for (const dir of archives) {
    for (const ts of await archivedSeqs(dir)) if (ts >= first && ts <= last && !published.has(ts)) missing.push(ts);
  }
  expect(missing, 'batches recorded but never published').toEqual([]);
  return seqs.length;
}
