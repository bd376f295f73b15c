/**
 * Cluster membership in Redis (docs/cluster.md): the ShardDirectory merged reads use, and
 * the lease this shard renews. Keys, under `tapedeck:cluster:<name>`:
 * - `:shards` (hash, persistent): shard id → `{"url", "globs"}`, the registry. A shard stays
 *   in it when it dies (merged reads then name it missing); an operator removes one with
 *   HDEL.
 * - `:horizons` (hash, persistent): shard id → `<committed horizon µs> <renewed ms>`, the
 *   last renewal, so a dead shard's horizon is still known.
 * - `:lease:<id>` (hash with a TTL): `holder` (the recorder instance) and `url`. Only its
 *   holder extends it (compare-and-extend in Lua); the other recorder of an active/standby
 *   pair takes it once it expired. Its presence is `live`.
 *
 * Registration checks the shard's globs against every other registered shard's under
 * WATCH, so two shards starting at once with overlapping globs cannot both register.
 *
 * Redis unreachable: recording goes on; shards() throws TPD_CLUSTER_UNAVAILABLE; ownership
 * checks use the last membership read (known()); the lease lapses, so other nodes see
 * this shard live: false until Redis is back and the next renewal.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { TapedeckError } from '../../protocol/errors.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { overlapError } from './ownership.js';

export interface MembershipOptions {
  redisUrl: string;
  cluster: string;
  shard: string;
  url: string;
  globs: readonly string[];
  leaseTtlMs: number;
  /** The archive's committed horizon (µs), null while empty. */
  horizonUs: () => number | null;
  log: Logger;
}

export interface MembershipStatus {
  shard: string;
  redis: 'ok' | 'unreachable';
  registered: boolean;
  /** True while this recorder holds the shard's lease (false: the other recorder of its pair does). */
  leaseHolder: boolean;
  renewals: number;
}

/** KEYS: lease, shards, horizons. ARGV: id, instance, url, ttl ms, horizon µs, registry entry. */
const RENEW = `
local h = redis.call('HGET', KEYS[1], 'holder')
if h and h ~= ARGV[2] then return {0, h} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'url', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5] .. ' ' .. now)
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[6] then redis.call('HSET', KEYS[2], ARGV[1], ARGV[6]) end
return {1, tostring(now)}`;
/** KEYS: lease. ARGV: instance. */
const RELEASE = `if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Registration attempts under WATCH before giving up on a registry that keeps changing. */
const REGISTER_ATTEMPTS_MAX = 20;

export function clusterKeyPrefix(cluster: string): string {
  return `tapedeck:cluster:${cluster}`;
}

interface RegistryEntry {
  url: string;
  globs: string[];
}

function parseEntry(json: string): RegistryEntry | undefined {
  try {
    const e = JSON.parse(json) as Partial<RegistryEntry>;
    if (typeof e.url === 'string' && Array.isArray(e.globs) && e.globs.every((g) => typeof g === 'string')) return { url: e.url, globs: e.globs };
  } catch {
    // an entry written by hand or by another version: listed as not live (shards())
  }
  return undefined;
}

export class Membership extends EventEmitter implements ShardDirectory {
  readonly self: string;
  /** This process's id in the lease (two recorders of a pair share the shard id, not this). */
  readonly instance: string;
  readonly redis: Redis;
  private readonly o: MembershipOptions;
  private readonly k: { shards: string; horizons: string; lease: (id: string) => string };
  private readonly entry: string;
  private snapshot: readonly ShardInfo[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private registered = false;
  private holder = false;
  private redisOk = false;
  private renewals = 0;

  private constructor(o: MembershipOptions) {
    super();
    this.o = o;
    this.self = o.shard;
    this.instance = `${o.shard}/${process.pid}/${randomBytes(4).toString('hex')}`;
    const p = clusterKeyPrefix(o.cluster);
    this.k = { shards: `${p}:shards`, horizons: `${p}:horizons`, lease: (id) => `${p}:lease:${id}` };
    this.entry = JSON.stringify({ url: o.url, globs: [...o.globs] } satisfies RegistryEntry);
    const wait = Math.max(200, Math.floor(o.leaseTtlMs / 2));
    this.redis = new Redis(o.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: wait,
      commandTimeout: wait,
      enableOfflineQueue: false,
      retryStrategy: () => Math.max(50, Math.floor(o.leaseTtlMs / 4)),
    });
    this.redis.on('error', () => undefined);
  }

  /**
   * Connects, registers (throws TPD_BAD_CONFIG naming both shards when the globs overlap
   * another shard's) and starts renewing. With Redis unreachable it starts unregistered and
   * registers at the first renewal that reaches Redis.
   */
  static async start(o: MembershipOptions): Promise<Membership> {
    const m = new Membership(o);
    try {
      await m.redis.connect();
      await m.register();
      await m.tickOnce();
    } catch (err) {
      if (err instanceof TapedeckError && err.code === 'TPD_BAD_CONFIG') {
        m.redis.disconnect();
        throw err;
      }
      o.log.error({ err }, 'cluster: Redis is unreachable at start; recording goes on, the shard registers once it is back');
    }
    m.schedule();
    return m;
  }

  /**
   * A directory that only reads membership (no registration, no lease): for tools and
   * tests that look at a cluster from outside. stop() disconnects it.
   */
  static async reader(o: { redisUrl: string; cluster: string; log: Logger }): Promise<Membership> {
    const m = new Membership({ ...o, shard: '', url: '', globs: [], leaseTtlMs: 1000, horizonUs: () => null });
    m.stopped = true;
    await m.redis.connect().catch(() => undefined);
    return m;
  }

  get renewMs(): number {
    return Math.max(50, Math.floor(this.o.leaseTtlMs / 4));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tickOnce().finally(() => this.schedule());
    }, this.renewMs);
  }

  /** Every registered shard, live or not; TPD_CLUSTER_UNAVAILABLE when Redis cannot be read. */
  async shards(): Promise<readonly ShardInfo[]> {
    try {
      const [[, reg], [, hz]] = (await this.redis.multi().hgetall(this.k.shards).hgetall(this.k.horizons).exec()) as [[null, Record<string, string>], [null, Record<string, string>]];
      const ids = Object.keys(reg).sort();
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(this.k.lease(id), 'url');
      const leases = (await pipe.exec()) ?? [];
      const out: ShardInfo[] = [];
      ids.forEach((id, i) => {
        const e = parseEntry(reg[id] as string);
        // A registered shard whose entry cannot be read is listed, not live: merged reads name
        // it missing instead of leaving it out in silence.
        if (!e) return out.push({ id, url: '', globs: [], horizonUs: 0, renewedMs: 0, live: false, problem: 'registry entry unreadable' });
        const [h, r] = (hz[id] ?? '0 0').split(' ');
        const leaseUrl = leases[i]?.[1];
        out.push({ id, url: typeof leaseUrl === 'string' ? leaseUrl : e.url, globs: e.globs, horizonUs: Number(h) || 0, renewedMs: Number(r) || 0, live: typeof leaseUrl === 'string' });
      });
      this.snapshot = out;
      this.emit('shards', out);
      return out;
    } catch (err) {
      if (err instanceof TapedeckError) throw err;
      throw new TapedeckError('TPD_CLUSTER_UNAVAILABLE', `cluster membership cannot be read from Redis: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  /** The membership last read (every renewal reads it): what ownership checks use, Redis or not. */
  known(): readonly ShardInfo[] {
    return this.snapshot;
  }

  status(): MembershipStatus {
    return { shard: this.self, redis: this.redisOk ? 'ok' : 'unreachable', registered: this.registered, leaseHolder: this.holder, renewals: this.renewals };
  }

  /** Stops renewing and gives the lease up (the shard shows live: false at once); the registry keeps it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    if (this.holder) await this.redis.eval(RELEASE, 1, this.k.lease(this.self), this.instance).catch(() => undefined);
    this.redis.disconnect();
  }

  /**
   * Adds this shard to the registry unless its globs overlap another shard's; atomic under
   * WATCH, on a connection of its own (an EXEC of a concurrent reader on the shared one
   * would drop the WATCH).
   */
  private async register(): Promise<void> {
    const c = this.redis.duplicate();
    c.on('error', () => undefined);
    try {
      if (c.status !== 'ready') await c.connect().catch(() => undefined);
      for (let i = 0; i < REGISTER_ATTEMPTS_MAX; i++) {
        await c.watch(this.k.shards);
        const reg = await c.hgetall(this.k.shards);
        const others = Object.entries(reg).flatMap(([id, json]) => {
          const e = parseEntry(json);
          return e ? [{ id, globs: e.globs }] : [];
        });
        const conflict = overlapError(this.self, this.o.globs, others);
        if (conflict) throw conflict;
        if ((await c.multi().hset(this.k.shards, this.self, this.entry).exec()) !== null) {
          this.registered = true;
          this.o.log.info({ shard: this.self, url: this.o.url, globs: this.o.globs }, 'cluster: shard registered');
          return;
        }
      }
      throw new Error(`cluster: the shard registry changed under ${REGISTER_ATTEMPTS_MAX} registration attempts`);
    } finally {
      c.disconnect();
    }
  }

  private async tickOnce(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.registered) await this.register();
      const r = (await this.redis.eval(RENEW, 3, this.k.lease(this.self), this.k.shards, this.k.horizons, this.self, this.instance, this.o.url, String(this.o.leaseTtlMs), String(this.o.horizonUs() ?? 0), this.entry)) as [number, string];
      const was = this.holder;
      this.holder = r[0] === 1;
      if (this.holder) this.renewals++;
      if (was !== this.holder) this.o.log.warn({ shard: this.self, holder: this.holder ? this.instance : r[1] }, this.holder ? 'cluster: holding the shard lease' : 'cluster: the shard lease is held by the other recorder of the pair');
      if (!this.redisOk) this.o.log.info('cluster: Redis reachable');
      this.redisOk = true;
      await this.shards();
    } catch (err) {
      if (err instanceof TapedeckError && err.code === 'TPD_BAD_CONFIG') {
        // Found at a late registration (Redis was down at start): refuse to join, loudly.
        this.o.log.fatal({ err }, 'cluster: not registered: the globs overlap another shard\'s');
        this.emit('conflict', err);
        this.stopped = true;
        return;
      }
      if (this.redisOk) this.o.log.error({ err }, 'cluster: Redis unreachable; recording goes on, the lease lapses');
      this.redisOk = false;
      this.holder = false;
    }
  }
}
