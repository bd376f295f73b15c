/**
 * The WebAssembly number-column encoder (PROTOTYPE: native/column-encoder, installed by
 * storage/wasm-columns-file.ts into storage/codec/wasm-columns.ts; docs/wasm-encoder.md)
 * against the TypeScript one (storage/codec/columns.ts encodeNumberColumns), byte for byte, on seeded blocks of random
 * and hostile columns: every kind (DECIMAL_K, PACKED orders 0-2 with and without
 * exceptions, XOR, FLOAT64), -0, NaN payloads (0x7ff0000000000002 and others), ±Inf,
 * subnormals, scaled values about 2^50 and 2^51, 1- to 3-value columns, columns about the
 * 16-residual rule, counters with resets, constants, spikes, exponents rising mid-column.
 * Skipped, saying so, when the module is not built (CI does not build it).
 */
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../storage/codec/bytes.js';
import { encodeNumberColumns } from '../storage/codec/columns.js';
import { encodeBatches } from '../storage/codec/payload-encode.js';
import { encodeBatchesWasm, encodeNumberColumnsWasm } from '../storage/codec/wasm-columns.js';
import { loadWasmColumns } from '../storage/wasm-columns-file.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { batchBlock, block, Column, hostile, type Block } from './helpers/number-blocks.js';

const BUILD = 'cargo build --release --target wasm32-unknown-unknown --manifest-path native/column-encoder/Cargo.toml';
const available = loadWasmColumns();
if (!available) console.log(`test/wasm-columns: the WebAssembly column encoder is not built (${BUILD}; scripts/install.sh does it)`);

/** Both encoders' bytes for a block, after `prefix` bytes already in a small writer. */
function encodeBoth(b: Block, prefix: number): { ts: Uint8Array; wasm: Uint8Array } {
  const run = (f: typeof encodeNumberColumns): Uint8Array => {
    const w = new ByteWriter(16);
    for (let i = 0; i < prefix; i++) w.u8(0xa0 + i);
    w.ensure(b.nc);
    const kindsAt = w.pos;
    w.pos += b.nc;
    f(w, b.vals, b.order, b.colStart, b.nc, kindsAt);
    return w.buf.slice(0, w.pos);
  };
  return { ts: run(encodeNumberColumns), wasm: run(encodeNumberColumnsWasm) };
}

function hexBits(b: Block, c: number): string {
  const words = new Uint32Array(b.vals.buffer);
  const out: string[] = [];
  for (let i = b.colStart[c] as number; i < (b.colStart[c + 1] as number) && out.length < 40; i++) {
    const at = b.order[i] as number;
    out.push(((words[2 * at + 1] as number).toString(16).padStart(8, '0') + (words[2 * at] as number).toString(16).padStart(8, '0')));
  }
  return out.join(' ');
}

/** The first column that the two encoders write differently, as a one-column block. */
function firstDiffering(b: Block): string {
  for (let c = 0; c < b.nc; c++) {
    const one: Block = { vals: b.vals, order: b.order.subarray(b.colStart[c] as number), colStart: Uint32Array.of(0, (b.colStart[c + 1] as number) - (b.colStart[c] as number)), nc: 1, shapes: [] };
    const { ts, wasm } = encodeBoth(one, 0);
    if (Buffer.compare(ts, wasm) !== 0) {
      return `column ${c} (${b.shapes[c]}, ${one.colStart[1]} values: ${hexBits(b, c)}): ts ${Buffer.from(ts).toString('hex').slice(0, 120)} wasm ${Buffer.from(wasm).toString('hex').slice(0, 120)}`;
    }
  }
  return 'no single column differs (the block as a whole does)';
}

function kindFamily(kind: number): string {
  if (kind >= 0x40) return `PACKED order ${(kind - 0x40) >> 4}`;
  if (kind >= 0x10) return 'DECIMAL_K';
  return kind === 3 ? 'XOR' : kind === 2 ? 'FLOAT64' : `kind ${kind}`;
}

describe.skipIf(!available)('WebAssembly number-column encoder against columns.ts', () => {
  it('writes the same bytes as the TypeScript encoder on seeded random and hostile blocks', () => {
    const seed = scheduleSeed('WASM_COLUMNS_SEED', 'wasm columns');
    const r = rng(seed);
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const b = block(r, 1 + Math.floor(r() * (r() < 0.2 ? 400 : 40)));
      const prefix = Math.floor(r() * 8);
      const { ts, wasm } = encodeBoth(b, prefix);
      if (Buffer.compare(ts, wasm) !== 0) expect.fail(`block ${i} (seed ${seed}): bytes differ; ${firstDiffering(b)}`);
      for (let c = 0; c < b.nc; c++) {
        const family = kindFamily(ts[prefix + c] as number);
        seen.set(family, (seen.get(family) ?? 0) + 1);
      }
    }
    // The blocks reach every kind the number encoder writes (a test of the generator).
    expect([...seen.keys()].sort()).toEqual(['DECIMAL_K', 'FLOAT64', 'PACKED order 0', 'PACKED order 1', 'PACKED order 2', 'XOR']);
  });

  it('writes the same bytes for blocks of many one- and two-value columns (a block over many paths)', () => {
    const seed = scheduleSeed('WASM_COLUMNS_SEED', 'wasm short columns');
    const r = rng(seed + 1);
    for (let i = 0; i < 40; i++) {
      const nc = 2000 + Math.floor(r() * 6000);
      const cols = Array.from({ length: nc }, () => (r() < 0.6 ? 1 : 2));
      const colStart = new Uint32Array(nc + 1);
      cols.forEach((n, c) => (colStart[c + 1] = (colStart[c] as number) + n));
      const nu = colStart[nc] as number;
      const vals = new Float64Array(nu);
      const k = Math.floor(r() * 4);
      for (let j = 0; j < nu; j++) {
        const c = new Column(1);
        if (r() < 0.05) hostile(r, c, k);
        else c.num(Math.floor(r() * 1e5) / 10 ** (r() < 0.8 ? k : Math.floor(r() * 10)));
        new Uint8Array(vals.buffer, 8 * j, 8).set(new Uint8Array(c.values.buffer, 0, 8));
      }
      const b: Block = { vals, order: Uint32Array.from({ length: nu }, (_, j) => j), colStart, nc, shapes: cols.map(String) };
      const { ts, wasm } = encodeBoth(b, 3);
      if (Buffer.compare(ts, wasm) !== 0) expect.fail(`block ${i} (seed ${seed}): bytes differ; ${firstDiffering(b)}`);
    }
  });

  it('refuses indices past the block values instead of reading past them', () => {
    const w = new ByteWriter(16);
    const vals = Float64Array.of(1, 2, 3);
    expect(() => encodeNumberColumnsWasm(w, vals, Uint32Array.of(0, 1, 7), Uint32Array.of(0, 3), 1, 0)).toThrow(/past the values/);
  });
});


describe.skipIf(!available)('WebAssembly payload encoder against payload-encode.ts', () => {
  it('writes the same payload bytes as encodeBatches on seeded blocks of numbers', () => {
    const seed = scheduleSeed('WASM_COLUMNS_SEED', 'wasm payloads');
    const r = rng(seed + 2);
    for (let i = 0; i < 300; i++) {
      const b = batchBlock(r);
      const want = Buffer.from(encodeBatches(b, new ByteWriter(16)));
      const got = Buffer.from(encodeBatchesWasm(b, new ByteWriter(16)));
      if (Buffer.compare(want, got) !== 0) {
        let at = 0;
        while (want[at] === got[at]) at++;
        expect.fail(`block ${i} (seed ${seed}, ${b.batchCount} batches, ${b.updateCount} updates): first difference at byte ${at} of ${want.length}`);
      }
    }
  });

  it('refuses timestamps that are not integers within 2^52 and counts that do not add up', () => {
    const b = { ts: [1.5], counts: [1], ids: Int32Array.of(3), values: Float64Array.of(1), batchCount: 1, updateCount: 1 };
    expect(() => encodeBatchesWasm(b, new ByteWriter(16))).toThrow(/out of range/);
    expect(() => encodeBatchesWasm({ ...b, ts: [2 ** 53] }, new ByteWriter(16))).toThrow(/out of range/);
    expect(() => encodeBatchesWasm({ ...b, ts: [1], counts: [2] }, new ByteWriter(16))).toThrow(/out of range/);
    expect(Buffer.from(encodeBatchesWasm({ ...b, ts: [1] }, new ByteWriter(16)))).toEqual(Buffer.from(encodeBatches({ ...b, ts: [1] }, new ByteWriter(16))));
  });
});

if (!available) {
  describe('WebAssembly number-column encoder', () => {
    // scripts/install.sh builds it (scripts/install-wasm.sh): a missing module is an install that did not run.
    it('is built by scripts/install.sh', () => expect.fail(`not built: ${BUILD}`));
  });
}
