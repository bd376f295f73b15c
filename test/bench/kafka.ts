/**
 * Kafka benchmark: `npm run bench:kafka [-- --messages 200000 --batches 20000 --kills 10]`.
 * Starts a real single-node broker (scripts/kafka.sh) and Redis (scripts/redis.sh) and
 * prints one JSON object:
 *  - source: a topic pre-filled with `messages` JSON messages (5 fields each, exploded to
 *    5 updates, 1000 keys), consumed by a recorder from the start until the lag is drained
 *    (every offset committed, so every batch flushed): messages/s and updates/s;
 *  - sink: `batches` batches of 8 updates written to a recorder, published to a topic
 *    (msgpack, one message per batch): batches/s until the last is acknowledged;
 *  - failover: two `tapedeck serve` processes with active/standby (lease TTL 1 s) on the
 *    in-process simulator; the active is killed with SIGKILL `kills` times at random
 *    moments; gap = kill to the other publishing (GET /api/v1/ha), p50/p99/max in ms; and
 *    whether a consumer of the topic found every batch exactly once, in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { request } from 'undici';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';
import { Simulator } from '../../server/sim/simulator.js';
import type { KafkaSource } from '../../server/sources/kafka.js';
import { createTopic, produce, readTopic, startKafka } from '../helpers/kafka.js';
import { startRedis } from '../helpers/redis.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    batches: { type: 'string', default: '20000' },
    kills: { type: 'string', default: '10' },
  },
});
const MESSAGES = Number(args.messages);
const BATCHES = Number(args.batches);
const KILLS = Number(args.kills);

async function until<T>(f: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve(f()).catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number);
};

const work = await mkdtemp(join(tmpdir(), 'tapedeck-bench-kafka-'));
const [broker, redis] = await Promise.all([startKafka(), startRedis()]);
const silent = pino({ level: 'silent' });
const out: Record<string, unknown> = { messages: MESSAGES, batches: BATCHES, kills: KILLS };
try {
  // Source: pre-filled topic, drained into the archive.
  {
    const topic = 'bench-source';
    await createTopic(broker.kafka, topic);
    const msgs = Array.from({ length: MESSAGES }, (_, i) => ({ key: `dev-${i % 1000}`, value: JSON.stringify({ cpu: i % 100, mem: i % 77, rx: i, tx: i * 2, up: true }) }));
    await produce(broker.kafka, topic, msgs);
    const srv = await startServer(resolveConfig({
      archive_directory: join(work, 'source'),
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'k', type: 'kafka', brokers: [broker.brokers], topics: [topic], explode: true }],
    }), { logger: silent });
    const t0 = performance.now();
    const src = srv.sources[0] as KafkaSource;
    await until(() => src.stats.messages >= MESSAGES && src.lag().length > 0 && src.lag().every((l) => l.lag === 0), 600_000, 'the source to drain');
    const s = (performance.now() - t0) / 1000;
    out.source = { seconds: Number(s.toFixed(2)), messagesPerSec: Math.round(MESSAGES / s), updatesPerSec: Math.round((srv.recorder?.stats.updates ?? 0) / s), commits: src.stats.commits };
    await srv.close();
  }
  // Sink: batches written to the recorder, published.
  {
    const topic = 'bench-sink';
    const srv = await startServer(resolveConfig({
      archive_directory: join(work, 'sink'),
      record: { spec: ['/**'], flush_interval: '1s' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'push', type: 'push' }],
      kafka_sink: { brokers: [broker.brokers], topic },
    }), { logger: silent });
    const sink = srv.recorder?.sink('push');
    const t0 = performance.now();
    for (let b = 0; b < BATCHES; b++) {
      const updates: Array<[string, number]> = [];
      for (let j = 0; j < 8; j++) updates.push([`/bench/sw-${b % 64}/m${j}`, b + j]);
      await sink?.write(updates);
      if (b % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await until(() => (srv.ha?.view().sink?.published ?? 0) >= BATCHES, 600_000, 'the sink to publish');
    const s = (performance.now() - t0) / 1000;
    out.sink = { seconds: Number(s.toFixed(2)), batchesPerSec: Math.round(BATCHES / s), dropped: srv.ha?.view().sink?.dropped ?? 0 };
    await srv.close();
  }
  // Failover.
  {
    const sim = await Simulator.start({ port: 0, switches: 4, intervalMs: 250, fault500Pct: 0, faultSlowMs: 0, seed: 7 });
    const topic = 'bench-failover';
    const main = new URL('../../clients/cli/main.ts', import.meta.url).pathname;
    const procs = new Set<ChildProcess>();
    type Rec = { id: string; url: string; child: ChildProcess; exited: Promise<unknown> };
    const start = async (id: string): Promise<Rec> => {
      const cfg = join(work, `cfg-${id}.json`);
      await writeFile(cfg, JSON.stringify({
        archive_directory: join(work, `ha-${id}`),
        record: { spec: ['/**'], flush_interval: '100ms' },
        publish: { bind: '127.0.0.1:0' },
        sources: [{ name: 'fabric', type: 'csv-matrix', url: `${sim.url}/counters`, prefix: '/fabric', interval: '20ms' }],
        kafka_sink: { brokers: [broker.brokers], topic },
        ha: { redis: redis.url, cluster: 'bench', id, lease_ttl: '1s', buffer_window: '3s' },
      }));
      const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'ignore'] });
      procs.add(child);
      const exited = new Promise((r) => child.once('exit', r));
      const url = await new Promise<string>((resolve, reject) => {
        child.once('exit', () => reject(new Error(`recorder ${id} exited before listening`)));
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
          try {
            const j = JSON.parse(l) as { msg?: string; url?: string };
            if (j.msg === 'listening' && j.url) resolve(j.url);
          } catch {
            // not a log line
          }
        });
      });
      return { id, url, child, exited };
    };
    const ha = async (r: Rec): Promise<{ role: string; publishing: boolean; buffer_depth: number }> =>
      (await (await request(`${r.url}/api/v1/ha`, { headersTimeout: 1000 })).body.json()) as { role: string; publishing: boolean; buffer_depth: number };
    try {
      const recs = new Map<string, Rec>([['a', await start('a')]]);
      await until(async () => (await ha(recs.get('a') as Rec)).publishing, 30_000, 'a active');
      recs.set('b', await start('b'));
      await until(async () => { const h = await ha(recs.get('b') as Rec); return h.role === 'standby' && h.buffer_depth > 0; }, 30_000, 'b standby');
      const gaps: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 1300));
        let active: Rec | undefined;
        let other: Rec | undefined;
        for (const r of recs.values()) if ((await ha(r)).publishing) active = r; else other = r;
        if (!active || !other) throw new Error('no single active recorder');
        const t0 = performance.now();
        active.child.kill('SIGKILL');
        await active.exited;
        const o = other;
        await until(async () => (await ha(o)).publishing, 30_000, 'takeover');
        gaps.push(performance.now() - t0);
        const back = await start(active.id);
        recs.set(active.id, back);
        await until(async () => { const h = await ha(back); return h.role === 'standby' && h.buffer_depth > 0; }, 30_000, 'back as standby');
      }
      for (const r of recs.values()) {
        r.child.kill('SIGTERM');
        await r.exited;
      }
      const seqs = (await readTopic(broker.kafka, topic)).map((m) => Number(m.headers['tpd-seq']));
      let inOrderNoDuplicate = true;
      for (let i = 1; i < seqs.length; i++) if ((seqs[i] as number) <= (seqs[i - 1] as number)) inOrderNoDuplicate = false;
      out.failover = {
        leaseTtlMs: 1000,
        gapMs: { p50: Math.round(pct(gaps, 0.5)), p99: Math.round(pct(gaps, 0.99)), max: Math.round(Math.max(...gaps)) },
        published: seqs.length,
        inOrderNoDuplicate,
      };
    } finally {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await sim.close();
    }
  }
} finally {
  await Promise.all([broker.destroy(), redis.destroy()]);
  await rm(work, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
