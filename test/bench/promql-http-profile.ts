/**
 * One query over HTTP, many times, against a day written by promql-sidecar-profile.ts into
 * DAY_DIR (run that first): each run's wall and CPU milliseconds, their p50 and p99, for
 * profiling the fixed costs of a request (parsing, series selection, JSON of the answer)
 * without loading a day or starting Prometheus.
 *
 *   DAY_DIR=/tmp/day RUNS=200 QUERY='bench_temperature{instance="i17"}' node --import tsx test/bench/promql-http-profile.ts
 *
 * SERVER=child serves from test/bench/promql-server.ts in a process of its own (as
 * bench:promql does): the CPU is then the server's alone, read from /proc, and reported per
 * request as the total over the runs divided by their count (one request is below /proc's
 * 10 ms tick); `cold` is the first COLD runs of the fresh process (default 10), `warm` the
 * rest. SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the server alone.
 * BLOCKS=1,9,40,50,100,300,500,1000: the CPU per request of consecutive blocks of that many
 * requests from the server's start (how fast the JIT compiles the path; RUNS is then their sum).
 * Without SERVER=child this process serves and asks: CPU counts the client too.
 * With SERVER=child the first request is sent once the server says it is prepared (its
 * `{"ready":true}` line, test/bench/promql-server.ts; `start` gives the ms to listening and
 * to ready, and the RSS then); READY=0 sends it as soon as the server listens.
 */
import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';

const DAY_DIR = process.env.DAY_DIR;
if (!DAY_DIR) throw new Error('DAY_DIR: the directory promql-sidecar-profile.ts wrote the day into');
const HOURS = Number(process.env.HOURS ?? 24);
const BLOCKS = process.env.BLOCKS?.split(',').map(Number);
const RUNS = BLOCKS ? BLOCKS.reduce((a, b) => a + b, 0) : Number(process.env.RUNS ?? 200);
const COLD = Number(process.env.COLD ?? 10);
const STEP_S = Number(process.env.STEP_S ?? 120);
const QUERIES = (process.env.QUERY ?? 'bench_temperature{instance="i17"}|rate(bench_requests_total{instance="i17"}[5m])').split('|');
const CHILD = process.env.SERVER === 'child';
const T0_MS = 1_700_000_000_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** CPU milliseconds of the server so far. */
type CpuClock = () => Promise<number>;

interface Server {
  url: string;
  cpu: CpuClock;
  stop: () => Promise<void>;
}

async function serveHere(): Promise<Server> {
  const archive = await Archive.open(join(DAY_DIR as string, 'archive'), { flushIntervalMs: 0 });
  const app = await buildServer({ archive });
  await (await startSeriesIndex(archive)).whenIdle();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const cpu: CpuClock = () => {
    const u = process.cpuUsage();
    return Promise.resolve((u.user + u.system) / 1000);
  };
  return {
    url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    cpu,
    stop: async () => {
      await app.close();
      await archive.close();
    },
  };
}

const WAIT_READY = process.env.READY !== '0';
let start: Record<string, number> = {};

async function serveInChild(): Promise<Server> {
  const args = [...(process.env.SERVER_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []), '--import', 'tsx', new URL('./promql-server.ts', import.meta.url).pathname, join(DAY_DIR as string, 'archive')];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const next = (): Promise<string> => new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`promql-server exited (${code}) before listening or ready`)));
  });
  const { port } = JSON.parse(await next()) as { port: number };
  const listenMs = performance.now() - t0;
  // A tree without preparation (no server/promql/prepare.ts) never says it is ready: it is once it listens.
  const prepares = await access(new URL('../../server/promql/prepare.ts', import.meta.url)).then(() => true, () => false);
  const readyLine = WAIT_READY && prepares ? (JSON.parse(await next()) as { detail?: string }) : {};
  const readyMs = performance.now() - t0;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child.pid as number}/status`, 'utf8'))?.[1] ?? NaN);
  const cpu: CpuClock = async () => {
    const fields = (await readFile(`/proc/${child.pid as number}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  // cpuMsReady: the process's CPU from its spawn to ready (module loading, open, preparation, warm-up).
  start = { listenMs: Math.round(listenMs), readyMs: Math.round(readyMs), rssKbReady: rssKb, cpuMsReady: await cpu() };
  if (readyLine.detail !== undefined) process.stderr.write(`ready: ${readyLine.detail}\n`);
  return {
    url: `http://127.0.0.1:${port}`,
    cpu,
    stop: async () => {
      start.rssKbEnd = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child.pid as number}/status`, 'utf8'))?.[1] ?? NaN);
      child.stdin.end();
      await exited;
    },
  };
}

const r1 = (x: number): number => Math.round(x * 100) / 100;

function stats(ms: number[], cpu: number[], cpuTotalMs: number): Record<string, number> {
  const w = [...ms].sort((a, b) => a - b);
  const c = [...cpu].sort((a, b) => a - b);
  const out: Record<string, number> = { runs: ms.length, p50Ms: r1(percentile(w, 50)), p99Ms: r1(percentile(w, 99)), cpuPerQueryMs: r1(cpuTotalMs / ms.length) };
  // Per-request CPU is meaningful only when read from this process (microseconds); /proc's are 10 ms ticks.
  if (!CHILD) Object.assign(out, { cpuP50Ms: r1(percentile(c, 50)), cpuP99Ms: r1(percentile(c, 99)) });
  return out;
}

const server = CHILD ? await serveInChild() : await serveHere();
try {
  const url = `${server.url}/api/v1/query_range`;
  const out: Record<string, unknown> = {};
  for (const query of QUERIES) {
    const body = new URLSearchParams({ query, start: String(T0_MS / 1000), end: String((T0_MS + HOURS * 3_600_000) / 1000), step: String(STEP_S) });
    const ms: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    let coldCpuMs = 0;
    const all0 = await server.cpu();
    const blocks: string[] = [];
    let blockEnd = 0;
    let blockCpu0 = all0;
    let block = 0;
    for (let r = 0; r < RUNS; r++) {
      if (r === COLD) coldCpuMs = (await server.cpu()) - all0;
      if (BLOCKS && r === blockEnd) {
        const now = await server.cpu();
        if (r > 0) blocks.push(`${BLOCKS[block - 1]}: ${r1((now - blockCpu0) / (BLOCKS[block - 1] as number))}`);
        blockCpu0 = now;
        blockEnd += BLOCKS[block++] as number;
      }
      const c = await server.cpu();
      const t = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${res.status}: ${text.slice(0, 300)}`);
      bytes = text.length;
      ms.push(performance.now() - t);
      cpu.push((await server.cpu()) - c);
    }
    const end = await server.cpu();
    if (BLOCKS) blocks.push(`${BLOCKS[block - 1]}: ${r1((end - blockCpu0) / (BLOCKS[block - 1] as number))}`);
    const warmCpuMs = end - all0 - coldCpuMs;
    const first = { ms: r1(ms[0] as number), cpuMs: r1(cpu[0] as number) };
    out[query] = { first, bytes, cold: stats(ms.slice(0, COLD), cpu.slice(0, COLD), coldCpuMs), warm: stats(ms.slice(COLD), cpu.slice(COLD), warmCpuMs), ...(BLOCKS ? { cpuPerQueryMsByBlock: blocks } : {}) };
  }
  await server.stop();
  console.log(JSON.stringify({ bench: 'promql-http-profile', server: CHILD ? 'child' : 'same', waitReady: WAIT_READY, runs: RUNS, cold: COLD, start, queries: out }));
} catch (err) {
  await server.stop();
  throw err;
}
