#!/usr/bin/env bash
# Run every test: unit tests, the Lambda fixture tests, the storage contract suite on
# both backends and the local-server tests.
#
# DynamoDB is the moto server (pinned, installed into a virtualenv this script owns
# outside the repo), started on a free loopback port for this run and stopped on exit.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh contract`).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
STANDARDWEBHOOKS_VERSION=1.1.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/avw-target}"

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
VENV="$CACHE/avw-venvs/moto-$MOTO_VERSION"
venv "$VENV" "moto[server]==$MOTO_VERSION"
# The receivers' own library, to check real deliveries the way receivers do.
SWH_VENV="$CACHE/avw-venvs/standardwebhooks-$STANDARDWEBHOOKS_VERSION"
venv "$SWH_VENV" "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
export AVW_STANDARDWEBHOOKS_PYTHON="$SWH_VENV/bin/python"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_LOG=$(mktemp -t avw-moto.XXXXXX.log)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
stop_moto() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -f "$MOTO_LOG"
}
trap stop_moto EXIT

ready=
for _ in $(seq 1 150); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/', timeout=1)" 2>/dev/null; then
        ready=yes
        break
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then break; fi
    sleep 0.2
done
if [ -z "$ready" ]; then
    echo "moto did not start on port $PORT:" >&2
    cat "$MOTO_LOG" >&2
    exit 1
fi
echo "moto $MOTO_VERSION listening on 127.0.0.1:$PORT" >&2

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN

cargo test --workspace --locked "$@"
