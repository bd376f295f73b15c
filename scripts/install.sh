#!/usr/bin/env bash
# Installs everything Tapedeck and its tests need on a fresh Debian machine with Node 20:
# the npm dependencies (native addons built against the local Node headers, since no
# prebuilt binaries can be downloaded here) and the compiled CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if ! command -v node >/dev/null; then
  echo "install: Node.js 20 or newer is required" >&2
  exit 1
fi
# better-sqlite3 and msgpackr-extract compile with node-gyp when no prebuilt binary is
# reachable: make sure a C++ toolchain and Python are there.
if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null; then
  apt-get update && apt-get install -y --no-install-recommends build-essential python3
fi
# `npm install` rather than `npm ci`: npm 11 leaves other platforms' optional
# packages out of the lock file here, which `npm ci` then rejects as out of sync.
npm install --no-audit --no-fund
npm run build
bash scripts/install-chromium.sh   # Debian's Chromium for the web player's browser tests
bash scripts/install-promtool.sh   # promtool checks the /metrics exposition in the tests
bash scripts/install-schemathesis.sh   # schemathesis runs against /openapi.json in the tests
bash scripts/install-python-readers.sh   # DuckDB and pyarrow read the Parquet exports back in the tests
bash scripts/redis.sh install   # Debian's redis-server (and kcat) for the active/standby tests
bash scripts/kafka.sh fetch     # the Apache Kafka broker's jars from Maven Central (cached) for the Kafka tests
bash scripts/install-native.sh   # the Node addon: the payload encoder of all-number blocks (Rust)
bash scripts/install-wasm.sh   # the WebAssembly column encoder prototype its differential test checks
