/**
 * PROTOTYPE, not used by the storage path: encodeNumberColumns (columns.ts) run by the
 * WebAssembly build of native/column-encoder (Rust), byte-identical to it. Pure: the module's
 * bytes come from the caller (storage/wasm-columns-file.ts reads them from disk). The memory
 * protocol and the build are in docs/wasm-encoder.md; test/wasm-columns.test.ts compares
 * both encoders, test/bench/wasm-columns.ts measures them.
 *
 * Per block: the values' bytes, the grouped update indices and the column starts are copied
 * into the module's memory once, the module writes the kind bytes and then the bodies, and
 * those are copied into the caller's writer (kinds at kindsAt, bodies at its position).
 */
import type { ByteWriter } from './bytes.js';
import type { FlatBatches } from './payload-encode.js';
import { LITTLE_ENDIAN } from './column-kinds.js';

interface EncoderExports {
  memory: { buffer: ArrayBuffer };
  tpd_reserve(nu: number, nc: number): void;
  tpd_vals_ptr(): number;
  tpd_order_ptr(): number;
  tpd_col_start_ptr(): number;
  tpd_out_ptr(): number;
  tpd_encode(nc: number): number;
  tpd_reserve_batches(nb: number, nu: number): void;
  tpd_ts_ptr(): number;
  tpd_counts_ptr(): number;
  tpd_ids_ptr(): number;
  tpd_encode_batches(): number;
}

/** The part of the WebAssembly global used here (lib ES2022 and @types/node 20 do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

/** tpd_encode's answer when the inputs do not describe a block (an index or a start past the values). */
const BAD_INPUT = 0xffff_ffff;

let instance: EncoderExports | undefined;

/**
 * Instantiates the module from its bytes (synchronously: 37 KB) for encodeNumberColumnsWasm.
 * Returns false, installing nothing, on a big-endian host (typed arrays' bytes would not be
 * the module's little-endian ones).
 */
export function installWasmColumns(moduleBytes: Uint8Array): boolean {
  if (!LITTLE_ENDIAN) return false;
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  instance = new wasm.Instance(new wasm.Module(moduleBytes), {}).exports as EncoderExports;
  return true;
}

/** A module is installed: encodeNumberColumnsWasm can run. */
export function wasmColumnsInstalled(): boolean {
  return instance !== undefined;
}

/**
 * encodeNumberColumns(w, vals, order, colStart, nc, kindsAt) by the module: column c is
 * vals[order[colStart[c]]], ..., vals[order[colStart[c + 1] - 1]], its kind goes to
 * w.buf[kindsAt + c] and its body after what `w` holds. `order` must index within
 * vals[0, colStart[nc]) (the block encoder's grouped indices do). Throws when no module is
 * installed, or when order or colStart point past the values.
 */
export function encodeNumberColumnsWasm(w: ByteWriter, vals: Float64Array, order: Uint32Array, colStart: Uint32Array, nc: number, kindsAt: number): void {
  const ex = instance;
  if (ex === undefined) throw new Error('no WebAssembly column encoder installed (docs/wasm-encoder.md)');
  const nu = colStart[nc] as number;
  // The views below copy by length: shorter inputs would copy their buffers' neighbours.
  if (colStart.length < nc + 1 || nu > vals.length || nu > order.length) throw new RangeError(`encodeNumberColumnsWasm: ${nu} updates but ${vals.length} values and ${order.length} indices`);
  ex.tpd_reserve(nu, nc);
  // Views made after tpd_reserve: it may grow the memory (a new ArrayBuffer).
  const mem = new Uint8Array(ex.memory.buffer);
  // Bytes, not numbers: a NaN's payload is copied as stored.
  mem.set(new Uint8Array(vals.buffer, vals.byteOffset, nu * 8), ex.tpd_vals_ptr());
  mem.set(new Uint8Array(order.buffer, order.byteOffset, nu * 4), ex.tpd_order_ptr());
  mem.set(new Uint8Array(colStart.buffer, colStart.byteOffset, (nc + 1) * 4), ex.tpd_col_start_ptr());
  const len = ex.tpd_encode(nc) >>> 0; // a u32 comes back as an i32
  if (len === BAD_INPUT) throw new Error('encodeNumberColumnsWasm: order or colStart past the values');
  const out = new Uint8Array(ex.memory.buffer, ex.tpd_out_ptr(), len);
  w.buf.set(out.subarray(0, nc), kindsAt);
  w.ensure(len - nc);
  w.buf.set(out.subarray(nc), w.pos);
  w.pos += len - nc;
}

/**
 * encodeBatches (payload-encode.ts) of a block of numbers by the module: the whole
 * layout-2 payload (head, timestamps, column table, batch lists, columns) into `w` from its
 * start; returns a view of it, valid until `w` is written again. Timestamps must be
 * integers within 2^52 (second differences too) and path ids below 2^28 (the writer's are); throws otherwise, and
 * when no module is installed.
 */
export function encodeBatchesWasm(b: FlatBatches & { values: Float64Array }, w: ByteWriter): Uint8Array {
  const ex = instance;
  if (ex === undefined) throw new Error('no WebAssembly column encoder installed (docs/wasm-encoder.md)');
  const { batchCount: nb, updateCount: nu } = b;
  if (b.ids.length < nu || b.values.length < nu || b.ts.length < nb || b.counts.length < nb) throw new RangeError(`encodeBatchesWasm: ${nb} batches of ${nu} updates but shorter inputs`);
  ex.tpd_reserve_batches(nb, nu);
  const buffer = ex.memory.buffer; // after tpd_reserve_batches: it may grow the memory
  const ts = new Float64Array(buffer, ex.tpd_ts_ptr(), nb);
  const counts = new Uint32Array(buffer, ex.tpd_counts_ptr(), nb);
  for (let i = 0; i < nb; i++) {
    ts[i] = b.ts[i] as number;
    counts[i] = b.counts[i] as number;
  }
  const ids = b.ids;
  const mem = new Uint8Array(buffer);
  if (ids instanceof Int32Array || ids instanceof Uint32Array) mem.set(new Uint8Array(ids.buffer, ids.byteOffset, nu * 4), ex.tpd_ids_ptr());
  else new Uint32Array(buffer, ex.tpd_ids_ptr(), nu).set(Array.prototype.slice.call(ids, 0, nu) as number[]);
  mem.set(new Uint8Array(b.values.buffer, b.values.byteOffset, nu * 8), ex.tpd_vals_ptr());
  const len = ex.tpd_encode_batches() >>> 0;
  if (len === BAD_INPUT) throw new Error('encodeBatchesWasm: counts, timestamps or path ids out of range');
  w.reset();
  w.ensure(len);
  w.buf.set(new Uint8Array(ex.memory.buffer, ex.tpd_out_ptr(), len), 0);
  w.pos = len;
  return w.buf.subarray(0, len);
}
