#!/usr/bin/env bash
# Builds everything, starts a local relay on a free port, runs examples/quickstart.py against it, stops it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh

work_dir="$(mktemp -d -t skytale-quickstart.XXXXXX)"
relay_pid=""
cleanup() {
    if [ -n "$relay_pid" ]; then
        kill "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

# The relay prints `export SKYTALE_RELAY=...` on stdout once it listens; wait for that line.
mkfifo "$work_dir/relay.out"
.venv/bin/skytale relay --listen 127.0.0.1:0 --data-dir "$work_dir/relay" \
    >"$work_dir/relay.out" 2>"$work_dir/relay.log" &
relay_pid=$!
exec 3<"$work_dir/relay.out"
relay_line=""
while IFS= read -r line <&3; do
    case "$line" in
        "export SKYTALE_RELAY="*) relay_line="$line"; break ;;
    esac
done
if [ -z "$relay_line" ]; then
    echo "quickstart: the relay exited before listening; its log:" >&2
    cat "$work_dir/relay.log" >&2
    exit 1
fi
# Keep draining the relay's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &
eval "$relay_line"
export SKYTALE_RELAY
echo "relay listening at $SKYTALE_RELAY" >&2

SKYTALE_QUICKSTART_DIR="$work_dir/agents" .venv/bin/python examples/quickstart.py
