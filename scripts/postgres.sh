#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the API tests and prints the line that points the tests at it:
#
#   eval "$(scripts/postgres.sh)"          # sets SKYTALE_TEST_POSTGRES_URL
#   SKYTALE_REQUIRE_POSTGRES=1 cargo test -p skytale-api
#
# The cluster lives in a fresh temp dir, listens on 127.0.0.1 on a free port with trust auth (loopback only), and
# runs as an unprivileged user (PostgreSQL refuses to run as root). PostgreSQL is installed with apt-get if no
# server binaries are found. Only the export line goes to stdout; progress and the stop command go to stderr.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin_dir="$(find_bin_dir)"
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/initdb" ]; then
    log "PostgreSQL server not found, installing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin_dir="$(find_bin_dir)"
fi
[ -x "$bin_dir/initdb" ] || { log "no initdb under /usr/lib/postgresql/*/bin"; exit 1; }

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cluster_dir="$(mktemp -d /tmp/skytale-pg.XXXXXX)"

# Runs a PostgreSQL binary as the unprivileged `postgres` user when we are root, as ourselves otherwise.
as_db_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown -R postgres "$cluster_dir"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

as_db_user "$bin_dir/initdb" -D "$cluster_dir/data" -U postgres -A trust --no-sync >"$cluster_dir/initdb.log" 2>&1 \
    || { cat "$cluster_dir/initdb.log" >&2; exit 1; }
as_db_user "$bin_dir/pg_ctl" -D "$cluster_dir/data" -l "$cluster_dir/server.log" -w \
    -o "-p $port -k $cluster_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2

log "cluster in $cluster_dir on port $port"
log "stop with: $( [ "$(id -u)" -eq 0 ] && echo 'runuser -u postgres -- ')$bin_dir/pg_ctl -D $cluster_dir/data stop && rm -rf $cluster_dir"
echo "export SKYTALE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
