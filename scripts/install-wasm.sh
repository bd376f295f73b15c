#!/usr/bin/env bash
# Builds the WebAssembly number-column encoder prototype (native/column-encoder, see
# docs/wasm-encoder.md) that test/wasm-columns.test.ts checks byte for byte against the
# TypeScript encoder. Needs Rust with rustup (this machine kind has it); the
# wasm32-unknown-unknown standard library is added once.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  echo "install-wasm: cargo and rustup are required to build native/column-encoder" >&2
  exit 1
fi
rustup target add wasm32-unknown-unknown
cargo build --release --target wasm32-unknown-unknown --manifest-path native/column-encoder/Cargo.toml
