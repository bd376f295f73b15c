/**
 * Cursor.nextColumns per CPU-second on the two workloads of bench:peers (fabric, mixed),
 * read many times over so that one figure is not one 30 ms pass: writes each workload once
 * into --dir (kept between runs: builds compared A/B read the same archives), then reads
 * it --passes times and prints one JSON object with each workload's median, lowest and
 * highest updates per CPU-second.
 *
 *   node --import tsx test/bench/read-columns.ts --dir /tmp/x [--passes 15] [--mixed-updates 2000000] [--fabric-hours 1]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Archive } from '../../storage/index.js';
import { fabricWorkload, mixedWorkload } from '../../bench/peers/workloads.js';
import type { PoolBatch, Workload } from '../../bench/peers/workload-file.js';
import { cpuSecs } from '../../bench/peers/measure.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    passes: { type: 'string', default: '15' },
    'mixed-updates': { type: 'string', default: '2000000' },
    'fabric-hours': { type: 'string', default: '1' },
  },
});
if (args.dir === undefined) throw new Error('--dir is required');

async function write(w: Workload, dir: string): Promise<void> {
  const a = await Archive.open(dir, { flushIntervalMs: 30_000 });
  const writer = a.writer!;
  const ids = Uint32Array.from(w.paths, (p) => writer.pathId(p));
  for (let i = 0; i < w.ts.length; i++) {
    const b = w.pool[i % w.pool.length] as PoolBatch;
    writer.appendColumns(Uint32Array.from(b.ids, (id) => ids[id] as number), b.values, w.ts[i] as number);
    if (writer.needsDrain) await writer.drain();
  }
  await writer.flush();
  await a.close();
}

async function pass(a: Archive): Promise<{ updates: number; cpu: number; sum: number }> {
  const c = a.cursor();
  let updates = 0;
  let sum = 0;
  const c0 = cpuSecs();
  for (let v = await c.nextColumns(); v; v = await c.nextColumns()) {
    const from = v.starts[0] as number;
    const to = v.starts[v.batches] as number;
    for (let i = from; i < to; i++) sum += v.nums[i] as number;
    updates += to - from;
  }
  return { updates, cpu: cpuSecs() - c0, sum };
}

async function measure(w: () => Workload, name: string): Promise<object> {
  const dir = join(args.dir as string, name);
  if (!existsSync(dir)) await write(w(), dir);
  const a = await Archive.open(dir, { readonly: true });
  const rates: number[] = [];
  let updates = 0;
  let sum = 0;
  await pass(a);
  for (let i = 0; i < Number(args.passes); i++) {
    const p = await pass(a);
    rates.push(p.updates / p.cpu);
    updates = p.updates;
    sum = p.sum;
  }
  await a.close();
  rates.sort((x, y) => x - y);
  const m = (x: number): number => Math.round(x / 1e5) / 10;
  return { name, updates, valueSum: sum, medianMUpdatesPerCpuSec: m(rates[rates.length >> 1] as number), lowM: m(rates[0] as number), highM: m(rates[rates.length - 1] as number) };
}

console.log(JSON.stringify({ results: [await measure(() => fabricWorkload(Number(args['fabric-hours'])), 'fabric'), await measure(() => mixedWorkload(Number(args['mixed-updates'])), 'mixed')] }));
