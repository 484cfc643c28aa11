#!/usr/bin/env bash
# Run every test: unit tests, the Lambda fixture tests, the storage contract suite on
# both backends, the capacity meter and the local-server tests, then the web console's
# browser tests (scripts/console-test.sh; skipped with a message where Node.js or
# Chromium is missing, unless AVW_REQUIRE_BROWSER=1).
#
# DynamoDB and SQS are the moto server (pinned, installed into a virtualenv this script
# owns outside the repo; scripts/moto.sh), started on a free loopback port for this run and
# stopped on exit. Extra arguments go to `cargo test` (e.g. `scripts/test.sh contract`);
# with `-p PACKAGE` among them only those packages are tested, otherwise the workspace.
# With arguments, the browser tests are left out (run scripts/console-test.sh for them).
set -euo pipefail
cd "$(dirname "$0")/.."

STANDARDWEBHOOKS_VERSION=1.1.0
# The version aws-sam-cli (.ci/run) carries, so the IAM test sees the roles `sam` makes.
SAM_TRANSLATOR_VERSION=1.115.0
PYYAML_VERSION=6.0.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/avw-target}"

# shellcheck source=scripts/moto.sh
. scripts/moto.sh
# The receivers' own library, to check real deliveries the way receivers do.
SWH_VENV="$CACHE/avw-venvs/standardwebhooks-$STANDARDWEBHOOKS_VERSION"
venv "$SWH_VENV" "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
export AVW_STANDARDWEBHOOKS_PYTHON="$SWH_VENV/bin/python"
# template.yaml's roles for the IAM test (tests/it/iam.rs runs tests/iam/check.py).
IAM_VENV="$CACHE/avw-venvs/aws-sam-translator-$SAM_TRANSLATOR_VERSION"
venv "$IAM_VENV" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" "PyYAML==$PYYAML_VERSION"
export AVW_IAM_PYTHON="$IAM_VENV/bin/python"

start_moto

# `--workspace` would override any `-p` (cargo ignores `-p` next to it).
scope=(--workspace)
# Every test binary runs, whatever failed before it, and all failures are reported at
# the end (cargo refuses the flag twice, so not when it is among the arguments).
no_fail_fast=(--no-fail-fast)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p | -p?* | --package | --package=*) scope=() ;;
        --no-fail-fast) no_fail_fast=() ;;
    esac
done
# A failure stops neither the other test binaries nor the browser tests; the script
# exits non-zero if anything failed.
failed=0
if [ "$#" -eq 0 ]; then
    # The IAM policy evaluator's own tests (tests/iam/test_policy.py).
    "$AVW_IAM_PYTHON" -m unittest discover -s tests/iam -p 'test_*.py' || failed=1
fi
cargo test ${scope[@]+"${scope[@]}"} ${no_fail_fast[@]+"${no_fail_fast[@]}"} --locked "$@" || failed=1

if [ "$#" -eq 0 ]; then
    scripts/console-test.sh || failed=1
fi
exit "$failed"
