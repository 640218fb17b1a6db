#!/usr/bin/env bash
# Make a local PostgreSQL available to the test suite.
#
# Starts the Debian cluster when it is down (as root: pg_ctlcluster), then
# creates the role (CREATEDB, CREATEROLE) and database the tests use.  Never fails: when no
# PostgreSQL can be had it says why, and the PostgreSQL tests skip (or fail
# under CI=true, see tests/conftest.py).
set -u
ROLE=${NOIM_TEST_PG_ROLE:-noim_test}
PASS=${NOIM_TEST_PG_PASSWORD:-noim_test}
DB=${NOIM_TEST_PG_DATABASE:-noim_test}
PORT=${NOIM_TEST_PG_PORT:-5432}

say() { echo "pg-test-setup: $*"; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  say "no Debian PostgreSQL tools (pg_lsclusters) here; PostgreSQL tests will skip unless NOIM_TEST_PG_URL points to a server"
  exit 0
fi

cluster=$(pg_lsclusters --no-header 2>/dev/null | awk '{print $1" "$2" "$4; exit}')
if [ -z "$cluster" ]; then
  say "no PostgreSQL cluster is installed; PostgreSQL tests will skip"
  exit 0
fi
read -r version name status <<<"$cluster"
if [ "$status" != "online" ]; then
  if [ "$(id -u)" = "0" ]; then
    say "starting PostgreSQL $version/$name"
    pg_ctlcluster "$version" "$name" start || { say "could not start the cluster"; exit 0; }
  else
    say "PostgreSQL $version/$name is down and only root can start it here; PostgreSQL tests will skip"
    exit 0
  fi
fi

as_postgres() {
  if [ "$(id -u)" = "0" ]; then su postgres -c "$*"; else sudo -n -u postgres sh -c "$*"; fi
}

for _ in 1 2 3 4 5 6 7 8 9 10; do
  as_postgres "psql -p $PORT -Atqc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done

if ! as_postgres "psql -p $PORT -Atqc \"select 1 from pg_roles where rolname = '$ROLE'\"" | grep -q 1; then
  as_postgres "psql -p $PORT -qc \"create role $ROLE login password '$PASS' createdb\"" || { say "could not create role $ROLE"; exit 0; }
fi
# CREATEROLE: tests/test_db_roles.py creates (and drops) the roles `noim db roles` sets up
as_postgres "psql -p $PORT -qc 'alter role $ROLE createrole'" >/dev/null || say "could not give $ROLE CREATEROLE; the role tests will fail"
if ! as_postgres "psql -p $PORT -Atqc \"select 1 from pg_database where datname = '$DB'\"" | grep -q 1; then
  as_postgres "psql -p $PORT -qc 'create database $DB owner $ROLE'" || { say "could not create database $DB"; exit 0; }
fi
say "PostgreSQL ready: postgresql://$ROLE@127.0.0.1:$PORT/$DB"
