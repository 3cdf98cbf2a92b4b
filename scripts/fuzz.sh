#!/usr/bin/env bash
# Fuzzing (docs/security.md, "Fuzzing"): each cargo-fuzz target in fuzz/ runs for a bounded time from the
# committed seed corpus (fuzz/corpus/<target>/) plus a fresh set of seeds made by the same generator
# (crates/relay/tests/fuzz_corpus.rs, with new MLS keys every time). A crash, a panic, an overflow or an input
# that takes over 10 s fails the script, which prints the reproducer's path and the command that replays it.
#
#   scripts/fuzz.sh [TARGET...]          every target (mls_framing relay_frames client_delivery) by default
#   SKYTALE_FUZZ_SECONDS=60              how long each target runs
#   SKYTALE_FUZZ_SANITIZER=none          or `address` (AddressSanitizer, also on stable): 5 to 10 times fewer
#                                        executions per second, for a deeper run by hand
#   SKYTALE_FUZZ_WRITE_SEEDS=1           rewrite the committed seed corpus instead of fuzzing (after changing the
#                                        generator); commit the result
#
# Works with the stable toolchain: libFuzzer's instrumentation needs `-Z` flags, which RUSTC_BOOTSTRAP=1 allows.
# No sanitizer by default: the project's code has no unsafe code, `--debug-assertions` makes every integer
# overflow a crash, and in a bounded run the executions count more. Needs scripts/setup.sh to have run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '==> fuzz: %s\n' "$*" >&2; }

seconds="${SKYTALE_FUZZ_SECONDS:-60}"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(mls_framing relay_frames client_delivery)
fi
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
fuzz_dir="$target_dir/fuzz-run"

cargo_fuzz_version="0.13.2"
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]; then
    log "installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version"
fi

# One build configuration for every target, so building all of them once serves every run below.
sanitizer="${SKYTALE_FUZZ_SANITIZER:-none}"
fuzz_build_flags=(--sanitizer "$sanitizer" --debug-assertions --target-dir "$target_dir/fuzz-$sanitizer")
# Only for cargo fuzz: cargo rebuilds whatever it built without it (the workspace, for the seeds below).
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }

log "generating fresh seeds (real MLS messages and SLIM frames)"
rm -rf "$fuzz_dir/fresh-seeds"
# --workspace --release: the same features and profile as scripts/test.sh's build, so nothing is rebuilt there.
SKYTALE_FUZZ_SEEDS="$fuzz_dir/fresh-seeds" cargo test --release --workspace --quiet --test fuzz_corpus \
    fresh_seeds_are_handled_as_expected >/dev/null

if [ "${SKYTALE_FUZZ_WRITE_SEEDS:-}" = 1 ]; then
    rm -rf fuzz/corpus
    cp -r "$fuzz_dir/fresh-seeds" fuzz/corpus
    log "wrote fuzz/corpus: $(find fuzz/corpus -type f | wc -l) seeds, $(du -sh fuzz/corpus | cut -f1)"
    exit 0
fi

log "building the fuzz targets (${fuzz_build_flags[*]})"
build_start=$SECONDS
fuzz build "${fuzz_build_flags[@]}"
log "built in $((SECONDS - build_start)) s"

status=0
for target in "${targets[@]}"; do
    # New inputs go to the first corpus directory, a scratch one kept between local runs; the committed seeds
    # and the fresh ones are only read.
    corpus="$fuzz_dir/corpus/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    run_log="$fuzz_dir/$target.log"
    marker="$fuzz_dir/$target.started"
    touch "$marker"
    log "$target for ${seconds} s"
    if fuzz run "${fuzz_build_flags[@]}" "$target" "$corpus" "fuzz/corpus/$target" \
        "$fuzz_dir/fresh-seeds/$target" -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$run_log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$run_log")"
        speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run_log")"
        coverage="$(grep -o 'cov: [0-9]*' "$run_log" | tail -1)"
        log "$target: $runs runs, $speed exec/s, $coverage, corpus $(find "$corpus" -type f | wc -l) inputs"
    else
        status=1
        tail -n 60 "$run_log" >&2
        echo "fuzz.sh: $target failed (full log: $run_log)" >&2
        found=0
        while IFS= read -r reproducer; do
            found=1
            echo "fuzz.sh: $target reproducer: $reproducer" >&2
            echo "fuzz.sh:   replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${fuzz_build_flags[*]} $target $reproducer" >&2
        done < <(find "$artifacts" -type f -newer "$marker")
        if [ "$found" = 0 ]; then
            echo "fuzz.sh: $target left no reproducer; see the log" >&2
        fi
    fi
done
exit "$status"
