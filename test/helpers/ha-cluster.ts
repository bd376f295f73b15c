/**
 * Recorders in active/standby as real processes (`tapedeck serve`), for the HA tests: start
 * one on a shared simulator, Redis and Kafka broker; read GET /api/v1/ha; kill or stop it;
 * and check the sink topic with a consumer of its own (exactly once, in order).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { afterAll, beforeAll, expect } from 'vitest';
import { Archive } from '../../storage/index.js';
import { Simulator } from '../../server/sim/simulator.js';
import { readTopic, startKafka, type KafkaBroker } from './kafka.js';
import { startRedis, type RedisServer } from './redis.js';
export { waitFor as until } from './until.js';

const main = new URL('../../clients/cli/main.ts', import.meta.url).pathname;

export interface ClusterPeers {
  broker: KafkaBroker;
  redis: RedisServer;
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
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
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

/**
 * One test file's peers: a Kafka broker, a Redis and a simulator started in beforeAll, and
 * in afterAll every recorder still running killed and the peers removed. Call at the top
 * level of the file; the returned function gives the peers inside tests.
 */
export function useCluster(o: { leaseTtlMs: number; simSeed: number }): () => ClusterPeers {
  let broker: KafkaBroker | undefined;
  let redis: RedisServer | undefined;
  let sim: Simulator | undefined;
  const procs = new Set<ChildProcess>();
  beforeAll(async () => {
    [broker, redis] = await Promise.all([startKafka(), startRedis()]);
    sim = await Simulator.start({ port: 0, switches: 4, intervalMs: 250, fault500Pct: 0, faultSlowMs: 0, seed: o.simSeed });
  }, 120_000);
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await sim?.close();
    await Promise.all([broker?.destroy(), redis?.destroy()]);
  });
  return () => {
    if (!broker || !redis || !sim) throw new Error('useCluster: the peers are not started (call it at the top level of the test file)');
    return { broker, redis, simUrl: sim.url, leaseTtlMs: o.leaseTtlMs, procs };
  };
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
export async function checkExactlyOnce(broker: KafkaBroker, topic: string, archives: string[], opts: { allowDuplicates?: boolean } = {}): Promise<number> {
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
