#!/usr/bin/env bash
# Build every Lambda of template.yaml for arm64 (Graviton) with `sam build` and
# cargo-lambda, then print each function's zipped size. Not run in CI: the Rust target
# for aarch64 is a toolchain download, not a registry one.
#
# Installs the pinned aws-sam-cli and cargo-lambda (which brings the zig linker) into
# virtualenvs under ~/.cache/avw-venvs; needs Python 3 with venv, and the target:
#   rustup target add aarch64-unknown-linux-gnu
# Extra arguments go to `sam build` (e.g. `--no-cached`).
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
SAM_VENV="$CACHE/avw-venvs/aws-sam-cli-$SAM_VERSION"
CARGO_LAMBDA_VENV="$CACHE/avw-venvs/cargo-lambda-$CARGO_LAMBDA_VERSION"
venv "$SAM_VENV" "aws-sam-cli==$SAM_VERSION"
venv "$CARGO_LAMBDA_VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION"

TARGET=aarch64-unknown-linux-gnu
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET" ]; then
    echo "build-lambdas: the Rust standard library for $TARGET is missing." >&2
    echo "  With rustup: rustup target add $TARGET" >&2
    echo "  (Functions run on Graviton, arm64; template.yaml, Globals.Architectures.)" >&2
    exit 1
fi

export SAM_CLI_TELEMETRY=0
PATH="$CARGO_LAMBDA_VENV/bin:$PATH" "$SAM_VENV/bin/sam" build "$@"

# What Lambda stores per function: the zipped build directory.
python3 - <<'PY'
import io, os, zipfile
root = ".aws-sam/build"
print(f"\n{'function':<24} {'zipped':>10} {'unzipped':>10}")
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name)
    if not os.path.isdir(path):
        continue
    buffer, raw = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, _, files in os.walk(path):
            for f in files:
                full = os.path.join(dirpath, f)
                raw += os.path.getsize(full)
                z.write(full, os.path.relpath(full, path))
    print(f"{name:<24} {buffer.tell() / 1e6:>8.1f} MB {raw / 1e6:>8.1f} MB")
PY
