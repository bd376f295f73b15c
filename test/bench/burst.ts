/**
 * Play-next and burst benchmark: `node --import tsx test/bench/burst.ts [-- --presses 200]`.
 * Prints one JSON object:
 *  - next: time from sending `{ next: true }` to receiving the `controls` frame that ends
 *    it (the batch arrived before it), p50/p99 over --presses presses 25 ms apart (under the
 *    50 control frames a second a stream takes), on a paused session;
 *  - burst: batches/s and updates/s of a `burst: 10000` (burstBatchesMax) from the
 *    beginning, JSON and msgpack, coalesced (`batches` frames, as the SDK and the web player
 *    take them), from the control to the closing `controls` frame.
 * Fabric workload (64 switches x 8 metrics = 512 updates a batch, one batch a second). The
 * server runs in a child process (test/bench/playback-server.ts); the client runs here.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Archive } from '../../storage/archive.js';
import { fabricBatches } from '../../server/sim/fabric.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { decodeMsgpack } from '../../protocol/value-msgpack.js';

const { values: args } = parseArgs({ options: { presses: { type: 'string', default: '200' } } });
const PRESSES = Number(args.presses);
const BATCHES = PROTOCOL_LIMITS.burstBatchesMax + 500;

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-burst-'));
const archive = await Archive.open(dir, { flushIntervalMs: 0 });
for (const b of fabricBatches(7, 64, BATCHES)) archive.writer!.append(b.updates, b.ts);
await archive.close();
process.stderr.write(`archive: ${BATCHES} batches written\n`);

const proc = spawn(process.execPath, ['--import', 'tsx', new URL('./playback-server.ts', import.meta.url).pathname, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: proc.stdout! });
const port = await new Promise<number>((resolve) => lines.once('line', (l) => resolve(Number(l.split(' ')[1]))));
const base = `http://127.0.0.1:${port}`;

async function session(): Promise<string> {
  const res = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'pause', pos: 'beginning' }) });
  return ((await res.json()) as { id: string }).id;
}

/** A stream counting controls frames and updates; `controls(k)` resolves once k controls frames came. */
async function stream(id: string, format: 'json' | 'msgpack'): Promise<{ ws: WebSocket; controls(k: number): Promise<void>; seen: () => number; updates: () => number }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/sessions/${id}/stream?coalesce=true${format === 'msgpack' ? '&format=msgpack' : ''}`);
  let waiter: { k: number; resolve: () => void } | undefined;
  let updates = 0;
  let controls = 0;
  ws.on('message', (data: Buffer, binary: boolean) => {
    const f = (binary ? decodeMsgpack(data) : JSON.parse(data.toString('utf8'))) as { type: string; updates?: unknown[]; batches?: Array<{ updates: unknown[] }> };
    if (f.type === 'batch') updates += f.updates!.length;
    if (f.type === 'batches') for (const b of f.batches!) updates += b.updates.length;
    if (f.type === 'controls') controls++;
    if (waiter && controls >= waiter.k) {
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const s = {
    ws,
    controls: (k: number) => (controls >= k ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { k, resolve }))),
    seen: () => controls,
    updates: () => updates,
  };
  await s.controls(1); // the state frame and its controls
  return s;
}

const pct = (xs: number[], p: number): number => Number(([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0).toFixed(3));

const next: number[] = [];
const PRESS_GAP_MS = 25;
let lastPressAt = 0;
{
  const s = await stream(await session(), 'json');
  for (let i = 0; i < PRESSES; i++) {
    // At most 40 presses a second: a stream takes 50 control frames a second
    // (CONTROLS_PER_SECOND_MAX), past it TPD_RATE_LIMITED and no controls frame.
    const since = performance.now() - (next.length > 0 ? lastPressAt : -Infinity);
    if (since < PRESS_GAP_MS) await new Promise((r) => setTimeout(r, PRESS_GAP_MS - since));
    lastPressAt = performance.now();
    const t = performance.now();
    const done = s.controls(s.seen() + 1);
    s.ws.send(JSON.stringify({ type: 'control', set: { next: true } }));
    await done;
    next.push(performance.now() - t);
  }
  s.ws.close();
}
process.stderr.write(`next: ${PRESSES} presses\n`);

const burst: Record<string, { batches: number; ms: number; batchesPerS: number; updatesPerS: number }> = {};
for (const format of ['json', 'msgpack'] as const) {
  const s = await stream(await session(), format);
  const n = PROTOCOL_LIMITS.burstBatchesMax;
  const t = performance.now();
  const done = s.controls(s.seen() + 1);
  s.ws.send(JSON.stringify({ type: 'control', set: { burst: n } }));
  await done;
  const ms = performance.now() - t;
  burst[format] = { batches: n, ms: Math.round(ms), batchesPerS: Math.round((n / ms) * 1000), updatesPerS: Math.round((s.updates() / ms) * 1000) };
  s.ws.close();
}

proc.kill();
await rm(dir, { recursive: true, force: true });
console.log(JSON.stringify({ next: { presses: PRESSES, p50Ms: pct(next, 50), p99Ms: pct(next, 99) }, burst }));
