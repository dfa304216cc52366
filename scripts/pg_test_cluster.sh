#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on 127.0.0.1 for the test suite (idempotent).
#
#   eval "$(bash scripts/pg_test_cluster.sh start)"   # prints `export BANKING_TEST_POSTGRES_URL=...`
#   bash scripts/pg_test_cluster.sh stop                # stops it and deletes its data
#
# Installs Debian's `postgresql` with apt-get when no server binaries are found (root only).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
# Data in $BANKING_PG_DIR (default /tmp/banking-pg-<port>), port $BANKING_PG_PORT (default 5433),
# trust authentication on loopback only, fsync off: for tests, never for real data.
set -euo pipefail

PORT="${BANKING_PG_PORT:-5433}"
DIR="${BANKING_PG_DIR:-/tmp/banking-pg-$PORT}"
DB="${BANKING_PG_DB:-banking_test}"

pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    return 1
}

BIN="$(pg_bindir || true)"
if [ -z "$BIN" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "no PostgreSQL server found and not root: apt-get install postgresql first" >&2
        exit 1
    fi
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2
    BIN="$(pg_bindir)"
fi

as_owner() {  # run a server command as a non-root user (postgres refuses root)
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "${1:-start}" in
start)
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2
    fi
    if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
        as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
    fi
    echo "export BANKING_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
    ;;
stop)
    if [ -f "$DIR/data/PG_VERSION" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"  # throw-away: the next start initialises a fresh cluster
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
