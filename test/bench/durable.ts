/**
 * Durable acknowledgements benchmark: `npm run bench:durable [-- --seconds 10 --pushers 100
 * --body-lines 100]`. A recording server in a child process (./record-server.ts), PUSHERS
 * concurrent pushers each posting NDJSON bodies (lines of 100 updates) one after another,
 * first with ?ack=durable (answered once the body is in a committed, fsynced flush), then
 * with ?ack=memory (answered once it is in the writer). Prints one JSON object: per mode,
 * updates/s and acks/s (bodies answered per second) and the ack latency p50/p99/max in ms.
 * The load generator and the server share this machine's cores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { Pool } from 'undici';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    pushers: { type: 'string', default: '100' },
    'body-lines': { type: 'string', default: '100' },
  },
});
const SECONDS = Number(args.seconds);
const PUSHERS = Number(args.pushers);
const BODY_LINES = Number(args['body-lines']);
const LINE_UPDATES = 100;
const PATHS = 1000;

function body(seed: number): Buffer {
  const lines: string[] = [];
  let k = seed * 7919 + 1;
  for (let l = 0; l < BODY_LINES; l++) {
    const parts: string[] = [];
    for (let u = 0; u < LINE_UPDATES; u++) {
      k = (k * 1103515245 + 12345) % 2147483648;
      parts.push(`"/bench/sw-${String((l * LINE_UPDATES + u) % PATHS).padStart(4, '0')}":${((k % 100000) / 10).toFixed(1)}`);
    }
    lines.push(`{"updates":{${parts.join(',')}}}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return Math.round((sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number) * 100) / 100;
}

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-durable-'));
const worker = fork(new URL('./record-server.ts', import.meta.url).pathname, [dir], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
let nextId = 1;
const pending = new Map<number, (d: unknown) => void>();
const ready = new Promise<{ url: string }>((resolve) => pending.set(0, resolve as (d: unknown) => void));
worker.on('message', (m: { id: number; data: unknown }) => {
  pending.get(m.id)?.(m.data);
  pending.delete(m.id);
});
const call = <T>(cmd: string): Promise<T> => new Promise((resolve) => {
  const id = nextId++;
  pending.set(id, resolve as (d: unknown) => void);
  worker.send({ cmd, id });
});
const { url } = await ready;
const bodies = Array.from({ length: 16 }, (_, i) => body(i));
const pool = new Pool(url, { connections: PUSHERS, pipelining: 1 });

async function run(ack: 'durable' | 'memory', seconds: number): Promise<Record<string, unknown>> {
  const latencies: number[] = [];
  let updates = 0;
  let sent = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: PUSHERS }, async () => {
    while (performance.now() < deadline) {
      const b = bodies[sent++ % bodies.length] as Buffer;
      const start = performance.now();
      const res = await pool.request({ path: `/api/v1/ingest?ack=${ack}`, method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: b });
      const j = (await res.body.json()) as { recorded_updates: number; ack: string };
      if (res.statusCode !== 200 || j.ack !== ack) throw new Error(`ingest answered ${res.statusCode}: ${JSON.stringify(j)}`);
      latencies.push(performance.now() - start);
      updates += j.recorded_updates;
    }
  }));
  const s = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ack,
    seconds: Math.round(s * 100) / 100,
    updatesPerSec: Math.round(updates / s),
    acksPerSec: Math.round(latencies.length / s),
    ackLatencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99), max: pct(latencies, 100) },
  };
}

await run('memory', 2); // warm-up (JIT, connections): not reported
const durable = await run('durable', SECONDS);
const memory = await run('memory', SECONDS);
await call('flush');
const stats = await call<{ recorder: unknown; archiveBytes: number }>('stats');
await pool.close();
await call('close');
await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
await rm(dir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({
  pushers: PUSHERS,
  bodyLines: BODY_LINES,
  lineUpdates: LINE_UPDATES,
  target: 'durable >= 1000000 updates/s',
  met: (durable.updatesPerSec as number) >= 1_000_000,
  durable,
  memory,
  archiveBytes: stats.archiveBytes,
})}\n`);
