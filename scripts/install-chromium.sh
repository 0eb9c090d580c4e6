#!/usr/bin/env bash
# Install Debian's `chromium` so the report test (tests/target/test_report.py) renders the HTML report in a
# real headless browser. Idempotent (does nothing when chromium is on PATH) and quiet (apt's output is
# shown only when it fails). CI runs it, then sets BROKER_REQUIRE_CHROMIUM=1 to make that test mandatory.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "install-chromium: run as root (or with sudo) to apt-get install chromium" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq chromium; } >"$log" 2>&1; then
  echo "install-chromium: apt-get failed:" >&2
  cat "$log" >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: chromium is still not on PATH" >&2; exit 1; }
