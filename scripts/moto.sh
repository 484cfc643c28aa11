# Sourced by scripts/test.sh and scripts/capacity.sh: the pinned moto server (DynamoDB and
# SQS), installed into a virtualenv outside the repo (scripts/venv.sh).
#
# start_moto: start moto on a free loopback port, wait until it answers, point the AWS SDK
# at it (AWS_ENDPOINT_URL, a region, dummy credentials) and stop it when the calling
# script exits (it sets an EXIT trap).

# shellcheck source=scripts/venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

MOTO_VERSION=5.2.5

stop_moto() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -f "$MOTO_LOG"
}

moto_answers() {
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$1/moto-api/', timeout=1)" 2>/dev/null
}

start_moto() {
    local venv_dir port
    venv_dir="${XDG_CACHE_HOME:-$HOME/.cache}/avw-venvs/moto-$MOTO_VERSION"
    venv "$venv_dir" "moto[server]==$MOTO_VERSION"

    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    MOTO_LOG=$(mktemp -t avw-moto.XXXXXX.log)
    "$venv_dir/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    trap stop_moto EXIT

    if ! wait_until "$MOTO_PID" 150 0.2 moto_answers "$port"; then
        echo "moto did not start on port $port:" >&2
        cat "$MOTO_LOG" >&2
        exit 1
    fi
    echo "moto $MOTO_VERSION listening on 127.0.0.1:$port" >&2

    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    export AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=test
    export AWS_SECRET_ACCESS_KEY=test
    unset AWS_PROFILE AWS_SESSION_TOKEN
}
