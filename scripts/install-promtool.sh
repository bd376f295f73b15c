#!/usr/bin/env bash
# promtool (from Debian's prometheus package) checks the /metrics exposition in the tests.
# Idempotent: does nothing when promtool is already on the PATH.
set -euo pipefail
if command -v promtool >/dev/null; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
# The package's post-install starts a prometheus daemon where systemd runs; we only need
# the promtool binary, so keep services from starting.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
for attempt in 1 2 3; do
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then break; fi
  echo "install-promtool: apt-get failed (attempt $attempt), retrying" >&2
  sleep 5
done
command -v promtool >/dev/null || { echo "install-promtool: promtool still missing" >&2; exit 1; }
