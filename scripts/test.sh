#!/usr/bin/env bash
# The whole test suite: the lint standard (scripts/lint.sh), Rust (every crate, the API's storage also on a
# throwaway PostgreSQL, the relay's store-agnostic tests also on a throwaway JetStream log), Python (the SDK against
# real relay and `skytale dev` processes) and fuzzing (the cargo-fuzz targets for SKYTALE_FUZZ_SECONDS each, 60 by
# default, and schemathesis against the API for SKYTALE_SCHEMATHESIS_SECONDS, 90 by default).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh
# setup.sh may have just installed Rust with rustup, which this shell's PATH does not know yet.
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# A PostgreSQL cluster for the API's storage tests, and a nats-server with JetStream for the relay's second pass.
# postgres.sh and nats.sh each print an export line on stdout and, among their progress on stderr, the command that
# stops their server; the trap runs those commands however this script ends.
postgres_log="$(mktemp -t skytale-postgres-log.XXXXXX)"
nats_log="$(mktemp -t skytale-nats-log.XXXXXX)"
postgres_stop=""
nats_stop=""
stop_servers() {
    if [ -n "$postgres_stop" ]; then
        eval "$postgres_stop" >/dev/null 2>&1 || echo "test.sh: could not stop PostgreSQL: $postgres_stop" >&2
    fi
    if [ -n "$nats_stop" ]; then
        eval "$nats_stop" >/dev/null 2>&1 || echo "test.sh: could not stop nats-server: $nats_stop" >&2
    fi
    rm -f "$postgres_log" "$nats_log"
}
trap stop_servers EXIT
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
# The relay's tests again, on the JetStream log (docs/relay.md, "The relay's tests on both stores"): every relay
# common::config makes then keeps its log on this one nats-server, in a stream of its own data directory. Whole
# binaries are listed: every one that starts its relays through common::config. The two tests among them that are
# about SQLite (metrics' readiness test moves the SQLite file away; resume's byte budget needs --retention-bytes,
# which this log refuses) return at once printing "skipped on JetStream", their name and why
# (common::skipped_on_jetstream; --nocapture shows those lines), so neither passes unnoticed without having tested
# anything. Left out: jetstream, jetstream_log and jetstream_groups start nats-server clusters of their own;
# fuzz_corpus starts no relay.
if nats_env="$(scripts/nats.sh 2>"$nats_log")"; then
    cat "$nats_log" >&2
    nats_stop="$(sed -n 's/^nats.sh: stop with: //p' "$nats_log")"
    (
        eval "$nats_env"
        export SKYTALE_TEST_STORE
        # --workspace as in the first pass, so its binaries are reused: with -p skytale-relay the dependencies'
        # features differ and everything is compiled again. The API's and the client's tests of the same names
        # (key_rotation, metrics, tls) run along, a few seconds, and ignore SKYTALE_TEST_STORE.
        cargo test --release --workspace --test delivery --test head --test hostile_frames --test resume \
            --test backpressure --test feeds --test connections --test stream_limits --test drain --test metrics \
            --test tls --test auth --test membership --test key_rotation --test account_quotas -- --nocapture
    ) || status=1
else
    cat "$nats_log" >&2
    status=1
fi
.venv/bin/python -m pytest tests/ -v || status=1
scripts/fuzz.sh || status=1
scripts/schemathesis.sh || status=1
exit "$status"
