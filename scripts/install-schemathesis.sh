#!/usr/bin/env bash
# schemathesis (PyPI) tests the server against its own /openapi.json in test/schemathesis.test.ts.
set -euo pipefail
if command -v st >/dev/null && st --version 2>/dev/null | grep -q '4\.'; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
# pyenv installs console scripts behind shims that need a rehash.
if command -v pyenv >/dev/null; then pyenv rehash; fi
command -v st >/dev/null || { echo "install-schemathesis: st not on PATH after install" >&2; exit 1; }
