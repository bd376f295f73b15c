/**
 * Remote-write benchmark, Tapedeck side by side with a real Prometheus on this machine:
 * `npm run bench:prom-write [-- --series 10000 --scrapes 60 --per-request 2000 --sides tapedeck,prometheus --acks durable,memory --sidecars on --compact live]`.
 *
 * Load: SERIES series with realistic label sets (node/SNMP-style: 20 metric names, 100
 * instances, job, device or ifName), scraped SCRAPES times 15 s apart (counters that grow by
 * whole numbers, gauges with two decimals), cut into WriteRequests of PER_REQUEST samples
 * as Prometheus' queue does, encoded with the code generated from the upstream .proto and
 * snappy-compressed before any clock starts. One sender posts them one after another (a
 * remote_write queue with one shard; Tapedeck needs time order, see docs/prometheus.md).
 *
 * - Tapedeck: a real server in a child process (this file with --serve) with a
 *   remote_write source, once with ?ack=durable (the default) and once with ?ack=memory
 *   (final flush included in the time); bytes per sample = the archive directory's size
 *   after the flush (segment files, catalog and all) / samples. Then (`--sidecars on`, the
 *   default; not timed) the file is rotated and its per-series sidecar built, as the server
 *   does for every sealed file: `bytes_per_sample_with_sidecars` adds the sidecar's bytes
 *   (the archive's bytes as measured before the rotation, plus the sidecar: a rotation only
 *   renames the file), and `sidecar` gives its bytes and build seconds.
 * - Prometheus 2.42 (/usr/bin/prometheus --web.enable-remote-write-receiver): the same
 *   bodies to its /api/v1/write; bytes per sample = the size of the block a TSDB snapshot
 *   (POST /api/v1/admin/tsdb/snapshot, head included) writes, i.e. the compacted on-disk
 *   form of exactly these samples, / samples; its WAL size is printed beside it.
 * - `--compact live` (the default, with the sidecars; not timed with the ingest): the server
 *   compacts the file its rotation sealed, under its live readers (storage/live-compact.ts,
 *   paced as in production), then builds its sidecar (version 5); `after_compaction` gives
 *   the bytes then, with and without the sidecar, the server still running, and
 *   `bytes_ratio_compacted_with_sidecars` their ratio to Prometheus'. `--compact offline`:
 *   the server (which does not compact) is stopped, `tapedeck compact` runs on the archive
 *   (storage/compact-archive.ts) and a server started again builds the sidecar. `--compact
 *   off`: the file stays as recorded, with a version-4 sidecar (`bytes_per_sample_with_sidecars`).
 * `where` says where each Tapedeck archive's bytes are: the catalog's database, WAL and
 * shared memory, and the segment files by frame type (stored and raw payload bytes, frame
 * headers apart). `--sides tapedeck` skips Prometheus, `--acks memory` one of the two runs.
 * `run_cpu_ms` is the server's CPU (user + system) from before the first request to after
 * the final flush, start-up left out; `samples_per_cpu_s` the samples over it.
 * Prints one JSON object.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { pino } from 'pino';
import snappy from 'snappy';
import { Pool } from 'undici';
import { WriteRequestSchema } from '../../protocol/prompb/gen/remote_pb.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { CATALOG_FILE } from '../../storage/catalog.js';
import { FRAME_HEADER_BYTES, decodeFrameHeader } from '../../storage/codec/frame.js';
import { HEADER_BYTES } from '../../storage/codec/header.js';
import { compactArchive } from '../../storage/compact-archive.js';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    series: { type: 'string', default: '10000' },
    scrapes: { type: 'string', default: '60' },
    'per-request': { type: 'string', default: '2000' },
    sides: { type: 'string', default: 'tapedeck,prometheus' },
    acks: { type: 'string', default: 'durable,memory' },
    sidecars: { type: 'string', default: 'on' },
    compact: { type: 'string', default: 'live' },
  },
});

/** The child: a recording server with a remote_write source; answers `flush` and `close`. */
async function serve(dir: string): Promise<void> {
  const { resolveConfig } = await import('../../server/config.js');
  const { startServer } = await import('../../server/main.js');
  const { seriesIndexOf } = await import('../../storage/series-index/store.js');
  const srv = await startServer(resolveConfig({
    archive_directory: dir,
    // --compact live: the server compacts the file its rotation seals (storage/live-compact.ts).
    record: { spec: ['/**'], flush_interval: '1s', compact: process.env.BENCH_COMPACT === 'live' },
    publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
    sources: [{ name: 'prom', type: 'remote_write', required: false }],
  }), { logger: pino({ level: 'silent' }) });
  // Each commit's time (its write, two fdatasyncs and catalog rows), for where a durable request's time goes.
  const commitMs: number[] = [];
  srv.archive.on('flushed', (e: { ms: number }) => commitMs.push(e.ms));
  process.on('message', async (m: { cmd: string; id: number }) => {
    const reply = (data: unknown): void => void process.send?.({ id: m.id, data });
    if (m.cmd === 'flush') {
      await srv.archive.writer?.flush();
      const sorted = [...commitMs].sort((x, y) => x - y);
      const at = (p: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) * 100) / 100;
      const commits = { count: sorted.length, total_ms: Math.round(sorted.reduce((x, y) => x + y, 0)), p50_ms: at(0.5), p90_ms: at(0.9), max_ms: at(1) };
      return reply({ batches: srv.recorder?.stats.batches, updates: srv.recorder?.stats.updates, commits, cpu_ms: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000) });
    }
    if (m.cmd === 'cpu') return reply({ cpu_ms: (process.cpuUsage().user + process.cpuUsage().system) / 1000 });
    if (m.cmd === 'sidecar') {
      // Rotated as a daily rotate_interval would; the rotation queues the sealed file's build.
      const started = performance.now();
      await srv.archive.writer?.rotate();
      // With --compact live the file is compacted first, then its sidecar built (version 5).
      const compactor = srv.archive.settling as import('../../storage/live-compact.js').LiveCompactor | undefined;
      await compactor?.whenIdle();
      const compactS = (performance.now() - started) / 1000;
      const store = seriesIndexOf(srv.archive);
      await store.whenIdle();
      const compaction = compactor ? { ...compactor.stats, seconds: compactS } : undefined;
      return reply({ built: store.stats.built, failures: store.stats.buildFailures, seconds: (performance.now() - started) / 1000 - compactS, compaction });
    }
    if (m.cmd === 'idle') {
      // A server started on a compacted archive builds the sidecars its sealed files lack.
      const started = performance.now();
      const store = seriesIndexOf(srv.archive);
      await store.whenIdle();
      return reply({ built: store.stats.built, failures: store.stats.buildFailures, seconds: (performance.now() - started) / 1000 });
    }
    if (m.cmd === 'close') {
      await srv.close();
      reply(null);
      process.exit(0);
    }
  });
  process.send?.({ id: 0, data: { url: srv.url } });
}

interface Load {
  bodies: Buffer[];
  samples: number;
  bodyBytes: number;
}

const METRICS = [
  'node_network_receive_bytes_total', 'node_network_transmit_bytes_total', 'node_network_receive_packets_total', 'node_network_transmit_packets_total',
  'node_network_receive_errs_total', 'node_network_transmit_drop_total', 'node_cpu_seconds_total', 'node_disk_read_bytes_total', 'node_disk_written_bytes_total',
  'node_filesystem_avail_bytes', 'node_memory_MemAvailable_bytes', 'node_load1', 'ifHCInOctets', 'ifHCOutOctets', 'ifInErrors', 'ifOutDiscards',
  'ifOperStatus', 'ifHighSpeed', 'sysUpTime', 'node_hwmon_temp_celsius',
];

function labelsOf(i: number): Array<{ name: string; value: string }> {
  const metric = METRICS[i % METRICS.length] as string;
  const instance = `host-${String(Math.floor(i / METRICS.length) % 100).padStart(3, '0')}.dc1.example.net:9100`;
  const port = Math.floor(i / (METRICS.length * 100));
  const snmp = metric.startsWith('if') || metric === 'sysUpTime';
  return [
    { name: '__name__', value: metric },
    ...(snmp ? [{ name: 'ifName', value: `Ethernet${port}/1` }] : [{ name: 'device', value: `eth${port}` }]),
    { name: 'instance', value: instance },
    { name: 'job', value: snmp ? 'snmp' : 'node' },
  ];
}

/** Sample k of series i: counters grow by whole numbers, gauges move in hundredths. */
function valueOf(i: number, k: number): number {
  const metric = METRICS[i % METRICS.length] as string;
  let x = (i * 2654435761 + k * 40503) >>> 0;
  x ^= x >>> 13;
  if (metric.endsWith('_total') || metric.endsWith('Octets')) return i * 1_000_003 + k * ((i % 97) + 1) * 15_000 + (x % 1000);
  return Math.round((i % 500) * 10 + (x % 10_000) / 100) / 100;
}

function makeLoad(series: number, scrapes: number, perRequest: number, t0Ms: number): Load {
  const labels = Array.from({ length: series }, (_, i) => labelsOf(i));
  const bodies: Buffer[] = [];
  let bodyBytes = 0;
  for (let k = 0; k < scrapes; k++) {
    const ts = BigInt(t0Ms + k * 15_000);
    for (let from = 0; from < series; from += perRequest) {
      const timeseries = [];
      for (let i = from; i < Math.min(series, from + perRequest); i++) timeseries.push({ labels: labels[i] ?? [], samples: [{ value: valueOf(i, k), timestamp: ts }] });
      const body = snappy.compressSync(Buffer.from(toBinary(WriteRequestSchema, create(WriteRequestSchema, { timeseries }))));
      bodies.push(body);
      bodyBytes += body.length;
    }
  }
  return { bodies, samples: series * scrapes, bodyBytes };
}

/** Posts every body in order; fails on any answer but 2xx. */
async function send(url: string, load: Load, query = ''): Promise<number> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: 1, pipelining: 1 });
  const started = performance.now();
  try {
    for (const body of load.bodies) {
      const r = await pool.request({
        method: 'POST', path: `/api/v1/write${query}`, body,
        headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
      });
      const text = await r.body.text();
      if (r.statusCode < 200 || r.statusCode >= 300) throw new Error(`${url}: HTTP ${r.statusCode}: ${text.slice(0, 300)}`);
    }
  } finally {
    await pool.close();
  }
  return performance.now() - started;
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return n;
}

/** Where an archive's bytes are: segment files by frame type (headers apart), the catalog and its WAL. */
async function breakdown(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const add = (k: string, n: number): void => void (out[k] = (out[k] ?? 0) + n);
  const names = ['', 'PATHS', 'DELTA', 'IMAGE'];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const bytes = await readFile(join(dir, e.name));
    if (e.name.startsWith(CATALOG_FILE)) {
      add(`catalog${e.name.slice(CATALOG_FILE.length) || '_db'}`, bytes.length);
      continue;
    }
    if (e.name === 'LOCK' || e.name.endsWith('.log')) {
      add('other', bytes.length);
      continue;
    }
    add('segment_header', HEADER_BYTES);
    for (let at = HEADER_BYTES; at < bytes.length;) {
      const h = decodeFrameHeader(bytes.subarray(at));
      if (typeof h === 'string') {
        add('segment_tail', bytes.length - at);
        break;
      }
      const name = names[h.type] ?? '?';
      add('frame_headers', FRAME_HEADER_BYTES);
      add(`${name}_stored`, h.storedBytes);
      add(`${name}_raw`, h.rawBytes);
      add(`${name}_frames`, 1);
      at += h.frameBytes;
    }
  }
  return out;
}

/** A recording server in a child process on `dir` (this file with --serve), and how to ask it things. */
async function startChild(dir: string): Promise<{ url: string; call: (cmd: string) => Promise<unknown> }> {
  // CHILD_CPU_PROF=<dir>: the server's CPU profile (node --cpu-prof) is written there.
  const prof = process.env.CHILD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CHILD_CPU_PROF}`] : [];
  const child = fork(new URL(import.meta.url).pathname, ['--serve', dir], { execArgv: [...prof, '--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const waiters = new Map<number, (d: unknown) => void>();
  child.on('message', (m: { id: number; data: unknown }) => {
    waiters.get(m.id)?.(m.data);
    waiters.delete(m.id);
  });
  let nextId = 1;
  const call = (cmd: string): Promise<unknown> => new Promise((resolve) => {
    const id = nextId++;
    waiters.set(id, resolve);
    child.send({ cmd, id });
  });
  const { url } = await new Promise<{ url: string }>((resolve) => waiters.set(0, resolve as (d: unknown) => void));
  return { url, call };
}

/**
 * `tapedeck compact` on the archive (its server stopped), then a server started again on it,
 * which builds the sidecar of the compacted file: the archive's bytes then, with and
 * without the sidecar.
 */
async function compacted(dir: string, samples: number): Promise<Record<string, unknown>> {
  await rm(join(dir, 'series-index'), { recursive: true, force: true });
  const t0 = performance.now();
  const files = await compactArchive(dir);
  const seconds = (performance.now() - t0) / 1000;
  const done = files.filter((f) => f.skipped === undefined);
  const child = await startChild(dir);
  try {
    const built = await child.call('idle') as { built: number; failures: number; seconds: number };
    if (built.built < 1 || built.failures > 0) throw new Error(`sidecar build after compaction: ${JSON.stringify(built)}`);
    // The `current` the rotation opened holds no sample: only the dictionary and an image of
    // every path's latest value, which every file starts with (a day's file pays them once
    // for 57.6 M samples). Left out, as the figures before compaction leave it out (measured
    // before the rotation); given apart.
    const currentBytes = (await stat(join(dir, 'current'))).size;
    const bytes = (await dirBytes(dir)) - currentBytes;
    const sidecarBytes = await dirBytes(join(dir, 'series-index'));
    return {
      seconds: round(seconds), files: done.length, file_bytes_before: done.reduce((x, f) => x + f.before, 0), file_bytes_after: done.reduce((x, f) => x + f.after, 0),
      bytes_per_sample: round((bytes - sidecarBytes) / samples), sidecar: { bytes: sidecarBytes, bytes_per_sample: round(sidecarBytes / samples), build_seconds: round(built.seconds) },
      bytes_per_sample_with_sidecars: round(bytes / samples), current_file_bytes: currentBytes, where: await breakdown(dir),
    };
  } finally {
    await child.call('close');
  }
}

async function tapedeck(load: Load, ack: 'durable' | 'memory'): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-promw-'));
  const { url, call } = await startChild(dir);
  let closed = false;
  try {
    const before = await call('cpu') as { cpu_ms: number };
    const started = performance.now();
    await send(url, load, `?ack=${ack}`);
    const counts = await call('flush') as { updates: number; commits: unknown; cpu_ms: number };
    const after = await call('cpu') as { cpu_ms: number };
    const ms = performance.now() - started;
    if (counts.updates !== load.samples) throw new Error(`Tapedeck recorded ${counts.updates} of ${load.samples} samples`);
    const bytes = await dirBytes(dir);
    const where = await breakdown(dir);
    let sidecar: { bytes: number; bytes_per_sample: number; build_seconds: number } | undefined;
    let afterCompaction: Record<string, unknown> | undefined;
    if (args.sidecars !== 'off') {
      const built = await call('sidecar') as { built: number; failures: number; seconds: number; compaction?: { compacted: number; bytesBefore: number; bytesAfter: number; seconds: number } };
      if (built.built < 1 || built.failures > 0) throw new Error(`sidecar build: ${JSON.stringify(built)}`);
      const sidecarBytes = await dirBytes(join(dir, 'series-index'));
      const side = { bytes: sidecarBytes, bytes_per_sample: round(sidecarBytes / load.samples), build_seconds: round(built.seconds) };
      if (built.compaction === undefined) sidecar = side;
      else {
        // The running server compacted the file (its sidecar is then version 5): the archive's
        // bytes now, the empty `current` the rotation opened given apart (see compacted()).
        if (built.compaction.compacted !== 1) throw new Error(`live compaction: ${JSON.stringify(built.compaction)}`);
        const currentBytes = (await stat(join(dir, 'current'))).size;
        const all = (await dirBytes(dir)) - currentBytes;
        afterCompaction = {
          mode: 'live: the running server compacted the rotated file', seconds: round(built.compaction.seconds), files: 1,
          file_bytes_before: built.compaction.bytesBefore, file_bytes_after: built.compaction.bytesAfter,
          bytes_per_sample: round((all - sidecarBytes) / load.samples), sidecar: side,
          bytes_per_sample_with_sidecars: round(all / load.samples), current_file_bytes: currentBytes, where: await breakdown(dir),
        };
      }
    }
    if (args.sidecars !== 'off' && args.compact === 'offline') {
      await call('close');
      closed = true;
      afterCompaction = await compacted(dir, load.samples);
    }
    return {
      samples_per_s: Math.round(load.samples / (ms / 1000)), seconds: round(ms / 1000), disk_bytes: bytes, bytes_per_sample: round(bytes / load.samples),
      // The server's commits (count, time), and its CPU since it started (start-up included).
      commits: counts.commits, server_cpu_ms: counts.cpu_ms,
      // The server's CPU from the first request to the end of the final flush (start-up left out): the request's own cost.
      run_cpu_ms: Math.round(after.cpu_ms - before.cpu_ms),
      run_cpu_ns_per_sample: Math.round(((after.cpu_ms - before.cpu_ms) * 1e6) / load.samples),
      samples_per_cpu_s: Math.round(load.samples / ((after.cpu_ms - before.cpu_ms) / 1000)),
      ...(sidecar ? { bytes_per_sample_with_sidecars: round((bytes + sidecar.bytes) / load.samples), sidecar } : {}),
      where,
      ...(afterCompaction ? { after_compaction: afterCompaction } : {}),
    };
  } finally {
    if (!closed) await call('close');
    await rm(dir, { recursive: true, force: true });
  }
}

async function prometheus(load: Load): Promise<Record<string, number>> {
  const prom = await startPrometheus('global:\n  scrape_interval: 1h\nscrape_configs: []\n', { args: ['--web.enable-remote-write-receiver', '--web.enable-admin-api'] });
  try {
    const cpuBefore = await promCpuS(prom.url);
    const ms = await send(prom.url, load);
    const cpuS = (await promCpuS(prom.url)) - cpuBefore;
    const snap = await (await fetch(`${prom.url}/api/v1/admin/tsdb/snapshot`, { method: 'POST' })).json() as { data: { name: string } };
    const blockBytes = await dirBytes(join(prom.dataDir, 'snapshots', snap.data.name));
    const walBytes = await dirBytes(join(prom.dataDir, 'wal'));
    return {
      samples_per_s: Math.round(load.samples / (ms / 1000)), seconds: round(ms / 1000),
      // Its own process_cpu_seconds_total over the sends (10 ms ticks), as run_cpu_ms is Tapedeck's.
      run_cpu_ms: Math.round(cpuS * 1000), samples_per_cpu_s: Math.round(load.samples / cpuS),
      snapshot_block_bytes: blockBytes, bytes_per_sample: round(blockBytes / load.samples),
      wal_bytes: walBytes, wal_bytes_per_sample: round(walBytes / load.samples),
    };
  } finally {
    await prom.stop();
  }
}

/** Prometheus' process_cpu_seconds_total, from its own /metrics. */
async function promCpuS(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!m) throw new Error('prometheus /metrics has no process_cpu_seconds_total');
  return Number(m[1]);
}

/** Bytes per sample with sidecars after `tapedeck compact`, against Prometheus'. */
function ratioAfter(side: Record<string, unknown> | undefined, prom: Record<string, number> | undefined): number | undefined {
  const after = side?.after_compaction as { bytes_per_sample_with_sidecars: number } | undefined;
  return after === undefined || prom === undefined ? undefined : round(after.bytes_per_sample_with_sidecars / (prom.bytes_per_sample as number));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  // Read by the server child (serve()): whether it compacts rotated files itself.
  process.env.BENCH_COMPACT = String(args.compact);
  const series = Number(args.series);
  const scrapes = Number(args.scrapes);
  const perRequest = Number(args['per-request']);
  // Recent enough for Prometheus' head to take (it refuses samples far in the past).
  const t0Ms = Date.now() - scrapes * 15_000 - 60_000;
  const load = makeLoad(series, scrapes, perRequest, t0Ms);
  const sides = new Set(String(args.sides).split(','));
  const acks = new Set(String(args.acks).split(','));
  const durable = sides.has('tapedeck') && acks.has('durable') ? await tapedeck(load, 'durable') : undefined;
  const memory = sides.has('tapedeck') && acks.has('memory') ? await tapedeck(load, 'memory') : undefined;
  const prom = sides.has('prometheus') ? await prometheus(load) : undefined;
  const ratio = (a: Record<string, unknown> | undefined, key: string): number | undefined =>
    a === undefined || prom === undefined ? undefined : round((a[key] as number) / (prom[key] as number));
  const best = Math.max(...[durable, memory].map((s) => (s?.samples_per_s as number | undefined) ?? 0));
  console.log(JSON.stringify({
    bench: 'prom-write',
    series, scrapes, samples: load.samples, samples_per_request: perRequest, requests: load.bodies.length,
    snappy_bytes_per_sample: round(load.bodyBytes / load.samples),
    tapedeck_durable: durable,
    tapedeck_memory: memory,
    prometheus: prom,
    ingest_ratio_durable: ratio(durable, 'samples_per_s'),
    // Samples per CPU-second of each server over the same sends: steadier than wall time on a loaded machine.
    ingest_cpu_ratio_durable: ratio(durable, 'samples_per_cpu_s'),
    ingest_cpu_ratio_memory: ratio(memory, 'samples_per_cpu_s'),
    ingest_ratio_best: prom === undefined ? undefined : round(best / (prom.samples_per_s as number)),
    bytes_ratio: ratio(memory, 'bytes_per_sample'),
    bytes_ratio_durable: ratio(durable, 'bytes_per_sample'),
    bytes_ratio_with_sidecars: memory?.bytes_per_sample_with_sidecars === undefined || prom === undefined ? undefined : round((memory.bytes_per_sample_with_sidecars as number) / (prom.bytes_per_sample as number)),
    bytes_ratio_compacted_with_sidecars: ratioAfter(memory, prom),
    bytes_ratio_durable_compacted_with_sidecars: ratioAfter(durable, prom),
    bytes_ratio_durable_with_sidecars: durable?.bytes_per_sample_with_sidecars === undefined || prom === undefined ? undefined : round((durable.bytes_per_sample_with_sidecars as number) / (prom.bytes_per_sample as number)),
    targets: { ingest_ratio_min: 1, bytes_ratio_max: 0.5 },
  }));
}

// Last: the constants above are initialised by now.
if (args.serve !== undefined) await serve(args.serve);
else await main();
