/**
 * PROTOTYPE: finds and installs the WebAssembly column encoder (codec/wasm-columns.ts) from
 * disk, the file access kept out of the pure codec. Not used by the storage path; see
 * docs/wasm-encoder.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { installWasmColumns, wasmColumnsInstalled } from './codec/wasm-columns.js';

const CARGO_OUTPUT = 'native/column-encoder/target/wasm32-unknown-unknown/release/column_encoder.wasm';

/** Where the module is looked for: a copy beside the codec, then Cargo's output (from the tree and from dist/). */
const WASM_CANDIDATES = ['./codec/column-encoder.wasm', `../${CARGO_OUTPUT}`, `../../${CARGO_OUTPUT}`].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

/** The .wasm file found, or undefined when it is not built. */
export function wasmColumnsPath(): string | undefined {
  return WASM_CANDIDATES.find((p) => existsSync(p));
}

/** Installs the module found on disk (once); false when there is none (or the host cannot use it). */
export function loadWasmColumns(): boolean {
  if (wasmColumnsInstalled()) return true;
  const path = wasmColumnsPath();
  return path !== undefined && installWasmColumns(readFileSync(path));
}
