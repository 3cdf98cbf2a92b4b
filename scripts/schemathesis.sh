#!/usr/bin/env bash
# schemathesis against the API (docs/security.md, "Fuzzing"): a real `skytale api` on loopback with SQLite in a
# temporary directory, tested from the OpenAPI document it serves (GET /v1/openapi.json) for a bounded time. Every
# check runs (--checks all): no 5xx, status codes, content types and bodies as documented, schema-valid requests
# accepted and invalid ones refused, 401 without credentials. Authenticated with an API key of org `myorg`, the
# org of the document's examples, whose channel `myorg/team/general` is registered first, so that the examples
# reach past the authorisation checks.
#
#   SKYTALE_SCHEMATHESIS_SECONDS=90      the time budget of the run
#
# Needs scripts/setup.sh to have run (.venv with the skytale CLI and schemathesis).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '==> schemathesis: %s\n' "$*" >&2; }

seconds="${SKYTALE_SCHEMATHESIS_SECONDS:-90}"
work_dir="$(mktemp -d -t skytale-schemathesis.XXXXXX)"
api_pid=""
cleanup() {
    if [ -n "$api_pid" ]; then
        kill "$api_pid" 2>/dev/null || true
        wait "$api_pid" 2>/dev/null || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

eval "$(.venv/bin/skytale keys create --org myorg --data-dir "$work_dir/api")"
.venv/bin/skytale api --listen 127.0.0.1:0 --data-dir "$work_dir/api" >"$work_dir/api.out" 2>"$work_dir/api.log" &
api_pid=$!
for _ in $(seq 100); do
    grep -q '^export SKYTALE_API_URL=' "$work_dir/api.out" && break
    kill -0 "$api_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q '^export SKYTALE_API_URL=' "$work_dir/api.out"; then
    echo "schemathesis.sh: skytale api did not start; its log:" >&2
    cat "$work_dir/api.log" >&2
    exit 1
fi
eval "$(grep '^export SKYTALE_API_URL=' "$work_dir/api.out")"

.venv/bin/python - "$SKYTALE_API_URL" "$SKYTALE_API_KEY" <<'PY'
import json
import sys
import urllib.request

url, key = sys.argv[1], sys.argv[2]
request = urllib.request.Request(
    f"{url}/v1/channels",
    data=json.dumps({"name": "myorg/team/general"}).encode(),
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=10) as response:
    assert response.status == 201, response.status
PY

log "against $SKYTALE_API_URL/v1/openapi.json for ${seconds} s"
status=0
# Run from a directory under target/, where schemathesis and hypothesis keep their caches (`st replay ID` works
# from there). The key stays out of the output: schemathesis filters the Authorization header in what it prints.
run_dir="${CARGO_TARGET_DIR:-$repo_root/target}/schemathesis"
mkdir -p "$run_dir"
(cd "$run_dir" && "$repo_root/.venv/bin/schemathesis" --config-file "$repo_root/scripts/schemathesis.toml" \
    run "$SKYTALE_API_URL/v1/openapi.json" --header "Authorization: Bearer $SKYTALE_API_KEY" --checks all \
    --max-time "$seconds" --workers 1 --request-timeout 10 --generation-database none --no-color) \
    >"$work_dir/run.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    cat "$work_dir/run.log" >&2
    echo "schemathesis.sh: failed (exit $status); the API's log:" >&2
    tail -n 50 "$work_dir/api.log" >&2
    exit 1
fi
# The warnings (operations that rarely got past validation, say) and the summary.
if grep -q '= WARNINGS =' "$work_dir/run.log"; then
    sed -n '/= WARNINGS =/,$p' "$work_dir/run.log" >&2
else
    sed -n '/= SUMMARY =/,$p' "$work_dir/run.log" >&2
fi
if grep -q '^thread .* panicked' "$work_dir/api.log"; then
    echo "schemathesis.sh: the API panicked:" >&2
    grep -A5 '^thread .* panicked' "$work_dir/api.log" >&2
    exit 1
fi
