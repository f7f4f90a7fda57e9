#!/usr/bin/env bash
# Source me: a PostgreSQL cluster of our own on 127.0.0.1, a test database, and the URL the tests use.
#
#   . .ci/postgres.sh        # exports ORCH_TEST_POSTGRES_URL and ORCH_TEST_POSTGRES_REQUIRED=1
#
# Installs the server from Debian packages when it is missing. The cluster lives in a temporary
# directory owned by the `postgres` user (initdb refuses to run as root) and listens on a free port
# on loopback only, so it never meets another server on the machine. It is stopped when the shell
# that sourced this script exits.

_pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

if ! _pg_bindir >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
ORCH_PG_BIN="$(_pg_bindir)"

_pg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ORCH_PG_DATA="$(mktemp -d /tmp/orch-pg.XXXXXX)"
chown postgres: "$ORCH_PG_DATA"
runuser -u postgres -- "$ORCH_PG_BIN/initdb" -D "$ORCH_PG_DATA/data" -U postgres -A trust -E UTF8 >/dev/null
runuser -u postgres -- "$ORCH_PG_BIN/pg_ctl" -D "$ORCH_PG_DATA/data" -l "$ORCH_PG_DATA/server.log" -w \
    -o "-h 127.0.0.1 -p $_pg_port -k $ORCH_PG_DATA -c fsync=off -c max_connections=300" start >/dev/null
runuser -u postgres -- "$ORCH_PG_BIN/psql" -h 127.0.0.1 -p "$_pg_port" -U postgres -q \
    -c "CREATE DATABASE orchestrator_test" >/dev/null
trap 'runuser -u postgres -- "$ORCH_PG_BIN/pg_ctl" -D "$ORCH_PG_DATA/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$ORCH_PG_DATA"' EXIT

export ORCH_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:$_pg_port/orchestrator_test"
# In CI the PostgreSQL tests must run: a missing server fails them instead of skipping them.
export ORCH_TEST_POSTGRES_REQUIRED=1
echo "PostgreSQL for the tests: $ORCH_TEST_POSTGRES_URL"
