#!/usr/bin/env bash
# The benchmark suite in one command: prepares the checkout (scripts/setup.sh), builds the Rust load generators
# (skytale-bench), then runs every section against local processes it starts itself and prints one table.
# Figures also go to bench-results.json (or --out FILE). Flags: --quick (smoke run), --only SECTION,...
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh
# setup.sh may have just installed Rust with rustup, which this shell's PATH does not know yet.
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
printf '==> %s\n' "building skytale-bench (release)" >&2
cargo build --release -p skytale-bench

exec .venv/bin/python benches/run.py "$@"
