/**
 * Tapedeck's side of the peer harness, on the storage API directly (no server). One phase
 * per process, one JSON object on stdout:
 *
 *   node --import tsx bench/peers/tapedeck-side.ts --phase write --workload W --dir D --flush-interval-ms 30000
 *   node --import tsx bench/peers/tapedeck-side.ts --phase read --dir D --seeks S
 *
 * Write: paths are resolved to writer ids once (writer.pathId, inside the timed loop, as
 * netidx's side adds its paths), each batch goes in as columns (appendColumns: the batch's
 * ids mapped to the writer's, and its Float64Array of values), at the storage defaults (images every
 * 64 MiB, a two-phase commit with fdatasync each 65534 pages or flush interval) and one final
 * flush; all-number blocks are encoded by the native addon when it is built (docs/native.md). Read: open read-only, seek to each instant (position, then full state and the first
 * batch after), then read every batch from the beginning twice with nextColumns (a block at a
 * time: ids and unboxed numbers, like netidx's BatchItems; the second pass is `read`), then
 * twice with nextRaw (a batch at a time; the second is `readRaw`) and once with next
 * ([path, value] pairs, `readPairs`).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../../storage/index.js';
import { loadNativeCodec } from '../../storage/native-codec-file.js';
import { dirBytes } from '../../test/bench/archives.js';
import { readWorkloadFile, type PoolBatch } from './workload-file.js';
import { cpuSecs, flag, readSeeks, rss, spread } from './measure.js';

async function allBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(join(dir, f))).size;
  return n;
}

async function write(workloadFile: string, dir: string, flushIntervalMs: number): Promise<object> {
  const w = readWorkloadFile(workloadFile);
  await rm(dir, { recursive: true, force: true });
  const a = await Archive.open(dir, { flushIntervalMs });
  const writer = a.writer!;
  let updates = 0;
  const c0 = cpuSecs();
  const t0 = performance.now();
  // Ids resolved once per path, as netidx's side does (add_paths, id_for_path); each batch
  // then maps its workload ids to the writer's, as netidx's builds its BatchItems.
  const ids = new Uint32Array(w.paths.length);
  for (let k = 0; k < w.paths.length; k++) ids[k] = writer.pathId(w.paths[k] as string);
  let scratch = new Uint32Array(0);
  for (let i = 0; i < w.ts.length; i++) {
    const b = w.pool[i % w.pool.length] as PoolBatch;
    const n = b.ids.length;
    if (scratch.length !== n) scratch = new Uint32Array(n);
    for (let k = 0; k < n; k++) scratch[k] = ids[b.ids[k] as number] as number;
    writer.appendColumns(scratch, b.values, w.ts[i]);
    updates += n;
    if (writer.needsDrain) await writer.drain();
  }
  await writer.flush();
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSecs() - c0;
  const peak = rss();
  await a.close();
  const bytes = await dirBytes(dir);
  return {
    updates,
    batches: w.ts.length,
    secs: Number(secs.toFixed(3)),
    updatesPerSec: Math.round(updates / secs),
    cpuSecs: Number(cpu.toFixed(3)),
    updatesPerCpuSec: Math.round(updates / cpu),
    bytes,
    dirBytes: await allBytes(dir),
    bytesPerUpdate: Number((bytes / updates).toFixed(3)),
    rss: peak,
    // Which payload encoder wrote the blocks (docs/native.md; TAPEDECK_NATIVE_CODEC=off for the TypeScript one).
    payloadEncoder: loadNativeCodec(),
  };
}

async function seekAll(a: Archive, seeks: readonly number[]): Promise<{ seekMs: number[]; seekStateMs: number[]; statePathsMin: number }> {
  const seekMs: number[] = [];
  const seekStateMs: number[] = [];
  let statePathsMin = Infinity;
  for (const t of seeks) {
    const c = a.cursor();
    const s0 = performance.now();
    await c.seek({ ts: t });
    const s1 = performance.now();
    const st = await c.stateById();
    await c.nextRaw();
    const s2 = performance.now();
    seekMs.push(s1 - s0);
    seekStateMs.push(s2 - s0);
    statePathsMin = Math.min(statePathsMin, st.size);
  }
  return { seekMs, seekStateMs, statePathsMin };
}

interface ReadPass {
  api: string;
  updates: number;
  batches: number;
  secs: number;
  updatesPerSec: number;
  cpuSecs: number;
  updatesPerCpuSec: number;
  valueSum: number;
}

async function timed(api: string, pass: () => Promise<{ updates: number; batches: number; valueSum: number }>): Promise<ReadPass> {
  const c0 = cpuSecs();
  const t0 = performance.now();
  const { updates, batches, valueSum } = await pass();
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSecs() - c0;
  return { api, updates, batches, secs: Number(secs.toFixed(3)), updatesPerSec: Math.round(updates / secs), cpuSecs: Number(cpu.toFixed(3)), updatesPerCpuSec: Math.round(updates / cpu), valueSum };
}

/** nextColumns: one block's batches at a time, path ids and unboxed numbers in update order. */
function readColumns(a: Archive): Promise<ReadPass> {
  return timed('nextColumns', async () => {
    const c = a.cursor();
    let updates = 0;
    let batches = 0;
    let valueSum = 0;
    for (let v = await c.nextColumns(); v; v = await c.nextColumns()) {
      batches += v.batches;
      const from = v.starts[0] as number;
      const to = v.starts[v.batches] as number;
      const nums = v.nums;
      // Values that are not numbers (none in these workloads) are in v.others and hold 0 here.
      for (let i = from; i < to; i++) valueSum += nums[i] as number;
      updates += to - from;
    }
    return { updates, batches, valueSum };
  });
}

/** nextRaw: one batch at a time, a view of ids and a Value[] of the decoded block. */
function readRaw(a: Archive): Promise<ReadPass> {
  return timed('nextRaw', async () => {
    const c = a.cursor();
    let updates = 0;
    let batches = 0;
    let valueSum = 0;
    for (let b = await c.nextRaw(); b; b = await c.nextRaw()) {
      batches++;
      for (let i = b.from; i < b.to; i++) {
        const v = b.values[i];
        if (typeof v === 'number') valueSum += v;
      }
      updates += b.to - b.from;
    }
    return { updates, batches, valueSum };
  });
}

async function readPairs(a: Archive): Promise<{ updates: number; secs: number; updatesPerSec: number }> {
  const c = a.cursor();
  let updates = 0;
  const t0 = performance.now();
  for (let b = await c.next(); b; b = await c.next()) updates += b.updates.length;
  const secs = (performance.now() - t0) / 1000;
  return { updates, secs: Number(secs.toFixed(3)), updatesPerSec: Math.round(updates / secs) };
}

async function read(dir: string, seeksFile: string): Promise<object> {
  const seeks = readSeeks(seeksFile);
  // The addon's CRC32C, as the server's process has it (its archive is opened for writing,
  // which probes the addon at start): a read-only open does not probe (docs/native.md).
  const codec = loadNativeCodec();
  const t0 = performance.now();
  const a = await Archive.open(dir, { readonly: true });
  const openMs = performance.now() - t0;
  const s = await seekAll(a, seeks);
  const rssAfterOpenSeek = rss();
  // Two passes, as on every side: the first pays JIT tiering (here) or page mapping (netidx).
  const readFirstPass = await readColumns(a);
  const columns = await readColumns(a);
  // The batch-at-a-time APIs on the same archive (two passes each, the second reported).
  await readRaw(a);
  const raw = await readRaw(a);
  const pairs = await readPairs(a);
  await a.close();
  return {
    openMs: Number(openMs.toFixed(3)),
    seekMs: spread(s.seekMs),
    seekStateFirstBatchMs: spread(s.seekStateMs),
    statePathsMin: s.statePathsMin,
    rssAfterOpenSeek,
    readFirstPass,
    read: columns,
    readRaw: raw,
    readPairs: pairs,
    rss: rss(),
    payloadEncoder: codec,
  };
}

const argv = process.argv.slice(2);
const phase = flag(argv, 'phase');
const out = phase === 'write'
  ? await write(flag(argv, 'workload'), flag(argv, 'dir'), Number(flag(argv, 'flush-interval-ms')))
  : await read(flag(argv, 'dir'), flag(argv, 'seeks'));
process.stdout.write(JSON.stringify(out) + '\n');
