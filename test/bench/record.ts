/**
 * Recording benchmark: `npm run bench:record [-- --seconds 10 --connections 100]`. Prints one
 * JSON object:
 *  - ingest: end-to-end updates/s through POST /api/v1/ingest into the archive (NDJSON
 *    lines of 100 updates, bodies of 1000 lines, 4 bodies in flight, final flush included),
 *    the server process's CPU seconds meanwhile and updates per CPU-second (comparable
 *    between builds on a loaded machine, where updates/s is not), and the server's
 *    event-loop delay; `--ingest-only` stops there (A/B runs of the write path);
 *  - state: latency of GET /api/v1/state (latest values, from memory) at 100 concurrent
 *    clients, p50/p95/p99 in ms, for one switch's 8 paths, after a warm-up at the same loads
 *    (not reported): paced (100 clients, each on its own connection, polling every 20 ms at a
 *    random phase: 5000 requests/s, open loop; made by ./paced.ts, see there why not
 *    autocannon) and closed loop with autocannon (each connection sends its next request as
 *    soon as the answer arrives: the server's saturation point); plus all 1000 paths closed
 *    loop; each with the server's event-loop delay (beyond the 10 ms sampling interval) and
 *    GC pauses meanwhile;
 *  - baseline: the same two loads against a bare `node:http` server in the same child
 *    process answering the same body with no work at all: what this machine allows any
 *    Node server under this load generator.
 * The server runs in a child process (its own event loop and GC, measured there); the load
 * generators run in this process. Both share this machine's cores.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { pacedLoad } from './paced.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    keep: { type: 'boolean', default: false },
    'ingest-only': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const LINE_UPDATES = 100;
const BODY_LINES = 1000;
const BODIES_IN_FLIGHT = 4;
const SWITCHES = 125;
const METRICS = 8;

function body(seed: number): string {
  const paths: string[] = [];
  for (let s = 0; s < SWITCHES; s++) for (let m = 0; m < METRICS; m++) paths.push(`/bench/sw-${String(s).padStart(3, '0')}/m${m}`);
  const lines: string[] = [];
  let k = seed * 7919;
  for (let l = 0; l < BODY_LINES; l++) {
    const parts: string[] = [];
    for (let u = 0; u < LINE_UPDATES; u++) {
      const p = paths[(l * LINE_UPDATES + u) % paths.length] as string;
      k = (k * 1103515245 + 12345) % 2147483648;
      parts.push(`${JSON.stringify(p)}:${((k % 100000) / 10).toFixed(1)}`);
    }
    lines.push(`{"updates":{${parts.join(',')}}}`);
  }
  return `${lines.join('\n')}\n`;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return Math.round((sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number) * 1000) / 1000;
}

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-record-'));
// The server runs in a child process of its own (its own event loop and GC).
const entry = new URL('./record-server.ts', import.meta.url);
const worker = fork(entry.pathname, [dir], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_TRACE_GC ? ['--trace-gc'] : []), ...(process.env.BENCH_V8 ? process.env.BENCH_V8.split(' ') : [])], stdio: ['ignore', process.env.BENCH_TRACE_GC ? 'inherit' : 'ignore', 'inherit', 'ipc'] });
worker.on('exit', (code) => {
  if (code !== 0) {
    console.error(`the bench server exited with ${code}`);
    process.exit(1);
  }
});
let nextId = 1;
const pending = new Map<number, (d: unknown) => void>();
const ready = new Promise<{ url: string }>((resolve) => pending.set(0, resolve as (d: unknown) => void));
worker.on('message', (m: { id: number; data: unknown }) => {
  pending.get(m.id)?.(m.data);
  pending.delete(m.id);
});
const call = <T>(cmd: string, arg?: unknown): Promise<T> => new Promise((resolve) => {
  const id = nextId++;
  pending.set(id, resolve as (d: unknown) => void);
  worker.send({ cmd, id, arg });
});
const { url } = await ready;

/** CPU seconds (user + system, every thread) the server process has used so far: /proc/<pid>/stat utime + stime. */
async function serverCpuSecs(): Promise<number> {
  const stat = await readFile(`/proc/${worker.pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
}
/** USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS_PER_SEC = 100;

// ---- ingest
const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(body(i)));
const pool = new Pool(url, { connections: BODIES_IN_FLIGHT, pipelining: 1 });
await call('start');
const cpu0 = await serverCpuSecs();
let sent = 0;
let acked = 0;
const t0 = performance.now();
const deadline = t0 + SECONDS * 1000;
await Promise.all(Array.from({ length: BODIES_IN_FLIGHT }, async () => {
  while (performance.now() < deadline) {
    const b = bodies[sent++ % bodies.length] as Buffer;
    const res = await pool.request({ path: '/api/v1/ingest', method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: b });
    const j = (await res.body.json()) as { accepted_updates: number };
    if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}: ${JSON.stringify(j)}`);
    acked += j.accepted_updates;
  }
}));
await call('flush');
const ingestSeconds = (performance.now() - t0) / 1000;
const ingestCpuSecs = (await serverCpuSecs()) - cpu0;
const ingestStats = await call<{ eventLoopDelayMs: unknown; recorder: { updates: number }; archiveBytes: number }>('stats');
await pool.close();
if (args['ingest-only']) {
  await call('close');
  await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
  if (!args.keep) await rm(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ ingest: { updates: acked, seconds: Math.round(ingestSeconds * 100) / 100, updatesPerSec: Math.round(acked / ingestSeconds), serverCpuSecs: Math.round(ingestCpuSecs * 100) / 100, updatesPerCpuSec: Math.round(acked / ingestCpuSecs), archiveBytes: ingestStats.archiveBytes } })}\n`);
  process.exit(0);
}

// ---- state
async function stateRun(base: string, path: string, seconds: number): Promise<Record<string, unknown>> {
  await call('start');
  const times: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const inst = autocannon({ url: `${base}${path}`, connections: CONNECTIONS, duration: seconds, pipelining: 1 }, (err, res) => (err ? reject(err) : resolve(res)));
    inst.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => times.push(ms));
  });
  const s = await call<{ eventLoopDelayMs: unknown; gcPauses: unknown }>('stats');
  times.sort((a, b) => a - b);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${path}: ${r.non2xx} answers were not 2xx and ${r.errors} failed: the latency would not be the state's`);
  return {
    path,
    mode: 'closed loop',
    requests: r.requests.total,
    requestsPerSec: Math.round(r.requests.average),
    non2xx: r.non2xx,
    errors: r.errors,
    latencyMs: { p50: pct(times, 50), p95: pct(times, 95), p99: pct(times, 99), max: pct(times, 100) },
    eventLoopDelayMs: s.eventLoopDelayMs,
    gcPauses: s.gcPauses,
  };
}

/** CONNECTIONS clients, each polling `path` every periodMs on its own connection (./paced.ts). */
async function pacedRun(base: string, path: string, seconds: number, periodMs: number): Promise<Record<string, unknown>> {
  await call('start');
  const { times, non2xx } = await pacedLoad({ port: Number(new URL(base).port), path, clients: CONNECTIONS, periodMs, seconds });
  const s = await call<{ eventLoopDelayMs: unknown; gcPauses: unknown }>('stats');
  if (non2xx > 0) throw new Error(`${path}: ${non2xx} answers were not 2xx: the latency would not be the state's`);
  return {
    path,
    mode: `paced: ${CONNECTIONS} clients x one request per ${periodMs} ms`,
    requests: times.length,
    requestsPerSec: Math.round(times.length / seconds),
    non2xx,
    latencyMs: { p50: pct(times, 50), p95: pct(times, 95), p99: pct(times, 99), max: pct(times, 100) },
    eventLoopDelayMs: s.eventLoopDelayMs,
    gcPauses: s.gcPauses,
  };
}
const ONE_SWITCH = '/api/v1/state?glob=/bench/sw-007/*';
const PERIOD_MS = 20;
// Warm-up at the measured loads (JIT, connection setup): not reported.
await stateRun(url, ONE_SWITCH, 2);
await pacedRun(url, ONE_SWITCH, 4, PERIOD_MS);
const oneSwitchPaced = await pacedRun(url, ONE_SWITCH, SECONDS, PERIOD_MS);
const oneSwitch = await stateRun(url, ONE_SWITCH, SECONDS);
const everything = await stateRun(url, '/api/v1/state', Math.max(3, Math.round(SECONDS / 2)));

// ---- baseline: a bare node:http server answering the same body.
const sample = await fetch(`${url}${ONE_SWITCH}`);
const { url: bareUrl } = await call<{ url: string }>('baseline', await sample.text());
await stateRun(bareUrl, ONE_SWITCH, 2);
await pacedRun(bareUrl, ONE_SWITCH, 4, PERIOD_MS);
const barePaced = await pacedRun(bareUrl, ONE_SWITCH, SECONDS, PERIOD_MS);
const bareClosed = await stateRun(bareUrl, ONE_SWITCH, SECONDS);

await call('close');
await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
if (!args.keep) await rm(dir, { recursive: true, force: true });

const updatesPerSec = Math.round(acked / ingestSeconds);
process.stdout.write(`${JSON.stringify({
  ingest: {
    updates: acked,
    recordedUpdates: ingestStats.recorder.updates,
    seconds: Math.round(ingestSeconds * 100) / 100,
    updatesPerSec,
    // The server's CPU (parsing, recording, encoding, writing) per update: steady under load, where the wall rate is not.
    serverCpuSecs: Math.round(ingestCpuSecs * 100) / 100,
    updatesPerCpuSec: Math.round(acked / ingestCpuSecs),
    target: '>= 1000000 updates/s',
    met: updatesPerSec >= 1_000_000,
    lineUpdates: LINE_UPDATES,
    bodyLines: BODY_LINES,
    bodiesInFlight: BODIES_IN_FLIGHT,
    archiveBytes: ingestStats.archiveBytes,
    eventLoopDelayMs: ingestStats.eventLoopDelayMs,
  },
  state: {
    connections: CONNECTIONS,
    target: 'p95 <= 2 ms',
    metPaced: (oneSwitchPaced.latencyMs as { p95: number }).p95 <= 2,
    metClosedLoop: (oneSwitch.latencyMs as { p95: number }).p95 <= 2,
    oneSwitchPaced,
    oneSwitch,
    everything,
  },
  baseline: {
    server: 'bare node:http, same body, no work',
    paced: barePaced,
    closedLoop: bareClosed,
  },
}, null, 2)}\n`);
