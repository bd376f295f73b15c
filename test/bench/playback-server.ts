/**
 * Benchmark helper: a Tapedeck server over an existing archive, in its own process so the
 * load generator does not share its event loop. Prints `PORT <n>`; on each `stats` line
 * read from stdin prints one JSON line of server-side figures, and `reset` clears them.
 */
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Archive } from '../../storage/archive.js';
import { buildServer } from '../../server/app.js';

const dir = process.argv[2] as string;
const archive = await Archive.open(dir, { readonly: true });
const app = await buildServer({ archive, playback: { maxSessions: 1024, maxSessionsPerClient: 1024 } });
await app.listen({ port: 0, host: '127.0.0.1' });
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let cpu0 = process.cpuUsage();
let t0 = performance.now();
process.stdout.write(`PORT ${(app.server.address() as { port: number }).port}\n`);

function pct(xs: Float64Array, p: number): number {
  if (xs.length === 0) return 0;
  const s = Float64Array.from(xs).sort();
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number).toFixed(3));
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'reset') {
    app.sessions.resetPacing();
    loop.reset();
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    return;
  }
  if (line !== 'stats') return;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const errs = app.sessions.pacingErrors();
  process.stdout.write(JSON.stringify({
    sessions: app.sessions.size,
    pacingErrorMs: { samples: errs.length, p50: pct(errs, 50), p99: pct(errs, 99), max: pct(errs, 100) },
    cpuPercent: Number((((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1)),
    rssMB: Math.round(process.memoryUsage().rss / 1024 / 1024),
    eventLoopDelayMs: { p50: Number((loop.percentile(50) / 1e6).toFixed(3)), p99: Number((loop.percentile(99) / 1e6).toFixed(3)), max: Number((loop.max / 1e6).toFixed(3)) },
  }) + '\n');
});

process.once('SIGTERM', () => {
  void app.close().then(() => archive.close()).then(() => process.exit(0));
});
