#!/usr/bin/env bash
# Debian's prometheus package: promtool checks the /metrics exposition in the tests, and the
# prometheus server itself (/usr/bin/prometheus) is the real remote-write sender, scrape
# reference and remote-write receiver of the Prometheus tests and bench:prom-write.
# Idempotent: does nothing when both are already there.
set -euo pipefail
have() { command -v promtool >/dev/null && [ -x /usr/bin/prometheus ]; }
if have; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
# The package's post-install starts a prometheus daemon where systemd runs; the tests start
# their own on free ports, so keep services from starting.
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
have || { echo "install-promtool: promtool or /usr/bin/prometheus still missing" >&2; exit 1; }
