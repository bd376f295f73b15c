#!/usr/bin/env bash
# DuckDB and pyarrow (PyPI) read Parquet exports back in test/parquet.test.ts: two
# independent readers check that the files Tapedeck writes are standard Parquet.
# Idempotent: does nothing when the machine's python3 already imports both.
set -euo pipefail
have() { python3 -c 'import duckdb, pyarrow' >/dev/null 2>&1; }
if have; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1' 'pyarrow>=17'
have || { echo "install-python-readers: python3 still cannot import duckdb and pyarrow" >&2; exit 1; }
