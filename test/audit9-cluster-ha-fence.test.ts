/**
 * Active/standby (docs/ha.md) when the fencing-token key in Redis is not a number (written
 * by hand, damaged): the acquire script failed on it at every tick, and since the tick had
 * just read Redis that failure never counted as Redis lost: no member ever became active,
 * nobody published, in silence. Such a fence now counts as 0 under the highest token seen.
 * The run's real Redis; two coordinators.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HaCoordinator } from '../server/ha/coordinator.js';
import { PEER_START_MAX_MS, sharedRedis, uniqueName } from './helpers/peers.js';
import type { RedisPeer } from './helpers/redis.js';
import { until } from './helpers/until.js';

let redis: RedisPeer;
beforeAll(async () => {
  redis = await sharedRedis();
}, PEER_START_MAX_MS);

describe('a fencing-token key that is not a number', () => {
  it('one member becomes active, with a token above every token seen', async () => {
    const cluster = uniqueName('audit9-ha');
    const ctl = new Redis(redis.url);
    onTestFinished(() => ctl.disconnect());
    await ctl.set(`tapedeck:${cluster}:fence`, 'not-a-token');
    const members = ['r1', 'r2'].map((id) => new HaCoordinator({ redisUrl: redis.url, cluster, id, leaseTtlMs: 300, onRedisLoss: 'standby', log: pino({ level: 'silent' }) }));
    for (const m of members) {
      await m.start();
      onTestFinished(() => m.stop());
    }
    await until(() => members.filter((m) => m.role === 'active').length === 1, 5_000, 'one member active');
    expect(members.filter((m) => m.role === 'standby')).toHaveLength(1);
    const active = members.find((m) => m.role === 'active') as HaCoordinator;
    expect(active.token).toBeGreaterThan(0);
    expect(await ctl.get(`tapedeck:${cluster}:fence`)).toBe(String(active.token));
  });
});
