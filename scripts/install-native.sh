#!/usr/bin/env bash
# Builds Tapedeck's Node addon (native/tapedeck-node: the payload encoder of all-number
# blocks, Rust through napi-rs; docs/native.md) and puts it where storage/native-codec-file.ts
# looks: native/tapedeck-node/tapedeck_node.node. Needs cargo (crates from crates.io).
# Without the addon Tapedeck runs and writes the same bytes with its TypeScript encoder,
# slower; the tests require it (test/native-payload.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "install-native: cargo is required to build native/tapedeck-node" >&2
  exit 1
fi
# From the crate's directory: cargo reads its .cargo/config.toml (the target CPU) from there.
(cd native/tapedeck-node && cargo build --release --locked)
cp native/tapedeck-node/target/release/libtapedeck_node.so native/tapedeck-node/tapedeck_node.node.tmp
mv native/tapedeck-node/tapedeck_node.node.tmp native/tapedeck-node/tapedeck_node.node
# On x86-64, a second build for x86-64-v3 (AVX2, BMI2, LZCNT: about 15 % faster encoding);
# storage/native-codec-file.ts loads it only on a CPU that has those (/proc/cpuinfo).
if [ "$(uname -m)" = x86_64 ]; then
  (cd native/tapedeck-node && RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release --locked --target-dir target/x86-64-v3)
  cp native/tapedeck-node/target/x86-64-v3/release/libtapedeck_node.so native/tapedeck-node/tapedeck_node.x86-64-v3.node.tmp
  mv native/tapedeck-node/tapedeck_node.x86-64-v3.node.tmp native/tapedeck-node/tapedeck_node.x86-64-v3.node
fi
