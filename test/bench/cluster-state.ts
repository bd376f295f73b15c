/**
 * Merged /state latency (docs/cluster.md, "Merged reads"): `node --import tsx
 * test/bench/cluster-state.ts [--seconds 3000 --switches 16 --requests 300 --shared 0
 * --against DIR]`. Prints one JSON object: p50 and p99 of GET /api/v1/state (latest values,
 * and `at` random times) on a node merging 3 shard processes (fabric workload, a third each),
 * over --requests sequential requests of each kind.
 *  - --shared N: every shard also updates N paths `/shared/m<j>` (every 10th batch), so a
 *    merged state asks each shard when it last updated them (POST /api/v1/shard/updated).
 *  - --against DIR: a second merging node built from the checkout in DIR (e.g. the commit
 *    before a change, with its own node_modules), over the same shards; its requests are
 *    interleaved one for one with this checkout's, so machine load weighs on both alike.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Batch } from '../../protocol/value.js';
import { formatTs } from '../../protocol/time.js';
import { Archive } from '../../storage/index.js';
import { fabricBatches, rng } from '../helpers/workload.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3000' },
    switches: { type: 'string', default: '16' },
    requests: { type: 'string', default: '300' },
    shared: { type: 'string', default: '0' },
    against: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const SWITCHES = Number(args.switches);
const REQUESTS = Number(args.requests);
const SHARED = Number(args.shared);
const SHARDS = 3;
const here = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function shardBatches(k: number): Batch[] {
  return [...fabricBatches(k + 1, SWITCHES, SECONDS)].map((b, i) => {
    const updates = b.updates.map(([p, v]) => [`/s${k}${p}`, v] as [string, typeof v]);
    if (i % 10 === k) for (let j = 0; j < SHARED; j++) updates.push([`/shared/m${j}`, i]);
    return { ts: b.ts + k, updates };
  });
}

async function shard(dir: string): Promise<{ url: string; kill: () => void }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'test/helpers/merge-shard-child.ts'), dir, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((ok, fail) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => l.startsWith('READY ') && ok(l.slice(6)));
    proc.once('exit', (c) => fail(new Error(`shard exited ${c}`)));
  });
  return { url, kill: () => proc.kill('SIGKILL') };
}

/** A merging node (empty archive of its own) built from the checkout in `root`. */
async function front(root: string, shards: Array<{ id: string; url: string }>, dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const { buildServer } = (await import(pathToFileURL(join(root, 'server/app.ts')).href)) as typeof import('../../server/app.js');
  const { StaticDirectory } = (await import(pathToFileURL(join(root, 'server/cluster/static-directory.ts')).href)) as typeof import('../../server/cluster/static-directory.js');
  const { Archive: A } = (await import(pathToFileURL(join(root, 'storage/index.ts')).href)) as typeof import('../../storage/index.js');
  const archive = await A.open(dir, { flushIntervalMs: 0 });
  const app = await buildServer({ archive, directory: new StaticDirectory('front', shards) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, close: async () => { await app.close(); await archive.close(); } };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number).toFixed(2));
}

const dirs: string[] = [];
const tmp = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'tapedeck-bench-state-'));
  dirs.push(d);
  return d;
};

const shards: Array<{ id: string; url: string; kill: () => void }> = [];
const fronts: Array<{ name: string; url: string; close: () => Promise<void> }> = [];
try {
  let lastTs = 0;
  for (let k = 0; k < SHARDS; k++) {
    const dir = await tmp();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const batches = shardBatches(k);
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    lastTs = Math.max(lastTs, batches.at(-1)?.ts ?? 0);
    await a.close();
    shards.push({ id: `s${k}`, ...(await shard(dir)) });
  }
  const list = shards.map((s) => ({ id: s.id, url: s.url }));
  fronts.push({ name: 'this', ...(await front(here, list, await tmp())) });
  if (args.against) fronts.push({ name: 'against', ...(await front(resolve(args.against), list, await tmp())) });
  const r = rng(1);
  const firstTs = lastTs - SECONDS * 1_000_000;
  const lat = fronts.map(() => ({ latest: [] as number[], at: [] as number[] }));
  for (let i = 0; i < REQUESTS; i++) {
    const at = encodeURIComponent(formatTs(firstTs + Math.floor(r() * (lastTs - firstTs))));
    for (const [kind, q] of [['latest', '/api/v1/state'], ['at', `/api/v1/state?at=${at}`]] as const) {
      for (const [k, f] of fronts.entries()) {
        const t0 = performance.now();
        const res = await fetch(f.url + q);
        const body = await res.text();
        if (res.status !== 200 || body.includes('"partial"')) throw new Error(`${f.name} ${q}: ${res.status} ${body.slice(0, 200)}`);
        lat[k]![kind].push(performance.now() - t0);
      }
    }
  }
  const out: Record<string, unknown> = { bench: 'cluster-state', input: { shards: SHARDS, switches: SWITCHES, seconds: SECONDS, shared: SHARED, requests: REQUESTS } };
  fronts.forEach((f, k) => {
    const l = lat[k]!;
    out[f.name] = { latest: { p50Ms: pct(l.latest, 50), p99Ms: pct(l.latest, 99) }, at: { p50Ms: pct(l.at, 50), p99Ms: pct(l.at, 99) } };
  });
  out.load = loadavg().map((x) => Number(x.toFixed(2)));
  console.log(JSON.stringify(out));
} finally {
  for (const f of fronts) await f.close();
  for (const s of shards) s.kill();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
