#!/usr/bin/env bash
# Starts a throwaway standalone nats-server with JetStream for the relay's tests and prints the line that points
# them at it:
#
#   eval "$(scripts/nats.sh)"              # sets SKYTALE_TEST_STORE=nats://127.0.0.1:PORT
#   cargo test --release -p skytale-relay --test delivery
#
# The server is the .venv/bin/nats-server that scripts/setup.sh installs (or SKYTALE_NATS_SERVER), listens on
# 127.0.0.1 on a free port and keeps JetStream's files in a fresh temp dir. It is ready once it greets a client
# with JetStream on. Only the export line goes to stdout; progress and the stop command go to stderr.
set -euo pipefail

log() { echo "nats.sh: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${SKYTALE_NATS_SERVER:-$repo_root/.venv/bin/nats-server}"
[ -x "$binary" ] || { log "no nats-server at $binary: run scripts/setup.sh, or set SKYTALE_NATS_SERVER"; exit 1; }

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_dir="$(mktemp -d /tmp/skytale-nats.XXXXXX)"

"$binary" --addr 127.0.0.1 --port "$port" --jetstream --store_dir "$server_dir/store" \
    --pid "$server_dir/nats.pid" --log "$server_dir/server.log" </dev/null >/dev/null 2>&1 &
pid=$!

# Ready when the server's INFO greeting says JetStream is on: 100 tries, 0.1 s apart.
if ! python3 - "$port" <<'EOF'
import json, socket, sys, time

for _ in range(100):
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as conn:
            line = conn.makefile("rb").readline().decode()
            if line.startswith("INFO ") and json.loads(line[5:]).get("jetstream"):
                sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
then
    log "nats-server on port $port did not come up with JetStream within 10 s; its log:"
    cat "$server_dir/server.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -rf "$server_dir"
    exit 1
fi

log "nats-server (pid $pid) in $server_dir on port $port"
# The stop command waits up to 5 s for the server to exit before removing its files.
log "stop with: kill $pid; for _ in \$(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; rm -rf $server_dir"
echo "export SKYTALE_TEST_STORE=nats://127.0.0.1:$port"
