/**
 * Merged-read benchmark (docs/cluster.md, "Merged reads"): `node --import tsx test/bench/cluster.ts
 * [--seconds 3000 --switches 16 --requests 300 --runs 7]`. Prints one JSON object:
 *  - replay: updates/s one client receives from a session at unlimited speed (msgpack,
 *    coalesced frames, decoded by the client) over a single archive holding the whole input,
 *    and over a merged session across 3 shards holding a third each; after two warm-up
 *    replays of each, `runs` replays of each, alternated (single, merged, single, ...), so a
 *    burst of load from elsewhere hits both alike; `fraction` is the median merged rate over
 *    the median single rate (target >= 0.8), `fractionFirstPair` the first pair's alone (what
 *    this bench printed before it took several); CPU per replay of this process (the
 *    merging node or the single server, with the client) and of each shard process;
 *  - state: latency of GET /api/v1/state (latest values, and `at` random times) on the
 *    merged node and on the single archive, p50 and p99 over --requests sequential requests.
 * The shards run in their own processes (test/helpers/merge-shard-child.ts); the single
 * server and the merging node run here, with the client. On a 2-core machine the shards, the
 * merging node and the client share the cores: read `load` (uptime's) with the figures.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg, tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { Batch } from '../../protocol/value.js';
import { decodeMsgpack } from '../../protocol/value-msgpack.js';
import { formatTs } from '../../protocol/time.js';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { StaticDirectory } from '../../server/cluster/static-directory.js';
import { fabricBatches, rng } from '../helpers/workload.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3000' },
    switches: { type: 'string', default: '16' },
    requests: { type: 'string', default: '300' },
    runs: { type: 'string', default: '7' },
  },
});
const SECONDS = Number(args.seconds);
const SWITCHES = Number(args.switches);
const REQUESTS = Number(args.requests);
const RUNS = Number(args.runs);
const SHARDS = 3;

const dirs: string[] = [];
async function tmpDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function writeArchive(batches: Iterable<Batch>): Promise<string> {
  const dir = await tmpDir('tapedeck-bench-cluster-');
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  for (const b of batches) a.writer!.append(b.updates, b.ts);
  await a.close();
  return dir;
}

function shardBatches(k: number): Batch[] {
  return [...fabricBatches(k + 1, SWITCHES, SECONDS)].map((b) => ({ ts: b.ts + k, updates: b.updates.map(([p, v]) => [`/s${k}${p}`, v] as [string, typeof v]) }));
}

async function child(dir: string): Promise<{ url: string; pid: number; kill: () => void }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/merge-shard-child.ts', import.meta.url)), dir, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => l.startsWith('READY ') && resolve(l.slice(6)));
    proc.once('exit', (c) => reject(new Error(`shard exited ${c}`)));
  });
  return { url, pid: proc.pid as number, kill: () => proc.kill('SIGKILL') };
}

async function serve(dir: string, directory?: StaticDirectory): Promise<{ url: string; close: () => Promise<void> }> {
  const archive = await Archive.open(dir, { readonly: true });
  const app = await buildServer({ archive, ...(directory ? { directory } : {}) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, close: async () => { await app.close(); await archive.close(); } };
}

/** Updates/s a client receives replaying everything at unlimited speed. */
async function replayRate(base: string, end: number): Promise<{ updates: number; seconds: number; perSecond: number }> {
  const res = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ speed: 'unlimited', end: formatTs(end) }) });
  const s = (await res.json()) as { stream: string };
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${s.stream}?format=msgpack&coalesce=true`);
  let updates = 0;
  let started = 0;
  const seconds = await new Promise<number>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const f = decodeMsgpack(data) as { type: string; updates?: unknown[]; batches?: Array<{ updates: unknown[] }> };
      if (f.type === 'state') started = performance.now();
      else if (f.type === 'batch') updates += (f.updates as unknown[]).length;
      else if (f.type === 'batches') for (const b of f.batches as Array<{ updates: unknown[] }>) updates += b.updates.length;
      else if (f.type === 'end') resolve((performance.now() - started) / 1000);
    });
    ws.on('error', reject);
  });
  ws.close();
  return { updates, seconds: Number(seconds.toFixed(3)), perSecond: Math.round(updates / seconds) };
}

/** CPU ms a process used so far (Linux /proc; 0 elsewhere). */
function cpuMsOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

interface Replays {
  perSecond: number[];
  cpuMsPerReplay: number;
  shardCpuMsPerReplay: number[];
}

/** `RUNS` replays of each base, alternated; rates and CPU per replay. */
async function replays(bases: readonly string[], end: number, shardPids: readonly number[]): Promise<Replays[]> {
  const out = bases.map(() => ({ perSecond: [] as number[], cpuMs: 0, shardCpuMs: shardPids.map(() => 0) }));
  for (let i = 0; i < RUNS; i++) {
    for (const [k, base] of bases.entries()) {
      const o = out[k] as (typeof out)[number];
      const c0 = process.cpuUsage();
      const s0 = shardPids.map(cpuMsOf);
      o.perSecond.push((await replayRate(base, end)).perSecond);
      const c = process.cpuUsage(c0);
      o.cpuMs += (c.user + c.system) / 1000;
      shardPids.forEach((pid, j) => (o.shardCpuMs[j] = (o.shardCpuMs[j] ?? 0) + cpuMsOf(pid) - (s0[j] ?? 0)));
    }
  }
  return out.map((o) => ({ perSecond: o.perSecond, cpuMsPerReplay: Math.round(o.cpuMs / RUNS), shardCpuMsPerReplay: o.shardCpuMs.map((x) => Math.round(x / RUNS)) }));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : Math.round(((s[m - 1] as number) + (s[m] as number)) / 2);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] as number).toFixed(2));
}

async function stateLatency(base: string, times: number[]): Promise<object> {
  const run = async (q: (i: number) => string): Promise<{ p50Ms: number; p99Ms: number }> => {
    const ms: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now();
      const r = await fetch(base + q(i));
      await r.arrayBuffer();
      ms.push(performance.now() - t0);
    }
    return { p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99) };
  };
  return { latest: await run(() => '/api/v1/state'), at: await run((i) => `/api/v1/state?at=${encodeURIComponent(formatTs(times[i % times.length] as number))}`) };
}

const parts = Array.from({ length: SHARDS }, (_, k) => shardBatches(k));
const all = parts.flat().sort((a, b) => a.ts - b.ts);
const end = (all[all.length - 1] as Batch).ts + 1;
const singleDir = await writeArchive(all);
const shardDirs = await Promise.all(parts.map((p) => writeArchive(p)));
const shards = await Promise.all(shardDirs.map((d) => child(d)));
const single = await serve(singleDir);
const front = await serve(await tmpDir('tapedeck-bench-front-'), new StaticDirectory('front', shards.map((s, i) => ({ id: `s${i}`, url: s.url }))));
try {
  for (let i = 0; i < 2; i++) for (const base of [single.url, front.url]) await replayRate(base, end); // warm both (JIT, block caches)
  const [s, m] = (await replays([single.url, front.url], end, shards.map((x) => x.pid))) as [Replays, Replays];
  const singleRate = median(s.perSecond);
  const mergedRate = median(m.perSecond);
  const r = rng(9);
  const times = Array.from({ length: 100 }, () => (all[Math.floor(r() * all.length)] as Batch).ts);
  const out = {
    bench: 'cluster-reads',
    input: { shards: SHARDS, batches: all.length, updates: all.reduce((n, b) => n + b.updates.length, 0), updatesPerBatch: SWITCHES * 8 },
    replay: {
      runs: RUNS,
      single: { medianPerSecond: singleRate, perSecond: s.perSecond, cpuMsPerReplay: s.cpuMsPerReplay },
      merged: { medianPerSecond: mergedRate, perSecond: m.perSecond, cpuMsPerReplay: m.cpuMsPerReplay, shardCpuMsPerReplay: m.shardCpuMsPerReplay },
      fraction: Number((mergedRate / singleRate).toFixed(3)),
      fractionFirstPair: Number(((m.perSecond[0] as number) / (s.perSecond[0] as number)).toFixed(3)),
      target: 0.8,
    },
    state: { merged: await stateLatency(front.url, times), single: await stateLatency(single.url, times), requests: REQUESTS },
    load: loadavg().map((x) => Number(x.toFixed(2))),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
} finally {
  await front.close();
  await single.close();
  for (const s of shards) s.kill();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
