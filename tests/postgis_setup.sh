#!/usr/bin/env bash
# Install Debian's PostgreSQL + PostGIS and start a throw-away test cluster on 127.0.0.1.
#
#   bash tests/postgis_setup.sh            # install (if needed), start, print the URL
#   bash tests/postgis_setup.sh stop       # stop the test cluster
#
# The cluster lives in $KPGEO_PG_DIR (default /tmp/kpgeo-pg), listens on 127.0.0.1 only,
# port $KPGEO_PG_PORT (default 55432), trusts local connections (a test server, no data
# worth a password) and holds the database "kpgeo_test" with the postgis extension.
# tests/test_store.py (PostGIS store) and tests/test_search.py (stac-fastapi-pgstac)
# connect to postgresql://kpgeo@127.0.0.1:$KPGEO_PG_PORT/kpgeo_test and skip, saying
# why, when nothing answers there. Needs root (apt-get, and runuser for the postgres
# user: initdb refuses to run as root). Idempotent: a running cluster is left running.
set -euo pipefail

PG_DIR="${KPGEO_PG_DIR:-/tmp/kpgeo-pg}"
PG_PORT="${KPGEO_PG_PORT:-55432}"
DB=kpgeo_test
ROLE=kpgeo

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bindir() {
    local v
    v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
    [ -n "$v" ] && echo "/usr/lib/postgresql/$v/bin"
}

if [ "${1:-}" = "stop" ]; then
    bin=$(pg_bindir)
    as_root runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop || true
    exit 0
fi

have_postgis() {
    ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1
}

if ! have_postgis || [ -z "$(pg_bindir)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends postgresql postgresql-postgis >/dev/null
fi
BIN=$(pg_bindir)

if as_root runuser -u postgres -- "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "PostGIS test cluster already running: postgresql://$ROLE@127.0.0.1:$PG_PORT/$DB"
    exit 0
fi

as_root mkdir -p "$PG_DIR"
as_root chown postgres:postgres "$PG_DIR"
if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    as_root runuser -u postgres -- "$BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi
as_root runuser -u postgres -- "$BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" start >/dev/null

psql_su() { as_root runuser -u postgres -- "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
    -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ -z "$(psql_su -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    psql_su -d postgres -c "CREATE ROLE $ROLE LOGIN SUPERUSER"
fi
if [ -z "$(psql_su -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql_su -d postgres -c "CREATE DATABASE $DB OWNER $ROLE"
fi
psql_su -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis"
echo "PostGIS test cluster running: postgresql://$ROLE@127.0.0.1:$PG_PORT/$DB"
