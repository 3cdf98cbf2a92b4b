#!/usr/bin/env bash
# Starts Skytale's cluster topology on loopback (docs/deploy.md): 3 NATS servers with JetStream holding the log
# stream in 3 replicas, 2 relays on that log, and 2 API instances on one PostgreSQL with one signing key. Prints the
# lines that point clients at it on stdout, then runs until SIGINT or SIGTERM and stops everything:
#
#   scripts/cluster.sh > cluster.env &      # or in a terminal of its own
#   . cluster.env && .venv/bin/python examples/full_example.py
#
# SKYTALE_RELAY lists both relays (clients move to the other when one goes), SKYTALE_API_URL is the first API
# instance and SKYTALE_ALT_API_URL the second, SKYTALE_API_KEY a key of org `myorg`. Needs what scripts/setup.sh
# installs (.venv with skytale and nats-server); PostgreSQL comes from scripts/postgres.sh. Everything listens on
# 127.0.0.1 and lives in a temporary directory, removed at the end. The relays run with auth on, verifying tokens
# with the APIs' signing key file and following each channel's MLS group from the JetStream log (docs/relay.md,
# "The JetStream log").
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { echo "cluster.sh: $*" >&2; }

skytale=.venv/bin/skytale
nats_server=.venv/bin/nats-server
for binary in "$skytale" "$nats_server"; do
    [ -x "$binary" ] || { log "$binary not found: run scripts/setup.sh first"; exit 1; }
done

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir="$(mktemp -d -t skytale-cluster.XXXXXX)"
pids=()
postgres_stop=""
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$postgres_stop" ]; then
        eval "$postgres_stop" >/dev/null 2>&1 || log "could not stop PostgreSQL: $postgres_stop"
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Starts a server that prints `export NAME=VALUE` once it listens; sets $announced to VALUE.
start_announcing() {
    local name="$1" logfile="$2"
    shift 2
    mkfifo "$dir/announce"
    "$@" >"$dir/announce" 2>"$logfile" &
    pids+=($!)
    exec 3<"$dir/announce"
    announced=""
    local line
    while IFS= read -r line <&3; do
        case "$line" in
            "export $name="*) announced="${line#"export $name="}"; break ;;
        esac
    done
    # Keep reading what it prints, so it never blocks on a full pipe.
    cat <&3 >/dev/null &
    pids+=($!)
    exec 3<&-
    rm -f "$dir/announce"
    if [ -z "$announced" ]; then
        log "$1 exited before it listened; its log:"
        cat "$logfile" >&2
        exit 1
    fi
}

# NATS: three servers, routes between all, JetStream on; ready once each answers /healthz (JetStream current).
nats_urls=()
monitor_ports=()
route_ports=()
client_ports=()
for i in 0 1 2; do
    client_ports+=("$(free_port)")
    route_ports+=("$(free_port)")
    monitor_ports+=("$(free_port)")
done
routes="nats://127.0.0.1:${route_ports[0]},nats://127.0.0.1:${route_ports[1]},nats://127.0.0.1:${route_ports[2]}"
for i in 0 1 2; do
    "$nats_server" --server_name "n$i" --addr 127.0.0.1 --port "${client_ports[$i]}" --http_port "${monitor_ports[$i]}" \
        --jetstream --store_dir "$dir/nats$i" --cluster_name skytale --cluster "nats://127.0.0.1:${route_ports[$i]}" \
        --routes "$routes" >"$dir/nats$i.log" 2>&1 &
    pids+=($!)
    nats_urls+=("nats://127.0.0.1:${client_ports[$i]}")
done
store="$(IFS=,; echo "${nats_urls[*]}")"
for port in "${monitor_ports[@]}"; do
    for _ in $(seq 300); do
        python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2)" \
            2>/dev/null && break
        sleep 0.1
    done || true
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2)" \
        2>/dev/null || { log "NATS did not become ready; logs in $dir/nats*.log"; cat "$dir"/nats*.log >&2; exit 1; }
done
log "NATS: $store (JetStream, R3)"

# PostgreSQL, for both API instances.
postgres_env="$(scripts/postgres.sh 2>"$dir/postgres.log")" || { cat "$dir/postgres.log" >&2; exit 1; }
postgres_stop="$(sed -n 's/^postgres.sh: stop with: //p' "$dir/postgres.log")"
database_url="${postgres_env#export SKYTALE_TEST_POSTGRES_URL=}"
log "PostgreSQL: $database_url"

# Two API instances: the first creates the signing key file, the second reads the same one, so every token
# verifies with either instance's key set.
for i in 0 1; do
    start_announcing SKYTALE_API_URL "$dir/api$i.log" \
        "$skytale" api --listen 127.0.0.1:0 --data-dir "$dir/api$i" --database-url "$database_url" \
        --key-file "$dir/api-signing-key.pem"
    api_urls[$i]="$announced"
done
log "API: ${api_urls[0]} ${api_urls[1]}"
api_key="$("$skytale" keys create --org myorg --database-url "$database_url" | sed -n 's/^export SKYTALE_API_KEY=//p')"

# Two relays on the one JetStream log, verifying the APIs' tokens with their signing key file.
for i in 0 1; do
    start_announcing SKYTALE_RELAY "$dir/relay$i.log" \
        "$skytale" relay --listen 127.0.0.1:0 --auth jwt --jwt-key-file "$dir/api-signing-key.pem" \
        --store "$store" --nats-replicas 3
    relay_urls[$i]="$announced"
done
log "relays: ${relay_urls[0]} ${relay_urls[1]} (logs in $dir)"

echo "export SKYTALE_RELAY=${relay_urls[0]},${relay_urls[1]}"
echo "export SKYTALE_API_URL=${api_urls[0]}"
echo "export SKYTALE_ALT_API_URL=${api_urls[1]}"
echo "export SKYTALE_API_KEY=$api_key"
log "running; stop with Ctrl-C or SIGTERM"
wait "${pids[0]}"
