#!/usr/bin/env bash
# Run the web console's browser tests: Playwright (playwright-core, pinned in
# console/tests/package-lock.json) drives the system's Chromium against a webhooks-local
# server and an HTTPS receiver that the tests start themselves.
#
# Needs Node.js (20 or later) with npm, and Chromium (`CHROMIUM`, default
# /usr/bin/chromium); no browser is ever downloaded. Without them the run is skipped,
# unless AVW_REQUIRE_BROWSER=1, which makes it fail. Extra arguments go to `node --test`.
# AVW_SCREENSHOT_DIR=docs/images writes the README's screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/avw-target}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

missing=()
command -v node >/dev/null 2>&1 || missing+=("node")
command -v npm >/dev/null 2>&1 || missing+=("npm")
[ -x "$CHROMIUM" ] || missing+=("chromium ($CHROMIUM)")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "console tests need: ${missing[*]}" >&2
    echo "install them with: apt install chromium nodejs npm (or set CHROMIUM to a Chromium binary)" >&2
    if [ "${AVW_REQUIRE_BROWSER:-0}" = "1" ]; then
        exit 1
    fi
    echo "console tests skipped: ${missing[*]} not found"
    exit 0
fi

if [ -n "${AVW_SCREENSHOT_DIR:-}" ]; then
    mkdir -p "$AVW_SCREENSHOT_DIR"
    AVW_SCREENSHOT_DIR="$(cd "$AVW_SCREENSHOT_DIR" && pwd)"
    export AVW_SCREENSHOT_DIR
fi

(cd console/tests && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
cargo build --quiet --bin webhooks-local --locked
export AVW_LOCAL_BIN="${AVW_LOCAL_BIN:-$CARGO_TARGET_DIR/debug/webhooks-local}"

node --test "$@" console/tests/
