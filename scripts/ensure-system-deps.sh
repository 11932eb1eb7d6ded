#!/usr/bin/env bash
# Installs the system programs the test suite runs for real: Prometheus + promtool (backfilled TSDB)
# and Chromium (browser tests). Uses Debian's packages when apt-get is available; otherwise says
# what to install and fails, rather than letting tests skip silently.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "Installing Debian packages: $packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
  exit 0
fi
echo "make test needs these programs on PATH: $packages" >&2
echo "  Debian/Ubuntu: sudo apt-get install prometheus chromium" >&2
echo "  macOS:         brew install prometheus && install Chromium or Google Chrome (set CHROMIUM=/path/to/binary)" >&2
exit 1
