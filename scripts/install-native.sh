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
