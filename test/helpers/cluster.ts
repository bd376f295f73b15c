/**
 * Shards of a cluster (docs/cluster.md) as real processes (`tapedeck serve`, built): start N
 * on free ports with a shared Redis and cluster name, kill -9 one, restart it on the same
 * port and archive, stop it. Each shard's archive, config and log stay in the test's
 * directory. Used by test/cluster-*.test.ts and the merged-read tests; every process is
 * killed in afterAll (useShards) or on the test process's exit.
 *
 *   const peers = useShardPeers();                     // top level: shared Kafka + Redis
 *   const c = new ShardCluster({ dir, redisUrl: peers().redis.url, name: uniqueName('c') });
 *   const a = await c.start('a', { globs: ['/a/**'], sources: [{ name: 'push', type: 'push' }] });
 *   await c.kill9(a); const a2 = await c.restart(a);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll } from 'vitest';
import { tapedeckArgs } from './built.js';
import type { KafkaPeer } from './kafka.js';
import { PEER_START_MAX_MS, sharedKafka, sharedRedis } from './peers.js';
import type { RedisPeer } from './redis.js';
import { freePort } from './prometheus.js';
export { freePort };

export interface ShardOptions {
  /** Owned globs for push and poll sources (default none). */
  globs?: string[];
  /** The config's sources (default: one push source). */
  sources?: unknown[];
  /** The record section (default: spec /**, flush_interval 100ms). */
  record?: Record<string, unknown>;
  /** cluster.lease_ttl (default 1s). */
  leaseTtl?: string;
  /** More keys of the cluster section (e.g. in_doubt_max_wait). */
  cluster?: Record<string, unknown>;
  /** More top-level config keys. */
  extra?: Record<string, unknown>;
}

export interface Shard {
  shard: string;
  /** Base URL, http://127.0.0.1:PORT (kept across restarts). */
  url: string;
  port: number;
  archive: string;
  config: string;
  options: ShardOptions;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Every stdout and stderr line of this run (JSON log lines and anything else). */
  lines: string[];
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export interface ShardClusterOptions {
  /** Where archives, configs live. */
  dir: string;
  redisUrl: string;
  /** cluster.name (make it unique per test: uniqueName). */
  name: string;
}

export class ShardCluster {
  readonly o: ShardClusterOptions;
  readonly shards = new Map<string, Shard>();

  constructor(o: ShardClusterOptions) {
    this.o = o;
  }

  /** Starts shard `id` on a free port; resolves once it listens, rejects with its output when it exits first. */
  async start(id: string, options: ShardOptions = {}): Promise<Shard> {
    return this.launch(id, await freePort(), options);
  }

  /** Starts a killed or stopped shard again: same port, archive and config. */
  async restart(s: Shard): Promise<Shard> {
    if (s.child.exitCode === null && s.child.signalCode === null) throw new Error(`shard ${s.shard} is still running`);
    return this.launch(s.shard, s.port, s.options);
  }

  async kill9(s: Shard): Promise<void> {
    s.child.kill('SIGKILL');
    await s.exited;
  }

  /** SIGTERM and the exit code (0 for a clean stop). */
  async stop(s: Shard): Promise<number | null> {
    s.child.kill('SIGTERM');
    return s.exited;
  }

  /** Kills every shard still running (SIGKILL). */
  async killAll(): Promise<void> {
    await Promise.all([...this.shards.values()].filter((s) => s.child.exitCode === null && s.child.signalCode === null).map((s) => this.kill9(s)));
  }

  private async launch(id: string, port: number, options: ShardOptions): Promise<Shard> {
    const archive = join(this.o.dir, `archive-${id}`);
    const config = join(this.o.dir, `cfg-${id}.json`);
    await writeFile(config, JSON.stringify({
      archive_directory: archive,
      record: options.record ?? { spec: ['/**'], flush_interval: '100ms' },
      publish: { bind: `127.0.0.1:${port}`, rate_limit: null },
      log_level: 'info',
      sources: options.sources ?? [{ name: 'push', type: 'push' }],
      cluster: { name: this.o.name, shard: id, redis: this.o.redisUrl, globs: options.globs ?? [], lease_ttl: options.leaseTtl ?? '1s', ...options.cluster },
      ...options.extra,
    }, null, 2));
    const child = spawn(process.execPath, tapedeckArgs('serve', '--config', config), { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }));
    const lines: string[] = [];
    const s: Shard = { shard: id, url: `http://127.0.0.1:${port}`, port, archive, config, options, child, exited, lines };
    this.shards.set(id, s);
    await new Promise<void>((resolve, reject) => {
      void exited.then((code) => reject(new Error(`shard ${id} exited with ${code} before listening:\n${lines.slice(-20).join('\n')}`)));
      const read = (stream: NodeJS.ReadableStream): void => {
        createInterface({ input: stream }).on('line', (l) => {
          lines.push(l);
          if (process.env.CLUSTER_DEBUG) console.log(`[${id}] ${l.slice(0, 400)}`);
          if (l.includes('"msg":"listening"')) resolve();
        });
      };
      read(child.stdout as NodeJS.ReadableStream);
      read(child.stderr as NodeJS.ReadableStream);
    });
    return s;
  }
}

/**
 * The run's shared Redis and (unless `kafka: false`) Kafka broker, ready in beforeAll; call
 * at the top level of a test file. afterAll kills every shard still running.
 */
export function useShardPeers(o: { kafka?: boolean } = {}): () => { kafka: KafkaPeer; redis: RedisPeer } {
  let kafka: KafkaPeer | undefined;
  let redis: RedisPeer | undefined;
  beforeAll(async () => {
    [kafka, redis] = await Promise.all([o.kafka === false ? undefined : sharedKafka(), sharedRedis()]);
  }, PEER_START_MAX_MS);
  afterAll(() => {
    for (const c of running) c.kill('SIGKILL');
  });
  return () => {
    if (!redis || (!kafka && o.kafka !== false)) throw new Error('useShardPeers: the peers are not started (call it at the top level of the test file)');
    return { kafka: kafka as KafkaPeer, redis };
  };
}
