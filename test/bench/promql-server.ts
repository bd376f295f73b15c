/**
 * Tapedeck's query server for test/bench/promql.ts in a process of its own, as Prometheus
 * runs in its own: opens the archive the benchmark loaded (argv[2]), starts its sidecar
 * store, listens on a free port, starts the query API's preparation in the background as
 * server/main.ts does (server/promql/prepare.ts: /ready answers 503 until it ends) and prints
 * `{"port":N}` on stdout; exits when stdin closes.
 * Its CPU is then read from /proc like Prometheus', without the benchmark's client or the
 * garbage of loading the day.
 */
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { startPromqlPreparation } from '../../server/promql/prepare.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: promql-server.ts <archive dir>');
const archive = await Archive.open(dir, { flushIntervalMs: 0 });
await (await startSeriesIndex(archive)).whenIdle();
const app = await buildServer({ archive });
await app.listen({ port: 0, host: '127.0.0.1' });
// `{"ready":true}` once prepared (/ready's `promql` check turns ok then too), the way
// Prometheus logs that it is ready: the benchmark waits for it without sending a request.
void startPromqlPreparation(archive).then(() => process.stdout.write('{"ready":true}\n'));
process.stdout.write(`${JSON.stringify({ port: (app.server.address() as { port: number }).port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => archive.close()).then(() => process.exit(0));
});
