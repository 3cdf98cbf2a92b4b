#!/usr/bin/env bash
# The formatting and lint standard, enforced: rustfmt (rustfmt.toml), clippy with warnings denied, ruff
# (pyproject.toml), the native stubs checked against the built module and the Python package's type completeness.
# Needs scripts/setup.sh to have run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '==> lint: %s\n' "$*" >&2; }

log "cargo fmt --check"
cargo fmt --all --check
# The fuzz targets (fuzz/, outside the workspace; their code is the crates' `fuzzing` modules, linted above).
rustfmt --check --edition 2021 fuzz/fuzz_targets/*.rs

# --release shares build-script outputs (ring, the proto code generation) with setup.sh's release build.
log "cargo clippy (warnings denied)"
cargo clippy --release --workspace --all-targets --quiet -- -D warnings

log "module cycles"
python3 scripts/module_cycles.py

python_sources=(python tests examples benches scripts/*.py)
log "ruff check"
.venv/bin/ruff check "${python_sources[@]}"
log "ruff format --check"
.venv/bin/ruff format --check "${python_sources[@]}"

# The stub in the tree (MYPYPATH) against the native module built into .venv by scripts/setup.sh; mypy's cache goes
# under target/ rather than into the work tree.
log "stubtest skytale_sdk._native"
MYPYPATH=python MYPY_CACHE_DIR=target/mypy-cache .venv/bin/python -m mypy.stubtest skytale_sdk._native

# What a user copies: the examples and the README's samples (extracted, so the two cannot drift apart) type-check
# against the installed package, with both type checkers users run.
log "mypy and pyright on examples/ and the README's samples"
.venv/bin/python tests/readme.py target/readme-samples
MYPY_CACHE_DIR=target/mypy-cache .venv/bin/python -m mypy examples target/readme-samples
.venv/bin/pyright --pythonpath .venv/bin/python examples target/readme-samples

# The installed package's public API is fully typed: every symbol it exports has a declared (or unambiguous) type;
# pyright exits non-zero below 100%. --verifytypes finds the package with the `python` on PATH (it does not follow
# --pythonpath), hence .venv/bin first on PATH.
log "pyright --verifytypes skytale_sdk"
PATH="$repo_root/.venv/bin:$PATH" .venv/bin/pyright --pythonpath .venv/bin/python --verifytypes skytale_sdk --ignoreexternal
