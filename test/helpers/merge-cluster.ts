/**
 * Shards for the merged-read tests (test/cluster-merge*.test.ts): a known input split over
 * shards, each shard a real server over its own archive, a single archive holding the whole
 * input for differential checks, and a front node whose StaticDirectory lists the shards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Batch } from '../../protocol/value.js';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { Recorder } from '../../server/recorder.js';
import { StaticDirectory, type StaticShard } from '../../server/cluster/static-directory.js';
import { randomBatches } from './workload.js';
import { startServer, type TestServer } from './server.js';
import { tmpDir } from './tmp.js';

/**
 * `shards` streams of random batches over disjoint path prefixes (/w1, /w2, ...), their
 * timestamps spread so that no two streams share one: the single archive records the same
 * batches at the same times.
 */
export function splitWorkload(seed: number, perShard: number, shards = 3): { parts: Batch[][]; all: Batch[] } {
  const t0 = 1_760_000_000_000_000;
  const parts = Array.from({ length: shards }, (_, k) =>
    randomBatches(seed * 10 + k + 1, perShard, { paths: 20, maxUpdates: 6, startTs: t0 }).map((b) => ({
      ts: t0 + (b.ts - t0) * shards + k,
      updates: b.updates.map(([p, v]) => [`/s${k}${p}`, v] as [string, typeof v]),
    })));
  const all = parts.flat().sort((a, b) => a.ts - b.ts);
  return { parts, all };
}

/** A shard that records (Recorder over its archive): its horizon is live, merged reads wait for it. */
export async function recordingShard(batches: Batch[]): Promise<TestServer & { recorder: Recorder }> {
  const dir = await tmpDir('tapedeck-shard-');
  const archive = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024 });
  for (const b of batches) archive.writer!.append(b.updates, b.ts);
  await archive.writer!.flush();
  const recorder = await Recorder.open(archive);
  const app = await buildServer({ archive, recorder });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  return {
    app, archive, recorder,
    url: `http://127.0.0.1:${addr.port}`,
    async close() {
      await app.close();
      await archive.close();
    },
  };
}

/** A front node (empty archive of its own) whose reads merge `shards`. */
export async function frontNode(shards: readonly StaticShard[]): Promise<TestServer> {
  return startServer([], { directory: new StaticDirectory('front', shards) });
}

/** Requests a server is answering now (a merged session's shard streams show here). */
export function inFlight(srv: { app: { server: import('node:http').Server } }): () => number {
  let n = 0;
  srv.app.server.on('request', (_req, res) => {
    n++;
    res.once('close', () => n--);
  });
  return () => n;
}

/** A shard in its own process over an archive holding `batches`, so it can be killed -9 and restarted. */
export class ChildShard {
  proc: ChildProcess | undefined;
  url = '';
  private constructor(readonly dir: string) {}

  static async start(batches: Batch[]): Promise<ChildShard> {
    const dir = await tmpDir('tapedeck-child-shard-');
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const b of batches) a.writer!.append(b.updates, b.ts);
    await a.close();
    const s = new ChildShard(dir);
    await s.run(0);
    return s;
  }

  /** Starts the process (again); `port` 0 picks one, else the old one is taken again. */
  async run(port: number): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./merge-shard-child.ts', import.meta.url)), this.dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.proc = child;
    const lines = createInterface({ input: child.stdout! });
    this.url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (l) => l.startsWith('READY ') && resolve(l.slice(6)));
      child.once('exit', (code) => reject(new Error(`shard exited with ${code}`)));
    });
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  kill9(): Promise<void> {
    const p = this.proc;
    // A process killed by a signal has signalCode set and exitCode null.
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }
}
