#!/usr/bin/env bash
# Builds Tapedeck's Node addon (native/tapedeck-node: the encoder of all-number blocks, Rust
# through napi-rs; docs/native.md) and puts it where storage/native-codec-file.ts looks:
# native/tapedeck-node/tapedeck_node.node for any x86-64 (or the host's) CPU, and on x86-64
# also tapedeck_node.x86-64-v3.node (AVX2, BMI2, LZCNT: about 15 % faster encoding), tried
# first on a CPU that has those. Needs cargo (crates from crates.io). Without cargo it says so
# and leaves no build: Tapedeck then writes the same bytes with its TypeScript encoder,
# slower (the tests require the addon: test/native-payload.test.ts).
set -euo pipefail
cd "$(dirname "$0")/../native/tapedeck-node"
# Builds from an earlier install are never left beside a new one (a stale build is refused
# by its probe anyway, docs/native.md).
rm -f tapedeck_node.node tapedeck_node.x86-64-v3.node
if ! command -v cargo >/dev/null; then
  echo "install-native: cargo not found: the native encoder is not built (Tapedeck uses its TypeScript encoder)" >&2
  exit 0
fi
# --target-dir: where the .so is copied from, whatever CARGO_TARGET_DIR says.
cargo build --release --locked --target-dir target
cp target/release/libtapedeck_node.so tapedeck_node.node.tmp
mv tapedeck_node.node.tmp tapedeck_node.node
if [ "$(uname -m)" = x86_64 ]; then
  RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release --locked --target-dir target/x86-64-v3
  cp target/x86-64-v3/release/libtapedeck_node.so tapedeck_node.x86-64-v3.node.tmp
  mv tapedeck_node.x86-64-v3.node.tmp tapedeck_node.x86-64-v3.node
fi
