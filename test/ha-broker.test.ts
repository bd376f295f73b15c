/**
 * Active/standby across Kafka broker restarts, with real processes: two recorders poll the
 * same simulator; the broker is stopped and started again while both run, and the active is
 * killed with SIGKILL while the broker is down, just after it is back, and a little later.
 * Each time the other becomes active within 2 s (roles live in Redis, which stays up), and
 * the sink topic, read by a consumer of its own, holds every batch exactly once, in order.
 * The broker is the file's own (it is restarted); Redis is the run's shared one. Kill
 * moments: HA_BROKER_SEED (printed).
 */
import { describe, expect, it } from 'vitest';
import { checkExactlyOnce, ha, kill9, startRecorder, stop, until, useCluster, type Recorder } from './helpers/ha-cluster.js';
import { uniqueName } from './helpers/peers.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const FAILOVER_MAX_MS = 2000;
const cluster = useCluster({ leaseTtlMs: 1000, simSeed: 11, privateKafka: true });

const step = (what: string): void => {
  if (process.env.HA_DEBUG) console.log('STEP', new Date().toISOString(), what);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('active/standby across broker restarts', () => {
  it('the active killed while the broker is down, just after it is back, and later: a new active within 2 s, every batch exactly once, in order', async () => {
    const peers = cluster();
    const { broker } = peers;
    const dir = await tmpDir();
    const topic = 'ha-broker-restart';
    const name = uniqueName('brokers');
    const random = rng(scheduleSeed('HA_BROKER_SEED', 'ha-broker.test kill moments'));
    const rec = new Map<string, Recorder>();
    rec.set('a', await startRecorder(peers, dir, 'a', topic, name));
    await until(async () => (await ha(rec.get('a') as Recorder)).publishing || undefined, 20_000, 'a active');
    rec.set('b', await startRecorder(peers, dir, 'b', topic, name));
    await until(async () => { const h = await ha(rec.get('b') as Recorder); return h.role === 'standby' && h.buffer_depth > 0 || undefined; }, 20_000, 'b standby with a buffer');
    // When the active is killed, relative to the broker's restart: during the outage, right after, later.
    const moments: Array<{ when: 'down' | 'up'; delayMs: number }> = [
      { when: 'down', delayMs: 500 },
      { when: 'up', delayMs: 0 },
      { when: 'up', delayMs: 300 + Math.floor(random() * 1500) },
      { when: 'up', delayMs: 3000 },
    ];
    for (const m of moments) {
      await sleep(1000);
      const active = [...rec.values()];
      const states = await Promise.all(active.map((r) => ha(r)));
      const victim = active[states.findIndex((s) => s.role === 'active')];
      expect(victim, 'one recorder is active before the broker restart').toBeDefined();
      const v = victim as Recorder;
      const other = active.find((r) => r !== v) as Recorder;
      step(`round ${m.when}+${m.delayMs}: stopping the broker, active ${v.id}`);
      await broker.stop();
      step('broker stopped');
      if (m.when === 'down') await sleep(m.delayMs);
      else {
        await broker.restart();
        await sleep(m.delayMs);
      }
      const t0 = Date.now();
      await kill9(v);
      step(`killed ${v.id}`);
      await until(async () => (await ha(other)).role === 'active' || undefined, FAILOVER_MAX_MS + 500, `${other.id} active (killed ${m.when} + ${m.delayMs} ms)`);
      expect(Date.now() - t0).toBeLessThan(FAILOVER_MAX_MS);
      step(`${other.id} active`);
      if (m.when === 'down') await broker.restart();
      await until(async () => (await ha(other)).publishing || undefined, 60_000, `${other.id} publishing after the restart`);
      step(`${other.id} publishing`);
      const back = await startRecorder(peers, dir, v.id, topic, name);
      rec.set(v.id, back);
      await until(async () => { const x = await ha(back); return x.role === 'standby' && x.buffer_depth > 0 || undefined; }, 30_000, `${v.id} back as standby`);
    }
    step('rounds done');
    const states = await Promise.all([...rec.values()].map(async (r) => [r, await ha(r)] as const));
    const order = states.sort((x, y) => Number(x[1].publishing) - Number(y[1].publishing)).map(([r]) => r);
    for (const r of order) await stop(r);
    const n = await checkExactlyOnce(broker, topic, [...rec.values()].map((r) => r.archive));
    expect(n).toBeGreaterThan(50);
  }, 300_000);
});
