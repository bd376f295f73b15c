/**
 * Active/standby roles through Redis (docs/ha.md). Every recorder of a cluster keeps a
 * member entry (its start time, the priority: the longest-running recorder is preferred)
 * and a liveness key. One holds the lease, a key with a TTL that only its holder extends
 * (an atomic compare-and-extend in Lua); taking an expired lease increments the fencing
 * token. A lease that is held is never taken, so a recorder that restarts stays standby.
 *
 * Operator controls (REST and signals): force active (persisted in Redis: takes the lease
 * even from a live holder), force standby (releases the lease and never takes it), release
 * the force, and refresh the own start time (lose priority).
 *
 * Redis unreachable for longer than the lease TTL: `on_redis_loss` says what to do;
 * `publish` (default) makes every recorder publish (`degraded`: duplicates rather than loss).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isSinkKey } from '../sinks/sink-auth.js';

export type Role = 'active' | 'standby' | 'degraded';

export const HA_DEFAULTS = {
  /** Lease TTL: a dead active is replaced within about this (renewed every TTL/4). */
  leaseTtlMs: 1_000,
  /**
   * The active's sink sends only within this share of the TTL after the start of the Redis
   * request that took or last renewed its lease (Redis counts from later): an active paused
   * past its lease (SIGSTOP) sends nothing on waking until a renewal answers. The rest of the
   * TTL covers a send under way; renewals every TTL/4 leave room for ticks late by 0.65 TTL.
   */
  leaseSureFraction: 0.9,
} as const;

export interface HaOptions {
  redisUrl: string;
  cluster: string;
  id: string;
  leaseTtlMs: number;
  onRedisLoss: 'publish' | 'standby';
  log: Logger;
}

export interface HaStatus {
  id: string;
  role: Role;
  redis: 'ok' | 'unreachable';
  leaseHolder: string | null;
  fencingToken: number;
  startedMs: number;
  forced: 'active' | 'standby' | null;
  transitions: number;
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
/**
 * KEYS: lease, fence. ARGV: id, ttl, highest token seen, steal (1 = take it even when held).
 * A fence that is not a number (written by hand, damaged) counts as 0: the highest token
 * seen still keeps tokens rising, and the lease is taken rather than never.
 */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur and ARGV[4] ~= '1' then return {0, cur} end
local f = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local m = tonumber(ARGV[3])
if m > f then f = m end
f = f + 1
redis.call('SET', KEYS[2], f)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. f, 'PX', ARGV[2])
return {1, tostring(f)}`;

export class HaCoordinator extends EventEmitter {
  readonly id: string;
  private readonly o: HaOptions;
  private readonly redis: Redis;
  private readonly k: { lease: string; fence: string; members: string; force: string; sinkKey: string; alive: (id: string) => string; standby: (id: string) => string };
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  role: Role = 'standby';
  token = 0;
  leaseHolder: string | null = null;
  startedMs = Date.now();
  forced: 'active' | 'standby' | null = null;
  redisOk = false;
  transitions = 0;
  private lastRedisOkMs = Date.now();
  /** Called before this recorder gives its lease up (forced standby, stop): stop publishing and let in-flight sends finish. */
  demote: (() => Promise<void>) | undefined;
  private leaseFreeSinceMs: number | undefined;
  /** Set by refreshTimestamp: the next tick hands a held lease to the preferred member. */
  private handOver = false;
  /**
   * When this recorder's member entry was last (re)written after Redis was unreachable or
   * empty: the preference is only trusted once every live member had a renewal period to
   * register (a Redis restarted empty knows only whoever ticked first).
   */
  private registeredSinceMs: number | undefined;
  private leaseValue = '';
  /**
   * performance.now() until which this member's lease surely holds: 9/10 of the TTL after the
   * start of the request that took or renewed it (Redis counts the TTL from later). Past it
   * (a pause: SIGSTOP, a stalled VM) the sink sends nothing until a renewal says more.
   */
  private leaseSureUntil = 0;
  /** The token the last 'role' event carried. */
  private emittedToken = -1;
  /** The pair's sink key (docs/ha.md, "Who wrote a message"): emitted as 'sink-key' when adopted. */
  sinkKey: string | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(o: HaOptions) {
    super();
    this.o = o;
    this.id = o.id;
    const p = `tapedeck:${o.cluster}`;
    this.k = { lease: `${p}:lease`, fence: `${p}:fence`, members: `${p}:members`, force: `${p}:force-active`, sinkKey: `${p}:sink-key`, alive: (id) => `${p}:alive:${id}`, standby: (id) => `${p}:force-standby:${id}` };
    this.redis = new Redis(o.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(200, o.leaseTtlMs / 2),
      commandTimeout: Math.max(200, o.leaseTtlMs / 2),
      enableOfflineQueue: false,
      retryStrategy: () => Math.min(500, o.leaseTtlMs / 4),
    });
    this.redis.on('error', () => undefined);
  }

  get renewMs(): number {
    return Math.max(50, Math.floor(this.o.leaseTtlMs / 4));
  }

  async start(): Promise<void> {
    await this.redis.connect().catch((err: Error) => this.o.log.error({ err }, 'ha: Redis is unreachable at start'));
    await this.tick();
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.ticking = this.tick().finally(loop);
      }, this.renewMs);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    if (this.role === 'active' && this.redisOk) {
      // A clean stop hands the lease over at once instead of after its TTL.
      await this.demote?.().catch(() => undefined);
      await this.redis.eval(RELEASE, 1, this.k.lease, this.leaseValue).catch(() => undefined);
      await this.redis.del(this.k.alive(this.id)).catch(() => undefined);
      await this.redis.hdel(this.k.members, this.id).catch(() => undefined);
    }
    this.redis.disconnect();
  }

  status(): HaStatus {
    return { id: this.id, role: this.role, redis: this.redisOk ? 'ok' : 'unreachable', leaseHolder: this.leaseHolder, fencingToken: this.token, startedMs: this.startedMs, forced: this.forced, transitions: this.transitions };
  }

  async forceActive(): Promise<void> {
    await this.redis.set(this.k.force, this.id);
    await this.redis.del(this.k.standby(this.id));
    this.forced = 'active';
    await this.tick();
  }

  async forceStandby(): Promise<void> {
    await this.redis.set(this.k.standby(this.id), '1');
    if ((await this.redis.get(this.k.force)) === this.id) await this.redis.del(this.k.force);
    this.forced = 'standby';
    await this.tick();
  }

  async releaseForce(): Promise<void> {
    await this.redis.del(this.k.standby(this.id));
    if ((await this.redis.get(this.k.force)) === this.id) await this.redis.del(this.k.force);
    this.forced = null;
    await this.tick();
  }

  /**
   * Takes the current time as the own start time: this recorder loses its priority and, as
   * in seed 002, an active one hands the role to the member now preferred (if any is alive
   * and not forced standby): it stops publishing, then releases the lease for it.
   */
  async refreshTimestamp(): Promise<void> {
    this.startedMs = Date.now();
    await this.redis.hset(this.k.members, this.id, String(this.startedMs));
    this.handOver = true;
    await this.tick();
  }

  private setRole(role: Role, why: string): void {
    if (role === this.role) {
      // The lease taken again with a new token (it had expired under a late renewal): the
      // sink publishes under the new one, which consumers fence by.
      if (role === 'active' && this.token !== this.emittedToken) {
        this.emittedToken = this.token;
        this.o.log.warn({ token: this.token, why }, 'ha: active under a new fencing token');
        this.emit('role', role, this.token);
      }
      return;
    }
    const from = this.role;
    this.role = role;
    this.emittedToken = this.token;
    this.transitions++;
    const line = { from, to: role, token: this.token, holder: this.leaseHolder, why };
    if (role === 'degraded') this.o.log.error(line, 'ha: Redis unreachable, publishing without a lease (duplicates rather than loss)');
    else this.o.log.warn(line, `ha: now ${role}`);
    this.emit('role', role, this.token);
  }

  /**
   * Adopts the pair's sink key from Redis; where there is none (the first member, or a Redis
   * restarted empty) or it is damaged, offers this member's (a running member restores the
   * one it signs with) or a new one. Two offers at once: the first SET wins, and the loser
   * adopts it at once (it keeps its own key to verify what it signed before).
   */
  private async syncSinkKey(inRedis: string | null): Promise<void> {
    let key = inRedis;
    if (!isSinkKey(key)) {
      const offer = this.sinkKey ?? randomBytes(32).toString('hex');
      if (key === null) await this.redis.set(this.k.sinkKey, offer, 'NX');
      else await this.redis.set(this.k.sinkKey, offer);
      key = await this.redis.get(this.k.sinkKey);
      if (!isSinkKey(key)) throw new Error('the sink key in Redis is not one');
    }
    if (key === this.sinkKey) return;
    this.sinkKey = key;
    this.emit('sink-key', key);
  }

  /** The live member with the earliest start time that is not forced standby (ties: the smaller id). */
  private async preferred(): Promise<string | undefined> {
    const members = await this.redis.hgetall(this.k.members);
    const ids = Object.keys(members);
    if (ids.length === 0) return undefined;
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.exists(this.k.alive(id)).exists(this.k.standby(id));
    const r = (await pipe.exec()) ?? [];
    let best: { id: string; started: number } | undefined;
    ids.forEach((id, i) => {
      const alive = r[2 * i]?.[1] === 1;
      const standby = r[2 * i + 1]?.[1] === 1;
      if (!alive) {
        void this.redis.hdel(this.k.members, id).catch(() => undefined);
        return;
      }
      if (standby) return;
      const started = Number(members[id]);
      if (!best || started < best.started || (started === best.started && id < best.id)) best = { id, started };
    });
    return best?.id;
  }

  private async acquire(steal: boolean): Promise<boolean> {
    const at = performance.now();
    const r = (await this.redis.eval(ACQUIRE, 2, this.k.lease, this.k.fence, this.id, String(this.o.leaseTtlMs), String(this.token), steal ? '1' : '0')) as [number, string];
    if (r[0] !== 1) return false;
    this.token = Number(r[1]);
    this.leaseSureUntil = at + this.o.leaseTtlMs * HA_DEFAULTS.leaseSureFraction;
    this.leaseValue = `${this.id}|${this.token}`;
    this.leaseHolder = this.id;
    return true;
  }

  /**
   * Whether the sink may send now: degraded (Redis away, publishing without a lease by
   * design), or active with a lease that surely still holds (see leaseSureUntil).
   */
  mayPublish(): boolean {
    if (this.role === 'degraded') return true;
    return this.role === 'active' && this.leaseValue !== '' && performance.now() < this.leaseSureUntil;
  }

  /** One tick at a time: the timer's and the operator controls' are queued, never interleaved. */
  private tick(): Promise<void> {
    const t = this.chain.then(() => this.tickOnce());
    this.chain = t.catch(() => undefined);
    return t;
  }

  private async tickOnce(): Promise<void> {
    if (this.stopped) return;
    try {
      const ttl = this.o.leaseTtlMs;
      // Our own lease first: the renewal is what keeps the role.
      if (this.role === 'active' && this.leaseValue !== '') {
        const at = performance.now();
        const ok = (await this.redis.eval(RENEW, 1, this.k.lease, this.leaseValue, String(ttl))) === 1;
        if (!ok) this.leaseValue = '';
        else this.leaseSureUntil = at + ttl * HA_DEFAULTS.leaseSureFraction;
      }
      const [[, fresh]] = (await this.redis.multi()
        .hset(this.k.members, this.id, String(this.startedMs))
        .set(this.k.alive(this.id), '1', 'PX', ttl)
        .exec()) as [[Error | null, number], unknown];
      // hset answers 1 when the entry is new: first tick, or Redis lost it (restarted empty).
      if (fresh === 1 || !this.redisOk || this.registeredSinceMs === undefined) this.registeredSinceMs = Date.now();
      const [lease, force, standby, sinkKey] = await this.redis.mget(this.k.lease, this.k.force, this.k.standby(this.id), this.k.sinkKey);
      // Before any role: an active signs with the pair's key, a promotion verifies with it.
      await this.syncSinkKey(sinkKey ?? null);
      this.redisOk = true;
      this.lastRedisOkMs = Date.now();
      this.forced = force === this.id ? 'active' : standby !== null ? 'standby' : null;
      if (lease) {
        const [holder, tok] = lease.split('|');
        this.leaseHolder = holder ?? null;
        this.token = Math.max(this.token, Number(tok) || 0);
        this.leaseFreeSinceMs = undefined;
      } else {
        this.leaseHolder = null;
        this.leaseFreeSinceMs ??= Date.now();
      }
      const mine = lease !== null && lease === this.leaseValue;
      if (this.forced === 'standby') {
        if (mine) {
          this.setRole('standby', 'forced standby');
          await this.demote?.();
          await this.redis.eval(RELEASE, 1, this.k.lease, this.leaseValue);
        }
        this.leaseValue = '';
        if (mine) this.leaseHolder = null;
        this.setRole('standby', 'forced standby');
        return;
      }
      const handOver = this.handOver;
      this.handOver = false;
      if (mine && handOver && this.forced !== 'active') {
        const pref = await this.preferred();
        if (pref !== undefined && pref !== this.id) {
          this.setRole('standby', `start time refreshed: handing the role to ${pref}`);
          await this.demote?.();
          await this.redis.eval(RELEASE, 1, this.k.lease, this.leaseValue);
          this.leaseValue = '';
          this.leaseHolder = null;
          this.leaseFreeSinceMs = Date.now();
          return;
        }
      }
      if (mine) {
        this.setRole('active', 'lease held');
        return;
      }
      if (this.forced === 'active') {
        const from = this.leaseHolder;
        if (await this.acquire(true)) {
          // Taken from a live holder: it stops publishing at its next renewal (within TTL/4);
          // publish only after two of its renewal periods, so nothing is sent twice.
          if (from !== null && from !== this.id) await new Promise((r) => setTimeout(r, 2 * this.renewMs));
          this.setRole('active', 'forced active');
        } else {
          this.setRole('standby', 'forced active but the lease could not be taken');
        }
        return;
      }
      if (lease === null) {
        // The preferred member takes a free lease once the membership has settled (every live
        // member registered); anyone does once it has stayed free for two TTLs.
        const pref = await this.preferred();
        const settled = Date.now() - (this.registeredSinceMs ?? Date.now()) >= ttl;
        const freeLong = this.leaseFreeSinceMs !== undefined && Date.now() - this.leaseFreeSinceMs > 2 * ttl;
        if (((settled && (pref === this.id || pref === undefined)) || freeLong) && (await this.acquire(false))) {
          this.leaseFreeSinceMs = undefined;
          this.setRole('active', 'took the free lease');
          return;
        }
      }
      this.leaseValue = '';
      this.setRole('standby', lease ? `lease held by ${this.leaseHolder}` : 'another member is preferred');
    } catch (err) {
      if (this.stopped) return;
      this.redisOk = false;
      const downMs = Date.now() - this.lastRedisOkMs;
      if (downMs < this.o.leaseTtlMs) return;
      if (this.role === 'active' || this.role === 'degraded' || this.o.onRedisLoss === 'publish') {
        this.leaseValue = '';
        if (this.o.onRedisLoss === 'publish') this.setRole('degraded', `Redis unreachable for ${downMs} ms: ${(err as Error).message}`);
        else this.setRole('standby', `Redis unreachable for ${downMs} ms: ${(err as Error).message}`);
      }
    }
  }
}
