#!/usr/bin/env bash
# What one delivery costs on AWS: runs the capacity scenarios (tests/meter: the real API,
# sender and DynamoDB/SQS adapters on moto, every request priced by testkit's capacity
# meter) and writes docs/COST.md: per-delivery capacity and requests, which request spent
# what, and the price per million deliveries. Extra arguments go to the scenario program
# (`--deliveries N`, default 100 per scenario; `--out FILE` to write elsewhere).
#
# Moto is started exactly as scripts/test.sh starts it (scripts/moto.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/avw-target}"

# shellcheck source=scripts/moto.sh
. scripts/moto.sh
start_moto

# The dev profile: the figures are counts, not speed, and it shares the test build. (cargo
# runs benches in their package's directory, hence the absolute path.)
cargo bench --locked -p integration-tests --bench capacity --profile dev -- --out "$PWD/docs/COST.md" "$@"
