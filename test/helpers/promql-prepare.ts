/**
 * A small archive of Prometheus series and a plain path (three sealed files with sidecars and
 * the open one), the servers the preparation tests start on it, and their requests: shared by
 * test/promql-prepare.test.ts and test/promql-warm-up.test.ts.
 */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { Archive } from '../../storage/index.js';
import { seriesToPath } from '../../protocol/prom-path.js';
import type { Value } from '../../protocol/value.js';
import { buildServer } from '../../server/app.js';
import { startSeriesIndex } from '../../server/series-index.js';
import { tmpDir } from './tmp.js';
import { rng } from './workload.js';

export const T0_MS = 1_700_000_000_000;
export const STEPS = 360;

const cleanup: Array<() => Promise<void>> = [];
/** Stops every server served since the last call (afterEach). */
export async function stopServed(): Promise<void> {
  for (const c of cleanup.splice(0).reverse()) await c();
}

export const QUERIES = ['g{instance="i3"}', 'sum by (job) (rate(c_total[5m]))', 'topk(3, g)', 'tapedeck_value{path="/plain/x"}'];

/** Three sealed files with sidecars and the open one: Prometheus series and a plain path. */
export async function build(seed: number): Promise<string> {
  const rand = rng(seed);
  const dir = await tmpDir();
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  const paths = Array.from({ length: 30 }, (_, i) => seriesToPath({ name: i % 2 === 0 ? 'c_total' : 'g', labels: { job: `j${i % 3}`, instance: `i${i >> 1}` } }));
  for (let k = 0; k < STEPS; k++) {
    const updates: Array<[string, Value]> = paths.filter(() => rand() < 0.9).map((p, i) => [p, p.includes('c_total') ? k * (i + 1) : Math.round(rand() * 1000) / 10]);
    updates.push(['/plain/x', k % 17]);
    a.writer!.append(updates, (T0_MS + k * 15_000) * 1000);
    if (k % 100 === 99) await a.writer!.rotate();
  }
  await a.writer!.flush();
  await (await startSeriesIndex(a)).whenIdle();
  await a.close();
  return dir;
}

export interface Served {
  a: Archive;
  url: string;
  app: FastifyInstance;
  stop: () => Promise<void>;
}

export type ServeOptions = Omit<Parameters<typeof buildServer>[0], 'archive'> & { writable?: boolean; hooks?: (app: FastifyInstance) => void };

export async function serve(dir: string, opts: ServeOptions = {}): Promise<Served> {
  const a = await Archive.open(dir, opts.writable ? { flushIntervalMs: 0 } : { readonly: true });
  const app = await buildServer({ archive: a, ...opts });
  opts.hooks?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await app.close();
    await a.close();
  };
  cleanup.push(stop);
  return { a, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, app, stop };
}

export async function ask(url: string, query: string, headers: Record<string, string> = {}): Promise<string> {
  const form = new URLSearchParams({ query, start: String(T0_MS / 1000), end: String(T0_MS / 1000 + STEPS * 15), step: '60' });
  const r = await fetch(`${url}/api/v1/query_range`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form });
  const body = await r.text();
  expect(r.status, body).toBe(200);
  return body;
}

export async function ready(url: string): Promise<{ status: number; promql: { ok: boolean; detail: string } | undefined }> {
  const r = await fetch(`${url}/ready`);
  const body = (await r.json()) as { checks: Array<{ check: string; ok: boolean; detail: string }> };
  return { status: r.status, promql: body.checks.find((c) => c.check === 'promql') };
}

/** What a server without preparation answers. */
export async function reference(dir: string): Promise<string[]> {
  const s = await serve(dir);
  const out: string[] = [];
  for (const q of QUERIES) out.push(await ask(s.url, q));
  return out;
}
