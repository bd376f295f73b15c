/**
 * Block payload codec benchmark: bytes per update and encode/decode speed of
 * storage/codec/payload.ts on whole blocks, without disk or LZ4 (the frame's business):
 *  - fabric: 64 switches x 8 metrics, one batch per second (server/sim/fabric.ts);
 *  - mixed: 100 decimal random-walk values per batch over 10 k paths (as bench:storage);
 *  - prom: node_exporter-like series (counters of bytes and seconds, integer and 2-decimal
 *    gauges, ratios with full float64 noise, constant info/status gauges) scraped every 15 s.
 * Each workload is cut into blocks of --block updates (the writer's blockUpdatesTarget).
 * bytesPerUpdate is the payload's size; framedBytesPerUpdate the frame's as the writer stores
 * it (header, and LZ4 when that saves a sixteenth).
 * Also the selective decode of 1 % of the paths against the full decode, the encode of the
 * block builder's typed form (encodeTyped: ids in an Int32Array, numbers in a Float64Array)
 * and, where the build has it, the decode into typed arrays (decodeInto: decodeBatchesInto).
 * Speeds are in CPU time, the best of --rounds runs. Run: node --import tsx test/bench/codec.ts
 * [--block 16384] [--rounds 5]. Prints one JSON object.
 */
import { parseArgs } from 'node:util';
import * as payload from '../../storage/codec/payload.js';
import { BlockType, encodeFrame } from '../../storage/codec/frame.js';
import type { FlatBatches } from '../../storage/codec/payload.js';
import { fabricBatches, rng } from '../../server/sim/fabric.js';
import type { Value } from '../../protocol/value.js';

const { values: args } = parseArgs({ options: { block: { type: 'string', default: '16384' }, rounds: { type: 'string', default: '5' } } });
const BLOCK_UPDATES = Number(args.block);
const ROUNDS = Number(args.rounds);

type Block = FlatBatches & { ts: number[]; counts: number[]; ids: number[]; values: Value[] };

/** Cuts a stream of (ts, ids, values) batches into blocks as the block builder does. */
function* blocksOf(batches: Iterable<{ ts: number; ids: number[]; values: Value[] }>): Generator<Block> {
  let b: Block = { ts: [], counts: [], ids: [], values: [], batchCount: 0, updateCount: 0 };
  for (const x of batches) {
    b.ts.push(x.ts);
    b.counts.push(x.ids.length);
    for (let i = 0; i < x.ids.length; i++) {
      b.ids.push(x.ids[i] as number);
      b.values.push(x.values[i] as Value);
    }
    b.batchCount++;
    b.updateCount += x.ids.length;
    if (b.updateCount >= BLOCK_UPDATES) {
      yield b;
      b = { ts: [], counts: [], ids: [], values: [], batchCount: 0, updateCount: 0 };
    }
  }
  if (b.batchCount > 0) yield b;
}

function* fabric(): Generator<{ ts: number; ids: number[]; values: Value[] }> {
  for (const b of fabricBatches(1, 64, 3600)) yield { ts: b.ts, ids: b.updates.map((_, i) => i), values: b.updates.map((u) => u[1]) };
}

function* mixed(): Generator<{ ts: number; ids: number[]; values: Value[] }> {
  const r = rng(100);
  const level = Array.from({ length: 10_000 }, () => r() * 100);
  let p = 0;
  let ts = 1_763_000_000_000_000;
  for (let b = 0; b < 10_000; b++) {
    const ids: number[] = [];
    const values: Value[] = [];
    for (let i = 0; i < 100; i++, p = (p + 1) % level.length) {
      level[p] = (level[p] as number) + (r() - 0.5);
      ids.push(p);
      values.push(Math.round((level[p] as number) * 100) / 100);
    }
    yield { ts: (ts += 1000), ids, values };
  }
}

/** 2000 series x 240 scrapes, one batch per scrape (remote_write with one sample each). */
function* prom(): Generator<{ ts: number; ids: number[]; values: Value[] }> {
  const r = rng(7);
  const series = 2000;
  const state = Array.from({ length: series }, (_, i) => (i % 8 === 0 ? 1e9 * r() : i % 8 === 1 ? 1e5 * r() : r() * 100));
  for (let k = 0; k < 240; k++) {
    const ids: number[] = [];
    const values: Value[] = [];
    for (let i = 0; i < series; i++) {
      const s = state[i] as number;
      let v: number;
      switch (i % 8) {
        case 0: v = state[i] = s + Math.floor(r() * 150_000); break; // bytes counter
        case 1: v = state[i] = Math.round((s + 15 * r()) * 100) / 100; break; // cpu seconds counter
        case 2: v = state[i] = Math.round(Math.max(0, s + (r() - 0.5) * 4096 * 20)); break; // memory bytes gauge
        case 3: v = state[i] = Math.round(Math.max(0, s + (r() - 0.5) * 0.5) * 100) / 100; break; // load1
        case 4: v = state[i] = Math.min(1, Math.max(0, s / 100 + (r() - 0.5) * 0.01)) * 100; break; // ratio, float noise
        case 5: v = 1; break; // up / info / oper status
        case 6: v = state[i] = s + (r() < 0.05 ? 1 : 0); break; // error counter
        default: v = state[i] = Math.round((s + (r() - 0.5)) * 1000) / 1000; break; // temperature, 3 decimals
      }
      ids.push(i);
      values.push(v);
    }
    yield { ts: 1_763_000_000_000_000 + k * 15_000_000, ids, values };
  }
}

function measure(name: string, gen: () => Iterable<{ ts: number; ids: number[]; values: Value[] }>): object {
  const blocks = [...blocksOf(gen())];
  const updates = blocks.reduce((n, b) => n + b.updateCount, 0);
  const encoded = blocks.map((b) => Uint8Array.from(payload.encodeBatches(b)));
  const bytes = encoded.reduce((n, e) => n + e.length, 0);
  const framed = blocks.reduce((n, b, i) => n + encodeFrame({ type: BlockType.DELTA, firstTs: b.ts[0] as number, lastTs: b.ts[b.ts.length - 1] as number, batches: b.batchCount, updates: b.updateCount }, encoded[i] as Uint8Array).length, 0);
  // CPU time (user + system, ms), best of ROUNDS: on a shared machine wall time mostly
  // measures the neighbours, and the fastest round is the least disturbed one.
  const time = (f: () => void): number => {
    f();
    let best = Infinity;
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = process.cpuUsage();
      f();
      const t = process.cpuUsage(t0);
      best = Math.min(best, (t.user + t.system) / 1000);
    }
    return best;
  };
  const encodeMs = time(() => { for (const b of blocks) payload.encodeBatches(b); });
  // The block builder's form (storage/block-builder.ts): ids in an Int32Array and, while
  // every value is a number, the values unboxed in a Float64Array.
  const typed = blocks.map((b) => ({ ...b, ids: Int32Array.from(b.ids), values: b.values.every((v) => typeof v === 'number') ? Float64Array.from(b.values as number[]) : b.values }));
  const encodeTypedMs = time(() => { for (const b of typed) payload.encodeBatches(b); });
  const decodeMs = time(() => { blocks.forEach((b, i) => payload.decodeBatches(encoded[i] as Uint8Array, b.ts[0] as number)); });
  const out: Record<string, unknown> = {
    workload: name,
    blocks: blocks.length,
    updates,
    bytesPerUpdate: Number((bytes / updates).toFixed(3)),
    framedBytesPerUpdate: Number((framed / updates).toFixed(3)),
    encodeMUpdatesPerSec: Number((updates / encodeMs / 1000).toFixed(2)),
    decodeMUpdatesPerSec: Number((updates / decodeMs / 1000).toFixed(2)),
    encodeTypedMUpdatesPerSec: Number((updates / encodeTypedMs / 1000).toFixed(2)),
  };
  // Into caller-held typed arrays (no Value array), where this build has it.
  const into = (payload as { decodeBatchesInto?: (raw: Uint8Array, firstTs: number, out: unknown) => boolean }).decodeBatchesInto;
  const fresh = (payload as { newNumberBatches?: () => unknown }).newNumberBatches;
  if (into && fresh) {
    const held = fresh();
    const ms = time(() => { blocks.forEach((b, i) => into(encoded[i] as Uint8Array, b.ts[0] as number, held)); });
    out.decodeIntoMUpdatesPerSec = Number((updates / ms / 1000).toFixed(2));
  }
  const selected = (payload as { decodeBatchesSelected?: typeof payload.decodeBatchesSelected }).decodeBatchesSelected;
  if (selected) {
    const ms = time(() => { blocks.forEach((b, i) => selected(encoded[i] as Uint8Array, b.ts[0] as number, (g) => g % 100 === 0)); });
    out.selected1PctMUpdatesPerSec = Number((updates / ms / 1000).toFixed(2));
  }
  return out;
}

console.log(JSON.stringify({ blockUpdates: BLOCK_UPDATES, rounds: ROUNDS, results: [measure('fabric', fabric), measure('mixed', mixed), measure('prom', prom)] }));
