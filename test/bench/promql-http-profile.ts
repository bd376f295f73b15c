/**
 * One query over HTTP, many times, against a day written by promql-sidecar-profile.ts into
 * DAY_DIR (run that first): each run's wall and CPU milliseconds (this process serves and
 * asks), their p50 and p99, for profiling the fixed costs of a request (parsing, series
 * selection, JSON of the answer) without loading a day or starting Prometheus.
 *
 *   DAY_DIR=/tmp/day RUNS=200 QUERY='bench_temperature{instance="i17"}' node --import tsx test/bench/promql-http-profile.ts
 */
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';

const DAY_DIR = process.env.DAY_DIR;
if (!DAY_DIR) throw new Error('DAY_DIR: the directory promql-sidecar-profile.ts wrote the day into');
const HOURS = Number(process.env.HOURS ?? 24);
const RUNS = Number(process.env.RUNS ?? 200);
const STEP_S = Number(process.env.STEP_S ?? 120);
const QUERIES = (process.env.QUERY ?? 'bench_temperature{instance="i17"}|rate(bench_requests_total{instance="i17"}[5m])').split('|');
const T0_MS = 1_700_000_000_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const archive = await Archive.open(join(DAY_DIR, 'archive'), { flushIntervalMs: 0 });
const app = await buildServer({ archive });
try {
  await (await startSeriesIndex(archive)).whenIdle();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/query_range`;
  const out: Record<string, unknown> = {};
  for (const query of QUERIES) {
    const body = new URLSearchParams({ query, start: String(T0_MS / 1000), end: String((T0_MS + HOURS * 3_600_000) / 1000), step: String(STEP_S) });
    const ms: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    for (let r = 0; r < RUNS; r++) {
      const c = process.cpuUsage();
      const t = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${res.status}: ${text.slice(0, 300)}`);
      bytes = text.length;
      ms.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
    }
    const first = { ms: Math.round((ms[0] as number) * 10) / 10, cpuMs: Math.round((cpu[0] as number) * 10) / 10 };
    const rest = (xs: number[]): number[] => xs.slice(1).sort((a, b) => a - b);
    const r1 = (x: number): number => Math.round(x * 100) / 100;
    out[query] = { first, bytes, p50Ms: r1(percentile(rest(ms), 50)), p99Ms: r1(percentile(rest(ms), 99)), cpuP50Ms: r1(percentile(rest(cpu), 50)), cpuP99Ms: r1(percentile(rest(cpu), 99)) };
  }
  console.log(JSON.stringify({ bench: 'promql-http-profile', runs: RUNS, queries: out }));
} finally {
  await app.close();
  await archive.close();
}
