#!/usr/bin/env bash
# Builds the two wheels that install Skytale with pip and no Rust toolchain: skytale-sdk (the Python package,
# abi3: one wheel for every CPython from 3.9) and skytale-cli (the `skytale` command), into DIR (default dist/).
# Both are for this machine's platform. Needs scripts/setup.sh to have run (it builds the same into .venv).
#
#   scripts/wheels.sh [DIR]
#   pip install DIR/skytale_sdk-*.whl DIR/skytale_cli-*.whl
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
out="${1:-dist}"

log() { printf '==> %s\n' "$*" >&2; }

rm -f "$out"/skytale_sdk-*.whl "$out"/skytale_cli-*.whl
log "building the skytale command's wheel (release) into $out"
.venv/bin/maturin build --release --manifest-path crates/cli/Cargo.toml --out "$out"
log "building the skytale_sdk wheel (release) into $out"
.venv/bin/maturin build --release --interpreter .venv/bin/python --out "$out"
log "install with: pip install $out/skytale_sdk-*.whl $out/skytale_cli-*.whl"
