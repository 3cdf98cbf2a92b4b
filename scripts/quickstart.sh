#!/usr/bin/env bash
# Builds everything, starts `skytale dev` (relay + API, auth on) on free ports, runs examples/full_example.py
# against it with the three variables it prints, and stops it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh

work_dir="$(mktemp -d -t skytale-quickstart.XXXXXX)"
dev_pid=""
drain_pid=""
cleanup() {
    if [ -n "$dev_pid" ]; then
        kill "$dev_pid" 2>/dev/null || true
        wait "$dev_pid" 2>/dev/null || true
    fi
    if [ -n "$drain_pid" ]; then
        wait "$drain_pid" 2>/dev/null || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

# `skytale dev` prints its three export lines on stdout once both services listen, then keeps running.
mkfifo "$work_dir/dev.out"
.venv/bin/skytale dev --dir "$work_dir/stack" --relay-port 0 --api-port 0 \
    >"$work_dir/dev.out" 2>"$work_dir/dev.log" &
dev_pid=$!
exec 3<"$work_dir/dev.out"
exports=()
while [ "${#exports[@]}" -lt 3 ] && IFS= read -r line <&3; do
    case "$line" in
        "export SKYTALE_RELAY="* | "export SKYTALE_API_URL="* | "export SKYTALE_API_KEY="*) exports+=("$line") ;;
    esac
done
if [ "${#exports[@]}" -lt 3 ]; then
    echo "quickstart: skytale dev exited before printing its settings; its log:" >&2
    cat "$work_dir/dev.log" >&2
    exit 1
fi
# Keep draining its stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &
drain_pid=$!
exec 3<&-
for line in "${exports[@]}"; do
    eval "$line"
done
export SKYTALE_RELAY SKYTALE_API_URL SKYTALE_API_KEY
echo "skytale dev: relay $SKYTALE_RELAY, API $SKYTALE_API_URL" >&2

# The agents' default data_dirs (~/.skytale/<hex(identity)>) go with this run's stack.
HOME="$work_dir" .venv/bin/python examples/full_example.py
