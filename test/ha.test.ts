/**
 * Active/standby with real processes: two recorders (`tapedeck serve`) poll the same
 * simulator, elect an active through a real Redis, and only the active publishes to a real
 * Kafka topic. The active is killed with SIGKILL at random moments; each time the other is
 * active within 2 s, and a consumer of the topic finds every batch exactly once, in order.
 * Also: a restarted old active stays standby, forced roles (REST and signals), Redis lost
 * and back. The broker and Redis are the run's shared ones (names made unique), except the
 * Redis that is lost and back, the test's own. Kill moments: HA_SEED (printed).
 */
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { checkExactlyOnce as exactlyOnce, control, ha, kill9, privateRedis, startRecorder as start, stop, until, useCluster, type ClusterPeers, type Recorder } from './helpers/ha-cluster.js';
import { readTopic } from './helpers/kafka.js';
import { uniqueName } from './helpers/peers.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

/** Kill to the other recorder publishing: the lease TTL plus a margin. */
const FAILOVER_MAX_MS = 2000;

const peers = useCluster({ leaseTtlMs: 1000, simSeed: 7 });
const startRecorder = (dir: string, id: string, topic: string, cluster: string, sources?: unknown[], on: ClusterPeers = peers()): Promise<Recorder> => start(on, dir, id, topic, cluster, sources);
const checkExactlyOnce = (topic: string, archives: string[], opts: { allowDuplicates?: boolean } = {}): Promise<number> => exactlyOnce(peers().broker, topic, archives, opts);

describe('active/standby', () => {
  it('SIGKILL of the active at random moments: the other is active within 2 s; the topic holds every batch exactly once, in order; a restarted old active stays standby', async () => {
    const dir = await tmpDir();
    const topic = uniqueName('ha-failover');
    const cluster = uniqueName('failover');
    const random = rng(scheduleSeed('HA_SEED', 'ha.test kill moments'));
    const ids = ['a', 'b'];
    const rec = new Map<string, Recorder>();
    rec.set('a', await startRecorder(dir, 'a', topic, cluster));
    await until(async () => (await ha(rec.get('a') as Recorder)).publishing || undefined, 20_000, 'a active');
    rec.set('b', await startRecorder(dir, 'b', topic, cluster));
    await until(async () => { const h = await ha(rec.get('b') as Recorder); return h.role === 'standby' && h.buffer_depth > 0 || undefined; }, 20_000, 'b standby with a buffer');
    const KILLS = 10;
    const gaps: number[] = [];
    let token = (await ha(rec.get('a') as Recorder)).fencing_token;
    for (let k = 0; k < KILLS; k++) {
      // A random moment, in 0.2 to 1.5 s.
      const wait = 200 + Math.floor(random() * 1300);
      const deadline = Date.now() + wait;
      await until(async () => Date.now() >= deadline || undefined, wait + 1000, 'the random moment');
      let activeId: string | undefined;
      for (const id of ids) if ((await ha(rec.get(id) as Recorder)).publishing) activeId = id;
      expect(activeId).toBeDefined();
      const victim = rec.get(activeId as string) as Recorder;
      const other = rec.get(ids.find((i) => i !== activeId) as string) as Recorder;
      const t0 = Date.now();
      await kill9(victim);
      const h = await until(async () => { const x = await ha(other); return x.publishing ? x : undefined; }, 10_000, `${other.id} to take over`);
      gaps.push(Date.now() - t0);
      expect(h.fencing_token).toBeGreaterThan(token);
      token = h.fencing_token;
      // The killed one comes back and stays standby: the lease is held, and it is now the newer member.
      const back = await startRecorder(dir, victim.id, topic, cluster);
      rec.set(victim.id, back);
      await until(async () => { const x = await ha(back); return x.role === 'standby' && x.buffer_depth > 0 && x.lease_holder === other.id || undefined; }, 20_000, `${victim.id} back as standby`);
      expect((await ha(other)).publishing).toBe(true);
    }
    for (const g of gaps) expect(g, `failover gaps ${gaps.join(", ")} ms`).toBeLessThan(FAILOVER_MAX_MS);
    // Stop the standby first, then the active (which publishes what it queued before it goes).
    const [first, second] = (await ha(rec.get('a') as Recorder)).publishing ? ['b', 'a'] : ['a', 'b'];
    await stop(rec.get(first as string) as Recorder);
    await stop(rec.get(second as string) as Recorder);
    const n = await checkExactlyOnce(topic, ids.map((id) => (rec.get(id) as Recorder).archive));
    expect(n).toBeGreaterThan(10);
  }, 240_000);

  it('forced roles through REST and signals; release; refresh timestamp; still exactly once', async () => {
    const dir = await tmpDir();
    const topic = uniqueName('ha-forced');
    const cluster = uniqueName('forced');
    const a = await startRecorder(dir, 'a', topic, cluster);
    await until(async () => (await ha(a)).publishing || undefined, 20_000, 'a active');
    const b = await startRecorder(dir, 'b', topic, cluster);
    await until(async () => { const h = await ha(b); return h.role === 'standby' && h.buffer_depth > 0 || undefined; }, 20_000, 'b standby');
    // REST: force b active: it takes the lease from the live a.
    expect(await control(b, 'force_active')).toBe(200);
    await until(async () => (await ha(b)).publishing || undefined, 5_000, 'b forced active');
    await until(async () => (await ha(a)).role === 'standby' || undefined, 5_000, 'a standby');
    expect((await ha(b)).forced).toBe('active');
    // Signals: SIGUSR2 forces b standby (it releases the lease; a takes it), SIGHUP releases.
    b.child.kill('SIGUSR2');
    await until(async () => (await ha(a)).publishing || undefined, 5_000, 'a active after b forced standby');
    await until(async () => { const h = await ha(b); return h.forced === 'standby' && h.role === 'standby' || undefined; }, 5_000, 'b forced standby');
    b.child.kill('SIGHUP');
    await until(async () => (await ha(b)).forced === null || undefined, 5_000, 'b released');
    // SIGUSR1 forces b active again.
    b.child.kill('SIGUSR1');
    await until(async () => (await ha(b)).publishing || undefined, 5_000, 'b forced active by signal');
    expect(await control(b, 'release')).toBe(200);
    // b, released, keeps the lease it holds: nobody steals a held lease.
    expect((await ha(b)).publishing).toBe(true);
    // Refreshing b's timestamp makes a (older) preferred: b hands the role over (seed 002).
    expect(await control(b, 'refresh_timestamp')).toBe(200);
    await until(async () => (await ha(a)).publishing || undefined, 5_000, 'a active after b refreshed its timestamp');
    expect((await ha(b)).role).toBe('standby');
    // SIGWINCH does the same from a: b takes the role back.
    a.child.kill('SIGWINCH');
    await until(async () => (await ha(b)).publishing || undefined, 5_000, 'b active after a refreshed its timestamp by signal');
    await until(async () => (await ha(a)).role === 'standby' || undefined, 5_000, 'a standby');
    await stop(a);
    await stop(b);
    await checkExactlyOnce(topic, [a.archive, b.archive]);
  }, 120_000);

  it('Kafka sources on both recorders (own groups), the active killed: each input offset published once, in order', async () => {
    const dir = await tmpDir();
    const input = uniqueName('ha-input');
    const topic = uniqueName('ha-kafka-out');
    const cluster = uniqueName('kafkasrc');
    const { createTopic } = await import('./helpers/kafka.js');
    await createTopic(peers().broker.kafka, input);
    const src = (id: string): unknown[] => [{ name: 'in', type: 'kafka', brokers: [peers().broker.brokers], topics: [input], group_id: `${cluster}-${id}`, batch: 'message', session_timeout: '6s' }];
    const a = await startRecorder(dir, 'a', topic, cluster, src('a'));
    await until(async () => (await ha(a)).publishing || undefined, 20_000, 'a active');
    const b = await startRecorder(dir, 'b', topic, cluster, src('b'));
    await until(async () => (await ha(b)).role === 'standby' || undefined, 20_000, 'b standby');
    // A producer of its own, one message every 10 ms until told to stop; failures while the broker is down are retried.
    const { Kafka, logLevel } = await import('kafkajs');
    const producer = new Kafka({ brokers: [peers().broker.brokers], logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100 } }).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let producing = true;
    let sent = 0;
    const loop = (async () => {
      while (producing) {
        try {
          await producer.send({ topic: input, messages: [{ key: 'k', value: JSON.stringify(sent) }], acks: -1 });
          sent++;
        } catch {
          // a failed send is sent again
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await until(async () => sent > 200 || undefined, 20_000, 'messages flowing');
    await kill9(a);
    await until(async () => (await ha(b)).publishing || undefined, FAILOVER_MAX_MS, 'b takes over');
    const afterKill = sent;
    await until(async () => sent > afterKill + 100 || undefined, 20_000, 'messages flowing after the failover');
    producing = false;
    await loop;
    await producer.disconnect();
    const admin = peers().broker.kafka.admin();
    await admin.connect();
    const total = Number((await admin.fetchTopicOffsets(input).finally(() => admin.disconnect()))[0]?.high);
    expect(total).toBeGreaterThanOrEqual(sent);
    await until(async () => { const h = await ha(b); return h.last_published?.seq === String(total - 1) || undefined; }, 30_000, 'the last message published');
    await stop(b);
    const msgs = await readTopic(peers().broker.kafka, topic);
    const seqs = msgs.map((m) => Number(m.headers['tpd-seq']));
    expect(msgs.every((m) => m.headers['tpd-stream'] === `in:${input}:0`)).toBe(true);
    // Every offset of the input exactly once, in order, from the first the active published on.
    const first = seqs[0] as number;
    expect(seqs).toEqual(Array.from({ length: total - first }, (_, i) => first + i));
  }, 90_000);

  it('Redis stopped: both publish (degraded, duplicates rather than loss), /ready and metrics say so; Redis back: one active again', async () => {
    const dir = await tmpDir();
    const topic = uniqueName('ha-redis-loss');
    const redis = await privateRedis();
    const on = { ...peers(), redis };
    const a = await startRecorder(dir, 'a', topic, 'redisloss', undefined, on);
    await until(async () => (await ha(a)).publishing || undefined, 20_000, 'a active');
    const b = await startRecorder(dir, 'b', topic, 'redisloss', undefined, on);
    await until(async () => (await ha(b)).role === 'standby' || undefined, 20_000, 'b standby');
    await redis.stop();
    await until(async () => { const [x, y] = [await ha(a), await ha(b)]; return x.role === 'degraded' && y.role === 'degraded' && x.publishing && y.publishing || undefined; }, 10_000, 'both degraded');
    const ready = await request(`${b.url}/ready`);
    expect(ready.statusCode).toBe(503);
    expect(await ready.body.text()).toMatch(/Redis unreachable/);
    const metrics = await (await request(`${b.url}/metrics`)).body.text();
    expect(metrics).toMatch(/tapedeck_ha_redis_up 0/);
    expect(metrics).toMatch(/tapedeck_ha_role\{role="degraded"\} 1/);
    await redis.restart();
    // The longest-running recorder (a) is active again, even if b reaches Redis first.
    await until(async () => {
      const [x, y] = [(await ha(a)).role, (await ha(b)).role];
      return x === 'active' && y === 'standby' || undefined;
    }, 15_000, 'a active, b standby again');
    await stop(a);
    await stop(b);
    await checkExactlyOnce(topic, [a.archive, b.archive], { allowDuplicates: true });
  }, 120_000);
});
