/**
 * PROTOTYPE benchmark (docs/wasm-encoder.md): the number-column encoder in TypeScript
 * (storage/codec/columns.ts encodeNumberColumns) against its WebAssembly build
 * (native/column-encoder through storage/codec/wasm-columns.ts), on the blocks the writer
 * makes of the bench/peers workloads: batches gathered until a block holds 16 384 updates
 * (the block builder's blockUpdatesTarget), columns numbered by first appearance and update
 * indices grouped by column, as payload-encode.ts hands them to encodeNumberColumns.
 *
 * Also the whole payload: payload-encode.ts encodeBatches (payloadTs) against the module's
 * (payloadWasm: column numbering, grouping, head and batch lists in the module too).
 *
 * Every block's bytes (columns and payload) are compared between the encoders first
 * (identical: true or the run fails). Then rounds of one pass over every block per encoder, in alternating order (A B,
 * B A, ...), in CPU time of the process (bench/peers/measure.ts cpuSecs): ns per update and
 * updates per CPU-second, median and range. With --base <tree> the TypeScript encoder of
 * that tree (a worktree of an older commit) is measured too. With --write-fabric / --write-mixed
 * (comma-separated updatesPerCpuSec of bench/peers/tapedeck-side.ts --phase write runs) the
 * write figure is projected: its ns per update minus what the WebAssembly encoder saves.
 *
 *   node --import tsx test/bench/wasm-columns.ts [--workloads /tmp/peers7] [--rounds 7]
 *     [--base /tmp/base-wasm7] [--write-fabric 13.1e6,13.3e6,13.0e6] [--write-mixed ...]
 *
 * Prints one JSON object.
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ByteWriter } from '../../storage/codec/bytes.js';
import { encodeNumberColumns } from '../../storage/codec/columns.js';
import { encodeBatchesWasm, encodeNumberColumnsWasm } from '../../storage/codec/wasm-columns.js';
import { encodeBatches, type FlatBatches } from '../../storage/codec/payload-encode.js';
import { loadWasmColumns, wasmColumnsPath } from '../../storage/wasm-columns-file.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { readWorkloadFile, type PoolBatch, type Workload } from '../../bench/peers/workload-file.js';
import { cpuSecs } from '../../bench/peers/measure.js';

const { values: args } = parseArgs({
  options: {
    workloads: { type: 'string', default: '/tmp/peers7' },
    rounds: { type: 'string', default: '7' },
    base: { type: 'string' },
    'write-fabric': { type: 'string' },
    'write-mixed': { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);
/** netidx-archive's write, updates per CPU-second on a quiet machine (docs/performance.md). */
const NETIDX_WRITE_PER_CPU_SEC: Record<string, number> = { fabric: 31.5e6, mixed: 29.3e6 };
/** The target: 1.2 x netidx per CPU-second. */
const TARGET_RATIO = 1.2;

type Encode = typeof encodeNumberColumns;
type EncodePayload = (b: FlatBatches & { values: Float64Array }, w: ByteWriter) => Uint8Array;

interface Block {
  vals: Float64Array;
  order: Uint32Array;
  colStart: Uint32Array;
  nc: number;
  /** The block as encodeBatches takes it (the whole payload). */
  flat: FlatBatches & { values: Float64Array };
}

/** The run's blocks as the writer cuts them (batches until blockUpdatesTarget updates). */
function blocksOf(w: Workload): { blocks: Block[]; updates: number } {
  const target = STORAGE_LIMITS.blockUpdatesTarget;
  const blocks: Block[] = [];
  let ids: number[] = [];
  let vals: number[] = [];
  let ts: number[] = [];
  let counts: number[] = [];
  let updates = 0;
  const seal = (): void => {
    const idArray = Int32Array.from(ids);
    const values = Float64Array.from(vals);
    const flat = { ts, counts, ids: idArray, values, batchCount: ts.length, updateCount: ids.length };
    blocks.push({ ...columnsOf(Uint32Array.from(ids), values), flat });
    ids = [];
    vals = [];
    ts = [];
    counts = [];
  };
  for (let i = 0; i < w.ts.length; i++) {
    const b = w.pool[i % w.pool.length] as PoolBatch;
    ts.push(w.ts[i] as number);
    counts.push(b.ids.length);
    for (let j = 0; j < b.ids.length; j++) {
      ids.push(b.ids[j] as number);
      vals.push(b.values[j] as number); // the workloads hold no NaN: numbers are exact
    }
    updates += b.ids.length;
    if (ids.length >= target) seal();
  }
  if (ids.length > 0) seal();
  return { blocks, updates };
}

/** payload-encode.ts assignColumns + groupByColumn: columns by first appearance, indices grouped stably. */
function columnsOf(ids: Uint32Array, vals: Float64Array): Omit<Block, 'flat'> {
  const local = new Map<number, number>();
  const colOf = new Uint32Array(ids.length);
  const counts: number[] = [];
  ids.forEach((g, i) => {
    let l = local.get(g);
    if (l === undefined) {
      l = counts.length;
      local.set(g, l);
      counts.push(0);
    }
    colOf[i] = l;
    counts[l] = (counts[l] as number) + 1;
  });
  const nc = counts.length;
  const colStart = new Uint32Array(nc + 1);
  for (let c = 0; c < nc; c++) colStart[c + 1] = (colStart[c] as number) + (counts[c] as number);
  const fill = colStart.slice(0, nc);
  const order = new Uint32Array(ids.length);
  colOf.forEach((l, i) => {
    const at = fill[l] as number;
    order[at] = i;
    fill[l] = at + 1;
  });
  return { vals, order, colStart, nc };
}

/** One block's columns as payload-encode.ts writes them: nc kind bytes, then the bodies. */
function encodeBlock(f: Encode, w: ByteWriter, b: Block): void {
  w.reset();
  w.ensure(b.nc);
  w.pos += b.nc;
  f(w, b.vals, b.order, b.colStart, b.nc, 0);
}

/** An encoder of columns (encodeNumberColumns' form) or of whole payloads (encodeBatches'). */
type Encoder = { columns: Encode } | { payload: EncodePayload };

function pass(e: Encoder, w: ByteWriter, blocks: readonly Block[]): number {
  const c0 = cpuSecs();
  if ('columns' in e) for (const b of blocks) encodeBlock(e.columns, w, b);
  else for (const b of blocks) e.payload(b.flat, w);
  return cpuSecs() - c0;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function bench(name: string, encoders: Record<string, Encoder>, writeRuns: string | undefined): object {
  const w = readWorkloadFile(join(args.workloads, `${name}.workload`));
  const { blocks, updates } = blocksOf(w);
  // Identity on every block first.
  const a = new ByteWriter(1 << 20);
  const b = new ByteWriter(1 << 20);
  let payloadBytes = 0;
  for (const [i, blk] of blocks.entries()) {
    encodeBlock(encodeNumberColumns, a, blk);
    encodeBlock(encodeNumberColumnsWasm, b, blk);
    payloadBytes += a.pos;
    if (Buffer.compare(a.buf.subarray(0, a.pos), b.buf.subarray(0, b.pos)) !== 0) throw new Error(`${name}: block ${i} differs between the encoders`);
    if (Buffer.compare(encodeBatches(blk.flat, a), encodeBatchesWasm(blk.flat, b)) !== 0) throw new Error(`${name}: block ${i}'s payload differs between the encoders`);
  }
  const names = Object.keys(encoders);
  const secs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) pass(encoders[n] as Encoder, a, blocks); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const turn = r % 2 === 0 ? names : [...names].reverse();
    for (const n of turn) (secs[n] as number[]).push(pass(encoders[n] as Encoder, a, blocks));
  }
  const result: Record<string, unknown> = { updates, blocks: blocks.length, columnBytesPerUpdate: Number((payloadBytes / updates).toFixed(3)), identical: true };
  const nsMedian: Record<string, number> = {};
  for (const n of names) {
    const ns = (secs[n] as number[]).map((s) => (s * 1e9) / updates);
    nsMedian[n] = median(ns);
    result[n] = { nsPerUpdate: round1(median(ns)), nsRange: [round1(Math.min(...ns)), round1(Math.max(...ns))], updatesPerCpuSec: Math.round(1e9 / median(ns)) };
  }
  const saved = (nsMedian.ts as number) - (nsMedian.wasm as number);
  result.savedNsPerUpdate = round1(saved);
  result.payloadSavedNsPerUpdate = round1((nsMedian.payloadTs as number) - (nsMedian.payloadWasm as number));
  if (writeRuns !== undefined) result.projection = project(name, writeRuns.split(',').map(Number), saved);
  return result;
}

/** The write figure less what the encoder saves, against netidx and the 1.2x target. */
function project(name: string, runs: number[], savedNs: number): object {
  const perCpuSec = median(runs);
  const writeNs = 1e9 / perCpuSec;
  const projectedNs = writeNs - savedNs;
  const netidx = NETIDX_WRITE_PER_CPU_SEC[name] as number;
  return {
    writeUpdatesPerCpuSec: runs,
    writeNsPerUpdate: round1(writeNs),
    projectedNsPerUpdate: round1(projectedNs),
    projectedUpdatesPerCpuSec: Math.round(1e9 / projectedNs),
    ratioToNetidxNow: Number((perCpuSec / netidx).toFixed(3)),
    ratioToNetidxProjected: Number((1e9 / projectedNs / netidx).toFixed(3)),
    targetNsPerUpdate: round1(1e9 / (TARGET_RATIO * netidx)),
  };
}

async function main(): Promise<void> {
  if (!loadWasmColumns()) throw new Error('native/column-encoder is not built: cargo build --release --target wasm32-unknown-unknown --manifest-path native/column-encoder/Cargo.toml');
  const encoders: Record<string, Encoder> = {
    ts: { columns: encodeNumberColumns },
    wasm: { columns: encodeNumberColumnsWasm },
    payloadTs: { payload: encodeBatches },
    payloadWasm: { payload: encodeBatchesWasm },
  };
  if (args.base !== undefined) {
    const mod = (await import(pathToFileURL(resolve(args.base, 'storage/codec/columns.ts')).href)) as { encodeNumberColumns: Encode };
    encoders.tsBase = { columns: mod.encodeNumberColumns };
  }
  const out = {
    bench: 'wasm-columns',
    wasm: wasmColumnsPath(),
    base: args.base ?? null,
    rounds: ROUNDS,
    fabric: bench('fabric', encoders, args['write-fabric']),
    mixed: bench('mixed', encoders, args['write-mixed']),
  };
  console.log(JSON.stringify(out));
}

await main();
