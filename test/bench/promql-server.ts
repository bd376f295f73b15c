/**
 * Tapedeck's query server for test/bench/promql.ts in a process of its own, as Prometheus
 * runs in its own: opens the archive the benchmark loaded (argv[2]), starts its sidecar
 * store, listens on a free port, starts the query API's preparation in the background as
 * server/main.ts does (server/promql/prepare.ts: /ready answers 503 until it ends; with the
 * query path's warm-up, as publish.promql_warm_up's default; WARM_UP=0: without) and prints
 * `{"port":N}` on stdout; exits when stdin closes.
 * Its CPU is then read from /proc like Prometheus', without the benchmark's client or the
 * garbage of loading the day.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { isWarmUpRequest, promqlReadiness, startPromqlPreparation } from '../../server/promql/prepare.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: promql-server.ts <archive dir>');
const archive = await Archive.open(dir, { flushIntervalMs: 0 });
await (await startSeriesIndex(archive)).whenIdle();
const app = await buildServer({ archive });
// REQ_CPU=1: each request's server CPU (process.cpuUsage from onRequest to onResponse, ms) on
// stderr as `reqcpu <ms> <onRequest µs> <onResponse µs>`, finer than /proc's 10 ms ticks; the
// warm-up's requests are not shown. Also `connection <µs>` for each connection accepted (the
// warm-up's too) and `gc <start µs> <duration µs> <kind>` for each collection: times on the
// monotonic clock of process.hrtime, which V8's --cpu-prof profiles use too, so that a
// profile's samples can be cut to one request.
if (process.env.REQ_CPU === '1') {
  const at = new WeakMap<object, NodeJS.CpuUsage>();
  const t0 = new WeakMap<object, bigint>();
  app.addHook('onRequest', async (req) => {
    at.set(req, process.cpuUsage());
    t0.set(req, process.hrtime.bigint());
  });
  app.addHook('onResponse', async (req) => {
    const c = process.cpuUsage(at.get(req));
    if (!isWarmUpRequest(req)) process.stderr.write(`reqcpu ${((c.user + c.system) / 1000).toFixed(2)} ${(t0.get(req) as bigint) / 1000n} ${process.hrtime.bigint() / 1000n}\n`);
  });
  app.server.on('connection', () => process.stderr.write(`connection ${process.hrtime.bigint() / 1000n}\n`));
  const offsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) process.stderr.write(`gc ${Math.round(offsetUs + e.startTime * 1000)} ${Math.round(e.duration * 1000)} ${(e as unknown as { detail?: { kind?: number } }).detail?.kind}\n`);
  }).observe({ entryTypes: ['gc'] });
}
await app.listen({ port: 0, host: '127.0.0.1' });
// `{"ready":true}` once prepared (/ready's `promql` check turns ok then too), the way
// Prometheus logs that it is ready: the benchmark waits for it without sending a request.
// The line also says what the preparation did (/ready's detail).
const ready = (): void => void process.stdout.write(`${JSON.stringify({ ready: true, detail: promqlReadiness(archive)[0]?.detail })}\n`);
void startPromqlPreparation(archive, process.env.WARM_UP === '0' ? undefined : { app }).then(ready);
process.stdout.write(`${JSON.stringify({ port: (app.server.address() as { port: number }).port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => archive.close()).then(() => process.exit(0));
});
