/**
 * Playback benchmark: `npm run bench:playback [-- --gb 1 --sessions 512 --seconds 20]`;
 * `--only unlimited --hours 8 --passes 7 --formats msgpack --layouts pairs` for A/B runs of the replay path,
 * PROF=<dir> for a CPU profile of the server. Prints one JSON object:
 *  - unlimited: updates/s delivered to one WebSocket client at unlimited speed (fabric
 *    workload, 512 updates per batch, --hours of it), JSON and msgpack, each in the pairs
 *    and the columns layout (--layouts; docs/playback.md "Layouts"), frames decoded by
 *    the client, with the server's and the client's CPU time. Each format replays the
 *    whole archive --warmup times unmeasured (JIT), then --passes times measured, each pass
 *    a new session on the same server; the median and spread of the passes are printed.
 *    updatesPerServerCpuSec is the session path's own cost (CPU time of every server
 *    thread, /proc/<pid>/task/<tid>/schedstat, read here around each pass), which a loaded
 *    machine changes far less than updates per wall second: compare builds with it;
 *  - seek: time from sending a `pos` control to receiving the `state` frame, on an archive
 *    of at least --gb GB (p50/p99 over 100 random seeks);
 *  - concurrent: --sessions sessions at speed 1 for --seconds, 10 batches/s each:
 *    pacing error (server-side schedule vs send, and client-side arrival vs recorded
 *    offset), server CPU, RSS and event-loop delay.
 * The server runs in a child process; the clients run here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { decodeMsgpack as unpack } from '../../protocol/value-msgpack.js';
import { Archive } from '../../storage/archive.js';
import { fabricBatches } from '../../server/sim/fabric.js';
import { buildBig } from './archives.js';
import { rng } from '../helpers/workload.js';

const { values: args } = parseArgs({
  options: {
    gb: { type: 'string', default: '1' },
    sessions: { type: 'string', default: '512' },
    seconds: { type: 'string', default: '20' },
    dir: { type: 'string', default: join(tmpdir(), 'tapedeck-bench-playback') },
    'big-dir': { type: 'string', default: join(tmpdir(), 'tapedeck-bench', 'big') },
    keep: { type: 'boolean', default: false },
    only: { type: 'string', default: 'unlimited,seek,concurrent' },
    // Unlimited replay: hours of fabric polls (3 686 400 updates for 2), passes per format.
    hours: { type: 'string', default: '2' },
    passes: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    formats: { type: 'string', default: 'json,msgpack' },
    // Batch frame layouts (docs/playback.md, "Layouts"), each format in each.
    layouts: { type: 'string', default: 'pairs,columns' },
  },
});

interface Server {
  proc: ChildProcess;
  url: string;
  lines: Interface;
  stats(): Promise<Record<string, unknown>>;
  reset(): void;
  stop(): Promise<void>;
}

async function startServer(dir: string): Promise<Server> {
  // PROF=<dir>: the server writes a V8 CPU profile there when it stops.
  const proc = spawn(process.execPath, [...(process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : []), '--import', 'tsx', new URL('./playback-server.ts', import.meta.url).pathname, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((resolve) => lines.once('line', (l) => resolve(Number(l.split(' ')[1]))));
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    lines,
    stats: () => new Promise((resolve) => {
      lines.once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>));
      proc.stdin!.write('stats\n');
    }),
    reset: () => proc.stdin!.write('reset\n'),
    stop: () => new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

async function createSession(url: string, body: object): Promise<string> {
  const res = await fetch(`${url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`create session: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are whatever the server sent
type AnyFrame = any;
type Layout = 'pairs' | 'columns';

function openWs(url: string, id: string, format: 'json' | 'msgpack', layout: Layout, onFrame: (f: AnyFrame) => void): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/sessions/${id}/stream?coalesce=true&layout=${layout}${format === 'msgpack' ? '&format=msgpack' : ''}`);
  ws.on('message', (data: Buffer, binary: boolean) => onFrame(binary ? unpack(data) : JSON.parse(data.toString())));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number).toFixed(3));
}

/**
 * CPU time of every thread of process `pid` so far, in seconds: the first field of each
 * /proc/<pid>/task/<tid>/schedstat (ns on a CPU), as bench/peers/measure.ts reads its own.
 * Finer than the process's utime/stime ticks, and read from outside the server so that
 * asking costs the server nothing.
 */
function cpuSecsOf(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

interface Pass {
  updates: number;
  seconds: number;
  updatesPerSec: number;
  serverCpuSecs: number;
  updatesPerServerCpuSec: number;
  clientCpuSecs: number;
}

/**
 * One client at unlimited speed over the whole archive, from the `state` frame to the last
 * update: updates per wall second (what a client sees, and what a loaded machine
 * stretches), and the server's and the client's CPU time over the same span.
 */
async function unlimitedPass(server: Server, total: number, format: 'json' | 'msgpack', layout: Layout): Promise<Pass> {
  const id = await createSession(server.url, { speed: 'unlimited' });
  const pid = server.proc.pid!;
  let updates = 0;
  let t0 = 0;
  let server0 = 0;
  let client0 = process.cpuUsage();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  // A batch's updates: its pairs, or its column of values (the columns layout).
  const count = (b: { updates?: unknown[]; values?: unknown[] }): void => {
    updates += (b.updates ?? b.values)!.length;
  };
  const ws = await openWs(server.url, id, format, layout, (f) => {
    if (f.type === 'state') {
      t0 = performance.now();
      server0 = cpuSecsOf(pid);
      client0 = process.cpuUsage();
    }
    else if (f.type === 'batch') count(f);
    else if (f.type === 'batches') for (const b of f.batches) count(b);
    if (updates >= total) done();
  });
  await finished;
  const secs = (performance.now() - t0) / 1000;
  const serverCpuSecs = cpuSecsOf(pid) - server0;
  const client = process.cpuUsage(client0);
  ws.close();
  const clientCpuSecs = (client.user + client.system) / 1e6;
  return {
    updates,
    seconds: Number(secs.toFixed(3)),
    updatesPerSec: Math.round(updates / secs),
    serverCpuSecs: Number(serverCpuSecs.toFixed(3)),
    updatesPerServerCpuSec: Math.round(updates / serverCpuSecs),
    clientCpuSecs: Number(clientCpuSecs.toFixed(3)),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : Math.round(((s[m - 1] as number) + (s[m] as number)) / 2);
}

/** Warm-up passes, then measured ones: their median and range for each figure. */
async function unlimited(server: Server, total: number, format: 'json' | 'msgpack', layout: Layout, warmup: number, passes: number): Promise<object> {
  for (let i = 0; i < warmup; i++) await unlimitedPass(server, total, format, layout);
  const runs: Pass[] = [];
  for (let i = 0; i < passes; i++) runs.push(await unlimitedPass(server, total, format, layout));
  const spread = (k: 'updatesPerSec' | 'updatesPerServerCpuSec'): object => {
    const xs = runs.map((r) => r[k]);
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  return {
    format,
    layout,
    updates: total,
    warmup,
    passes,
    updatesPerSec: spread('updatesPerSec'),
    updatesPerServerCpuSec: spread('updatesPerServerCpuSec'),
    clientCpuSecsMedian: median(runs.map((r) => r.clientCpuSecs * 1000)) / 1000,
    runs,
  };
}

async function seeks(server: Server, first: number, last: number): Promise<object> {
  const id = await createSession(server.url, { state: 'pause' });
  let resolveState: (() => void) | undefined;
  const ws = await openWs(server.url, id, 'msgpack', 'pairs', (f) => {
    if (f.type === 'state') resolveState?.();
    else if (f.type === 'error') process.stderr.write(`seek: error frame ${JSON.stringify(f)}\n`);
  });
  await new Promise<void>((resolve) => (resolveState = resolve));
  const r = rng(3);
  const ms: number[] = [];
  let lastSend = 0;
  for (let i = 0; i < 100; i++) {
    const t = Math.floor(first + r() * (last - first));
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<void>((resolve, reject) => {
      resolveState = resolve;
      timer = setTimeout(() => reject(new Error(`seek ${i} to ${t}: no state frame in 30 s`)), 30_000);
    });
    // At most 40 seeks a second: the server refuses more than 50 control frames a second per stream.
    const since = performance.now() - lastSend;
    if (since < 25) await new Promise((r) => setTimeout(r, 25 - since));
    const t0 = performance.now();
    lastSend = t0;
    ws.send(JSON.stringify({ type: 'control', set: { pos: t } }));
    await got.finally(() => clearTimeout(timer));
    if (process.env.BENCH_DEBUG) process.stderr.write(`seek ${i}: ${(performance.now() - t0).toFixed(1)} ms\n`);
    ms.push(performance.now() - t0);
  }
  ws.close();
  const slowest = ms.map((v, i) => ({ i, ms: Number(v.toFixed(1)) })).sort((a, b) => b.ms - a.ms).slice(0, 5);
  const warm = ms.slice(2);
  return {
    seeks: ms.length,
    firstFrameMs: { p50: pct(ms, 50), p90: pct(ms, 90), p99: pct(ms, 99), max: pct(ms, 100) },
    // The first seeks after start pay for JIT warm-up and loading block tables.
    warmFirstFrameMs: { seeks: warm.length, p50: pct(warm, 50), p99: pct(warm, 99) },
    slowest,
  };
}

async function concurrent(server: Server, n: number, seconds: number, startTs: number): Promise<object> {
  const lateness: number[] = [];
  const sockets: WebSocket[] = [];
  let frames = 0;
  for (let i = 0; i < n; i++) {
    // Spread sessions over the archive so they read different blocks.
    const id = await createSession(server.url, { speed: 1, pos: startTs + (i % 64) * 60_000_000 });
    let anchor: { wall: number; ts: number } | undefined;
    sockets.push(await openWs(server.url, id, 'msgpack', 'pairs', (f) => {
      if (f.type !== 'batch') return;
      frames++;
      const now = performance.now();
      if (!anchor) anchor = { wall: now, ts: f.ts };
      else lateness.push(now - anchor.wall - (f.ts - anchor.ts) / 1000);
    }));
  }
  // Let every session start, then measure a steady window.
  await new Promise((r) => setTimeout(r, 2000));
  server.reset();
  lateness.length = 0;
  frames = 0;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const stats = await server.stats();
  const received = frames;
  for (const ws of sockets) ws.close();
  return {
    sessions: n,
    seconds,
    framesPerSec: Math.round(received / seconds),
    server: stats,
    clientObservedLatenessMs: { samples: lateness.length, p50: pct(lateness, 50), p99: pct(lateness, 99), max: pct(lateness, 100) },
  };
}

async function main(): Promise<void> {
  const root = args.dir;
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const result: Record<string, unknown> = {};

  // Fabric archive for unlimited-speed delivery: --hours of polls (2 h: 3.7 M updates).
  const fabricDir = join(root, 'fabric');
  const fabricSeconds = Math.round(Number(args.hours) * 3600);
  {
    const a = await Archive.open(fabricDir, {});
    for (const b of fabricBatches(5, 64, fabricSeconds)) a.writer!.append(b.updates, b.ts);
    await a.close();
  }
  // Paced archive: 10 batches/s of 64 updates for 2 hours.
  const pacedDir = join(root, 'paced');
  const pacedStart = 1_763_000_000_000_000;
  {
    const a = await Archive.open(pacedDir, {});
    const r = rng(9);
    for (let i = 0; i < 72_000; i++) {
      const updates: Array<[string, number]> = [];
      for (let j = 0; j < 64; j++) updates.push([`/paced/dev-${j % 8}/m${j}`, Math.round(r() * 1000) / 10]);
      a.writer!.append(updates, pacedStart + i * 100_000);
    }
    await a.close();
  }
  const only = new Set(args.only.split(','));
  let server: Server;
  if (only.has('unlimited')) {
    server = await startServer(fabricDir);
    const runs: object[] = [];
    for (const layout of args.layouts.split(',') as Layout[]) {
      for (const format of args.formats.split(',') as Array<'json' | 'msgpack'>) {
        runs.push(await unlimited(server, fabricSeconds * 512, format, layout, Number(args.warmup), Number(args.passes)));
      }
    }
    result.unlimited = runs;
    await server.stop();
  }
  if (only.has('seek')) {
  const bigDir = args['big-dir'];
  const built = await buildBig(bigDir, Number(args.gb));
  const big = await Archive.open(bigDir, { readonly: true });
  const first = big.files.find((f) => f.firstTs !== null)!.firstTs!;
  const last = big.lastTs;
  await big.close();
  server = await startServer(bigDir);
  result.seek = { archiveBytes: built.bytes, ...(await seeks(server, first, last)) };
  await server.stop();
  }
  if (only.has('concurrent')) {
    server = await startServer(pacedDir);
    result.concurrent = await concurrent(server, Number(args.sessions), Number(args.seconds), pacedStart);
    await server.stop();
  }
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (!args.keep) await rm(root, { recursive: true, force: true });
}

await main();
