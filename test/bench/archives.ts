/**
 * Archives and workloads shared by the benchmarks.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../../storage/archive.js';
import type { Update } from '../../protocol/value.js';
import { rng } from '../helpers/workload.js';

export const MB = 1024 * 1024;

export async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) {
    if (f === 'current' || /^\d{4}-/.test(f)) n += (await stat(join(dir, f))).size;
  }
  return n;
}

export /** A pool of distinct batches of `size` float updates over 10k paths (generated untimed). */
function floatPool(size: number, decimal: boolean): Update[][] {
  const r = rng(size);
  const paths = Array.from({ length: 10_000 }, (_, i) => `/bench/dev-${String(i % 100).padStart(3, '0')}/metric-${i}`);
  const level = paths.map(() => r() * 100);
  const pool: Update[][] = [];
  let p = 0;
  const poolSize = Math.max(64, Math.ceil(200_000 / size));
  for (let b = 0; b < poolSize; b++) {
    const ups: Update[] = new Array(size);
    for (let i = 0; i < size; i++) {
      const id = p;
      p = (p + 1) % paths.length;
      level[id] = (level[id] as number) + (r() - 0.5);
      ups[i] = [paths[id] as string, decimal ? Math.round((level[id] as number) * 100) / 100 : (level[id] as number)];
    }
    pool.push(ups);
  }
  return pool;
}

export async function buildBig(dir: string, gb: number): Promise<{ updates: number; bytes: number; secs: number }> {
  const target = gb * 1024 * MB;
  if ((await stat(dir).catch(() => undefined)) && (await dirBytes(dir)) >= target) {
    const a = await Archive.open(dir, { readonly: true });
    const t = a.totals();
    await a.close();
    return { updates: t.updates, bytes: await dirBytes(dir), secs: 0 };
  }
  await rm(dir, { recursive: true, force: true });
  // 100 arbitrary doubles per batch over 10k paths, one batch per ms, rotating every
  // 256 MiB: about 9 bytes per update, so 1 GB is ~120 M updates.
  const pool = floatPool(100, false);
  const a = await Archive.open(dir, { rotateSizeBytes: 256 * MB });
  const w = a.writer!;
  let ts = 1_763_000_000_000_000;
  let b = 0;
  const t0 = performance.now();
  while (w.stats.bytesWritten < target) {
    for (let j = 0; j < 1000; j++, b++) {
      w.append(pool[b % pool.length] as Update[], (ts += 1000));
    }
    if (w.needsDrain) await w.drain();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await a.close();
  return { updates: b * 100, bytes: await dirBytes(dir), secs: (performance.now() - t0) / 1000 };
}

