#!/usr/bin/env bash
# Property-based API tests: Schemathesis against the local server and the OpenAPI document
# it serves. Every operation, valid and invalid data (`--mode all`), every check
# (`--checks all`), fixed seed.
#
# Installs Schemathesis (pinned) into a virtualenv this script owns outside the repo,
# builds `webhooks-local` (debug profile, sharing the test build's cache), starts it in
# memory on a free loopback port with known keys, seeds an endpoint with deliveries through
# the API, runs Schemathesis against `GET /openapi.json`, then checks the server is still
# up and answering. Fails on any 5xx, any answer the document does not describe, any other
# failed check, or a server that died or stopped answering.
#
# Everything after the build runs in a network namespace of its own that has only loopback
# (`unshare --net`). Schemathesis makes up endpoint URLs (public IP literals included) and
# the in-process sender tries to deliver every event to them: the namespace, not only
# `--allow-target none`, is what guarantees that nothing beyond this machine is contacted.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (cases per operation and phase, default 500),
# SCHEMATHESIS_SEED (default below), CARGO_TARGET_DIR (as in scripts/test.sh). Extra
# arguments go to `schemathesis run` and win over the ones below (e.g.
# `scripts/schemathesis.sh --include-operation-id publishEvent --workers 2`).
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."

SCHEMATHESIS_VERSION=4.32.5
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/avw-target}"
VENV="$CACHE/avw-venvs/schemathesis-$SCHEMATHESIS_VERSION"
SERVER="$CARGO_TARGET_DIR/debug/webhooks-local"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-500}"
SEED="${SCHEMATHESIS_SEED:-20261127}"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

if [ -z "${AVW_SCHEMATHESIS_NETNS:-}" ]; then
    export AVW_SCHEMATHESIS_STARTED; AVW_SCHEMATHESIS_STARTED=$(date +%s)
    venv "$VENV" "schemathesis==$SCHEMATHESIS_VERSION"
    cargo build --locked --bin webhooks-local

    # Run the rest of this script again in a new network namespace: as root directly,
    # otherwise as the root of a new user namespace. No fallback without one.
    userns=()
    if [ "$(id -u)" != 0 ]; then userns=(--user --map-root-user); fi
    if ! unshare "${userns[@]}" --net true; then
        echo "cannot create a network namespace (unshare --net); refusing to run the" \
            "fuzzer with a sender that could reach the network" >&2
        exit 1
    fi
    exec env AVW_SCHEMATHESIS_NETNS=1 unshare "${userns[@]}" --net -- "$SELF" "$@"
fi

# --- Inside the namespace: loopback is its only interface, and it starts down.
PATH="$PATH:/usr/sbin:/sbin"
ip link set lo up

WORK=$(mktemp -d -t avw-schemathesis.XXXXXX)
SERVER_LOG="$WORK/server.log"
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop_server EXIT

# Port 0: the kernel picks a free port, and the server's first line says which. The
# retry schedule is one second, so deliveries finish (fail) during the run.
ADMIN_KEY=avk_schemathesis_admin
RETRY_SCHEDULE=1 "$SERVER" --listen 127.0.0.1:0 \
    --key "demo:admin:$ADMIN_KEY" \
    --key demo:member:avk_schemathesis_member \
    --key demo:publisher:avk_schemathesis_publisher \
    --allow-target none >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# The first line the server prints is `listening on http://ADDR`.
server_address() {
    ADDR=$(sed -n '1s|^listening on http://||p' "$SERVER_LOG")
    [ -n "$ADDR" ]
}
if ! wait_until "$SERVER_PID" 100 0.1 server_address; then
    echo "webhooks-local did not start:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
fi
BASE="http://$ADDR"
API="$BASE/org/demo/webhooks"
echo "webhooks-local listening on $BASE" >&2

# --- Seed state through the API: an endpoint with four deliveries (three published events
# and a test event), whose ids the positive cases use so they get past 404; and three
# endpoints for deleteEndpoint to delete, so that DELETE does not take the others away.
python3 - "$API" "$ADMIN_KEY" >"$WORK/seed.env" <<'PY'
import json, sys, urllib.request
api, key = sys.argv[1], sys.argv[2]
def call(method, path, body=None, want=200):
    req = urllib.request.Request(api + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == want, (method, path, r.status)
        return json.load(r)
ep = call("POST", "/endpoints", {"url": "https://hooks.example.com/schemathesis",
    "description": "seeded", "event_types": ["alert.fired", "order.created"]}, 201)["id"]
for i in range(3):
    call("POST", "/events", {"id": f"evt_seed_{i}", "type": "alert.fired", "data": {"n": i}}, 202)
call("POST", f"/endpoints/{ep}/test", None, 202)
deliveries = [d["id"] for d in call("GET", f"/endpoints/{ep}/deliveries")["deliveries"]]
assert len(deliveries) == 4, deliveries
doomed = [call("POST", "/endpoints", {"url": f"https://doomed{i}.example.com/",
    "event_types": ["alert.fired"]}, 201)["id"] for i in range(3)]
recoveries = [call("POST", f"/endpoints/{ep}/recover", {"since": "2000-01-01T00:00:00Z"}, 202)["recovery_id"]]
cursors = []
for limit in (1, 2, 3):
    cursor = call("GET", f"/deliveries?limit={limit}")["next_cursor"]
    assert cursor, limit
    cursors.append(cursor)
print(f"ENDPOINT_ID={ep}")
print(f"CURSORS={','.join(cursors)}")
print(f"DELIVERY_IDS={','.join(deliveries)}")
print(f"DOOMED_IDS={','.join(doomed)}")
print(f"RECOVERY_IDS={','.join(recoveries)}")
PY
# shellcheck disable=SC1091
. "$WORK/seed.env"
echo "seeded endpoint $ENDPOINT_ID with deliveries $DELIVERY_IDS" >&2

# --- Schemathesis configuration. Path parameters cannot be set on its command line in
# 4.x, so this file (made per run, outside the repo) holds them:
# - `org_slug` is always `demo`, the keys' organisation (any other answers 404);
# - `endpoint_id`, `delivery_id` and `recovery_id` are the seeded ids in about half the generated cases
#   (a dictionary with probability 0.5), values Schemathesis makes up in the others;
# - deleteEndpoint takes its seeded ids from the three spare endpoints, and not from ids
#   seen in earlier answers (`extra-data-sources`), which would delete the seeded endpoint
#   in the first phase and leave every later case a 404. (The stateful phase, which
#   comes last, may still delete it by following links: it tests exactly that.)
# - `cursor` (searchDeliveries) is one the API gave (three seeded ones): a cursor is
#   opaque, any string is valid by the document, and one the API did not give is refused
#   (400). The coverage phase still sends made-up boundary strings, so for this one
#   operation positive_data_acceptance also expects 400 (its other parameters' rules are
#   tested in tests/it/fixtures.rs and shared/src/api/search.rs);
# - no cache or example database: each run starts from the seed alone.
toml_list() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1].split(",")))' "$1"; }
cat >"$WORK/schemathesis.toml" <<TOML
[cache]
enabled = false

[dictionaries.endpoint]
values = $(toml_list "$ENDPOINT_ID")
[dictionaries.delivery]
values = $(toml_list "$DELIVERY_IDS")
[dictionaries.doomed]
values = $(toml_list "$DOOMED_IDS")
[dictionaries.cursor]
values = $(toml_list "$CURSORS")
[dictionaries.recovery]
values = $(toml_list "$RECOVERY_IDS")

[parameters]
"path.org_slug" = "demo"
"path.endpoint_id" = { dictionary = "endpoint", probability = 0.5 }
"path.delivery_id" = { dictionary = "delivery", probability = 0.5 }
"path.recovery_id" = { dictionary = "recovery", probability = 0.5 }
"query.cursor" = { dictionary = "cursor", probability = 1.0 }

[[operations]]
include-operation-id = "searchDeliveries"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

[[operations]]
include-operation-id = "deleteEndpoint"
parameters = { "path.endpoint_id" = { dictionary = "doomed", probability = 0.5 } }
phases.examples.extra-data-sources.responses = false
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false
TOML

# Hooks (Python, loaded through SCHEMATHESIS_HOOKS):
# - before each createEndpoint, keep the organisation under its documented limit of 100
#   endpoints by deleting its oldest ones (never the seeded ones) once it has 90: else,
#   after about a hundred valid creates, every valid create would be answered
#   `422 endpoint_limit_reached` and positive_data_acceptance would fail on the limit,
#   not on a bug. The newest endpoints, which stateful scenarios are using, stay.
# - count the requests sent for each operation, for the summary.
cat >"$WORK/hooks.py" <<'PY'
import atexit, collections, json, os, urllib.error, urllib.request
import schemathesis

API, KEY = os.environ["AVW_API"], os.environ["AVW_KEY"]
KEEP = set(os.environ["AVW_KEEP"].split(","))
COUNTS = collections.Counter()
atexit.register(lambda: json.dump(COUNTS, open(os.environ["AVW_COUNTS"], "w")))

def call(method, path):
    req = urllib.request.Request(API + path, method=method,
        headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")

@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.label != "POST /org/{org_slug}/webhooks/endpoints":
        return
    endpoints = call("GET", "/endpoints")["endpoints"]  # newest first
    if len(endpoints) >= 90:
        oldest_first = [e["id"] for e in reversed(endpoints) if e["id"] not in KEEP]
        for endpoint_id in oldest_first[: len(endpoints) - 50]:
            try:
                call("DELETE", f"/endpoints/{endpoint_id}")
            except urllib.error.HTTPError:
                pass  # a test case deleted it first

@schemathesis.hook
def after_call(context, case, response):
    COUNTS[case.operation.label] += 1
PY

# --- The run. Every check is on and none is excluded. Those that could misfire on some
# APIs were looked at, and hold for this one:
# - ignored_auth, missing_required_header: without `Authorization`, or with a made-up key,
#   every operation but GET /openapi.json answers 401, before anything else;
# - use_after_free, ensure_resource_availability (stateful phase): after a DELETE the
#   endpoint and its deliveries are 404 at once, and a created endpoint is readable at
#   once;
# - negative_data_rejection: unknown query parameters and body fields are refused (400),
#   so cases made invalid that way are rejected, as Schemathesis expects;
# - positive_data_acceptance: the document's patterns (the endpoint URL's included) match
#   what the server accepts; the one limit that would refuse valid data, 100 endpoints,
#   is kept away by the hook above;
# - unsupported_method: a method an operation does not list answers 405, with `Allow`.
# `--include-path-regex "^/"` matches every path: without a filter naming it, Schemathesis
# leaves out the operation that serves the document itself (GET /openapi.json).
# One worker: the requests come in the same order, so a seed repeats a run (same cases,
# same counts); more workers also crash Hypothesis here now and then (a thread-safety
# error in its lambda descriptions on Python 3.11). `timeout` bounds the run, which
# normally takes about a minute.
cd "$WORK"
status=0
AVW_API="$API" AVW_KEY="$ADMIN_KEY" AVW_KEEP="$ENDPOINT_ID,$DOOMED_IDS" \
    AVW_COUNTS="$WORK/counts.json" SCHEMATHESIS_HOOKS="$WORK/hooks.py" \
    timeout 900 "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" \
    run "$BASE/openapi.json" \
    --header "Authorization: Bearer $ADMIN_KEY" \
    --include-path-regex "^/" \
    --mode all --checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
    --continue-on-failure --workers 1 --request-timeout 10 \
    --generation-database none --no-color \
    --report json --report-json-path "$WORK/report.json" "$@" || status=$?

# --- The server must have survived the run and still answer.
alive=yes
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    alive="no: webhooks-local exited during the run"
    echo "webhooks-local exited during the run; its log:" >&2
    tail -n 50 "$SERVER_LOG" >&2
else
    document=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/openapi.json" || true)
    list=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Authorization: Bearer $ADMIN_KEY" "$API/endpoints" || true)
    if [ "$document" != 200 ] || [ "$list" != 200 ]; then
        alive="no: GET /openapi.json answered $document, GET .../endpoints answered $list"
    fi
fi
echo >&2
if [ "$alive" != yes ]; then echo "server check failed ($alive)" >&2; fi

# --- Summary: one paragraph, then a closing line in the `N passed, N failed` form.
python3 - "$WORK/report.json" "$WORK/counts.json" "$AVW_SCHEMATHESIS_STARTED" \
    "$MAX_EXAMPLES" "$alive" <<'PY' || true
import json, sys, time
report_path, counts_path, started, max_examples, alive = sys.argv[1:]
try:
    report = json.load(open(report_path))
except (OSError, ValueError):
    print("schemathesis wrote no report (see its output above)")
    sys.exit()
try:
    counts = json.load(open(counts_path))
except (OSError, ValueError):
    counts = {}
cases = report["test_cases"]
errors = len(report["errors"])
failing = cases["with_failures"] + cases["errored"]
per_operation = ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: -kv[1]))
kinds = "; ".join(f"{f['code']} {f['title']} ({f['count']})" for f in report["failures"])
operations = report["operations"]
print(
    f"Schemathesis {report['schemathesis_version']} (seed {report['seed']}, at most "
    f"{max_examples} examples per operation and phase, positive and negative data, every "
    f"check) tested {operations['tested']} of {operations['total']} operations with "
    f"{cases['generated']} test cases; requests per operation: {per_operation}. "
    f"Failing cases: {failing} ({cases['unique_failures']} unique: {kinds or 'none'}); "
    f"errors: {errors}. Schemathesis ran {report['running_time']:.0f} s, this script "
    f"{time.time() - int(started):.0f} s in all. Server still up and answering: {alive}."
)
# Errors (the run itself broke) and a server that did not survive count as failures too.
failed = failing + errors + (alive != "yes")
print(f"schemathesis: {cases['generated'] - failing} passed, {failed} failed")
PY

if [ "$status" != 0 ]; then
    echo "schemathesis failed (exit $status)" >&2
    exit "$status"
fi
if [ "$alive" != yes ]; then exit 1; fi
