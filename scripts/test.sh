#!/usr/bin/env bash
# The whole test suite: Rust (every crate) and Python (the SDK against real relay processes).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh
# setup.sh may have just installed Rust with rustup, which this shell's PATH does not know yet.
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# Both suites always run, so one failing does not hide the other's result.
status=0
# --release reuses the artifacts setup.sh just built instead of compiling everything a second time.
cargo test --release --workspace || status=1
.venv/bin/python -m pytest tests/ -v || status=1
exit "$status"
