/**
 * Cluster recording benchmark (docs/cluster.md, "Capacity"):
 * `node --import tsx test/bench/cluster-record.ts [--messages 200000 --warmup 100000 --shards 1,2,3 --min-bytes B --max-wait D]`.
 * Starts a real single-node Kafka broker and Redis, then for each N: N shard processes
 * (`tapedeck serve`, dist/ rebuilt first) of a fresh cluster consume one 6-partition topic
 * in the cluster's consumer group, with the exactly-once fence (server/cluster/kafka-fence.ts).
 * Once the group is stable, `warmup` messages are recorded first and not counted (each shard
 * process compiles its hot paths once, a fixed cost per process that a short run would
 * charge N times to the same updates; `--warmup 0` measures it in), then `messages` JSON
 * messages (5 fields, exploded to 5 updates;
 * 1000 keys) are produced; when every offset is committed each shard's CPU time
 * (tapedeck_process_cpu_seconds_total) and recorded updates (tapedeck_updates_written_total
 * minus the one marker per batch) are read from its /metrics, as deltas over the run.
 * Prints one JSON object: per N, CPU-seconds per million recorded updates (all shards'
 * CPU over all shards' updates, and per shard), the same less each shard's idle CPU
 * (measured over 5 s before the run, times the run's wall time: heartbeats, fetch polls,
 * lease renewals, which a longer run on a busier machine pays more of), wall time, and the
 * growth of both from the first N to the last (target: at most +10 %). This machine has 2 cores: the figure is per-update
 * cost, which is what scales, not an aggregate rate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { buildDist, ROOT } from '../helpers/build-dist.js';
import { createTopic, produce, startKafka, type KafkaBroker } from '../helpers/kafka.js';
import { startRedis } from '../helpers/redis.js';
import { freePort } from '../helpers/prometheus.js';

const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '200000' }, warmup: { type: 'string', default: '100000' }, shards: { type: 'string', default: '1,2,3' }, 'min-bytes': { type: 'string' }, 'max-wait': { type: 'string' } } });
/** The kafka source's fetch options when given (else its cluster defaults: 256 KiB, 1 s). */
const FETCH = { ...(args['min-bytes'] !== undefined ? { fetch_min_bytes: Number(args['min-bytes']) } : {}), ...(args['max-wait'] !== undefined ? { fetch_max_wait: args['max-wait'] } : {}) };
const MESSAGES = Number(args.messages);
const WARMUP = Number(args.warmup);
const SHARD_COUNTS = (args.shards ?? '1,2,3').split(',').map(Number);
const PARTITIONS = 6;
const KEYS = 1000;
const FIELDS = 5;
/** How long each run's shards are watched idle, to know their fixed cost per second. */
const IDLE_WINDOW_MS = 5_000;

const round = (x: number): number => Number(x.toFixed(3));

async function until<T>(f: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Proc { url: string; child: ChildProcess; exited: Promise<number | null> }

async function startShard(dir: string, cluster: string, id: string, redisUrl: string, brokers: string, topic: string): Promise<Proc> {
  const port = await freePort();
  const cfg = join(dir, `cfg-${cluster}-${id}.json`);
  await writeFile(cfg, JSON.stringify({
    archive_directory: join(dir, `archive-${cluster}-${id}`),
    record: { spec: ['/**'], flush_interval: '1s' },
    publish: { bind: `127.0.0.1:${port}`, rate_limit: null },
    log_level: 'warn',
    sources: [{ name: 'k', type: 'kafka', brokers: [brokers], topics: [topic], explode: true, session_timeout: '6s', ...FETCH }],
    cluster: { name: cluster, shard: id, redis: redisUrl, lease_ttl: '2s' },
  }));
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'tapedeck.js'), 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', () => undefined);
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/health`)).ok, 60_000, `shard ${id} listening`);
  return { url, child, exited };
}

async function metrics(url: string): Promise<{ cpuS: number; updates: number; batches: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { cpuS: get('tapedeck_process_cpu_seconds_total'), updates: get('tapedeck_updates_written_total'), batches: get('tapedeck_batches_written_total') };
}

async function groupStable(broker: KafkaBroker, group: string, members: number): Promise<boolean> {
  const admin = broker.kafka.admin();
  await admin.connect();
  try {
    const d = await admin.describeGroups([group]);
    const g = d.groups[0];
    return g?.state === 'Stable' && g.members.length === members;
  } finally {
    await admin.disconnect();
  }
}

async function caughtUp(broker: KafkaBroker, group: string, topic: string): Promise<boolean> {
  const admin = broker.kafka.admin();
  await admin.connect();
  try {
    const [ends, got] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
    const committed = new Map((got[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
    return ends.every((e) => committed.get(e.partition) === e.high);
  } finally {
    await admin.disconnect();
  }
}

function payload(i: number): string {
  const o: Record<string, number> = {};
  for (let f = 0; f < FIELDS; f++) o[`f${f}`] = (i * 7 + f * 13) % 1000 + f / 10;
  return JSON.stringify(o);
}

await buildDist();
const work = await mkdtemp(join(tmpdir(), 'tapedeck-bench-cluster-'));
const [broker, redis] = await Promise.all([startKafka(), startRedis()]);
const runs: Array<Record<string, unknown>> = [];
try {
  for (const n of SHARD_COUNTS) {
    const cluster = `bench-${n}-${process.pid}`;
    const topic = `cluster-bench-${n}-${process.pid}`;
    await createTopic(broker.kafka, topic, PARTITIONS);
    const shards = await Promise.all(Array.from({ length: n }, (_, i) => startShard(work, cluster, `s${i + 1}`, redis.url, broker.brokers, topic)));
    const group = `tapedeck-${cluster}-k`;
    await until(() => groupStable(broker, group, n), 120_000, `${n} shards in the group`);
    if (WARMUP > 0) {
      await produce(broker.kafka, topic, Array.from({ length: WARMUP }, (_, i) => ({ key: `dev-${i % KEYS}`, value: payload(i) })));
      await until(() => caughtUp(broker, group, topic), 600_000, 'the warm-up recorded');
    }
    // The shards' idle cost (heartbeats, fetch polls, lease renewals, timers), per second.
    const idle0 = await Promise.all(shards.map((s) => metrics(s.url)));
    const idleStart = Date.now();
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const idle1 = await Promise.all(shards.map((s) => metrics(s.url)));
    const idleS = (Date.now() - idleStart) / 1000;
    const before = idle1;
    const t0 = Date.now();
    await produce(broker.kafka, topic, Array.from({ length: MESSAGES }, (_, i) => ({ key: `dev-${i % KEYS}`, value: payload(i) })));
    await until(() => caughtUp(broker, group, topic), 600_000, 'every message recorded');
    const wallS = (Date.now() - t0) / 1000;
    const after = await Promise.all(shards.map((s) => metrics(s.url)));
    const per = shards.map((_, i) => {
      const a = after[i] as Awaited<ReturnType<typeof metrics>>;
      const b = before[i] as Awaited<ReturnType<typeof metrics>>;
      const idleRate = ((idle1[i]?.cpuS ?? 0) - (idle0[i]?.cpuS ?? 0)) / idleS;
      const batches = a.batches - b.batches;
      const updates = a.updates - b.updates - batches;
      const cpuS = a.cpuS - b.cpuS;
      const marginal = cpuS - idleRate * wallS;
      return {
        cpuS: round(cpuS), idleCpuSPerS: round(idleRate), updates, batches,
        cpuSPerMillionUpdates: updates > 0 ? round(cpuS / updates * 1e6) : null,
        marginalCpuSPerMillionUpdates: updates > 0 ? round(marginal / updates * 1e6) : null,
      };
    });
    const cpuS = per.reduce((x, p) => x + p.cpuS, 0);
    const idleCpuS = per.reduce((x, p) => x + p.idleCpuSPerS * wallS, 0);
    const updates = per.reduce((x, p) => x + p.updates, 0);
    const batches = per.reduce((x, p) => x + p.batches, 0);
    runs.push({ shards: n, wallS, updates, updatesPerBatch: round(updates / batches), cpuSPerMillionUpdates: round(cpuS / updates * 1e6), marginalCpuSPerMillionUpdates: round((cpuS - idleCpuS) / updates * 1e6), perShard: per });
    for (const s of shards) s.child.kill('SIGTERM');
    await Promise.all(shards.map((s) => s.exited));
  }
  const growth = (key: string): number => {
    const first = runs[0]?.[key] as number;
    const last = runs[runs.length - 1]?.[key] as number;
    return round((last / first - 1) * 100);
  };
  console.log(JSON.stringify({
    bench: 'cluster-record',
    messages: MESSAGES,
    warmupMessages: WARMUP,
    fetch: Object.keys(FETCH).length > 0 ? FETCH : 'cluster defaults',
    updatesPerMessage: FIELDS,
    partitions: PARTITIONS,
    runs,
    growthFirstToLastPct: growth('cpuSPerMillionUpdates'),
    marginalGrowthFirstToLastPct: growth('marginalCpuSPerMillionUpdates'),
    targetGrowthPctMax: 10,
    loadavg1m: loadavg()[0],
  }));
} finally {
  await broker.destroy();
  await redis.destroy();
  await rm(work, { recursive: true, force: true });
}
