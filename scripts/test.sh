#!/usr/bin/env bash
# The whole test suite: the lint standard (scripts/lint.sh), Rust (every crate, the API's storage also on a
# throwaway PostgreSQL), Python (the SDK against real relay and `skytale dev` processes) and fuzzing (the cargo-fuzz
# targets for SKYTALE_FUZZ_SECONDS each, 60 by default, and schemathesis against the API for
# SKYTALE_SCHEMATHESIS_SECONDS, 90 by default).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh
# setup.sh may have just installed Rust with rustup, which this shell's PATH does not know yet.
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# A PostgreSQL cluster for the API's storage tests. postgres.sh prints the export line on stdout and, among its
# progress on stderr, the command that stops the cluster; the trap runs that command however this script ends.
postgres_log="$(mktemp -t skytale-postgres-log.XXXXXX)"
postgres_stop=""
stop_postgres() {
    if [ -n "$postgres_stop" ]; then
        eval "$postgres_stop" >/dev/null 2>&1 || echo "test.sh: could not stop PostgreSQL: $postgres_stop" >&2
    fi
    rm -f "$postgres_log"
}
trap stop_postgres EXIT
postgres_env="$(scripts/postgres.sh 2>"$postgres_log")" || { cat "$postgres_log" >&2; exit 1; }
cat "$postgres_log" >&2
postgres_stop="$(sed -n 's/^postgres.sh: stop with: //p' "$postgres_log")"
eval "$postgres_env"
export SKYTALE_TEST_POSTGRES_URL

# The lint standard, both suites and the fuzzing always run, so one failing does not hide the others' results.
status=0
scripts/lint.sh || status=1
# --release reuses the artifacts setup.sh just built instead of compiling everything a second time. The relay's
# JetStream tests (crates/relay/tests/jetstream.rs) start the .venv/bin/nats-server that setup.sh installed.
SKYTALE_REQUIRE_POSTGRES=1 cargo test --release --workspace || status=1
.venv/bin/python -m pytest tests/ -v || status=1
scripts/fuzz.sh || status=1
scripts/schemathesis.sh || status=1
exit "$status"
