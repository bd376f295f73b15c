#!/usr/bin/env bash
# Installs Debian's Chromium for the web player's browser tests (Playwright drives it through
# playwright-core with executablePath /usr/bin/chromium; browsers cannot be downloaded here).
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
if [ ! -x /usr/bin/chromium ]; then
  echo "install-chromium: /usr/bin/chromium is still missing after apt-get install chromium" >&2
  exit 1
fi
