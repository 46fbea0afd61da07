#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the service tests, on 127.0.0.1 and a free port,
# in a temporary directory, as the `postgres` user (tests may run as root). On success prints
#   export SIGSCORE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/sigscore_test
# on stdout (use: eval "$(bash scripts/start_postgres.sh)"). When PostgreSQL is not installed
# or does not start, prints nothing on stdout and exits 0 so the tests skip with a reason.
# The server stops itself when the parent shell (the test run) exits, or: pg_ctl -D DIR stop.
set -uo pipefail

say() { echo "start_postgres: $*" >&2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  say "PostgreSQL not installed (apt-get install postgresql); PostgreSQL tests will skip"
  exit 0
fi

run_as=()
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    say "no 'postgres' user; PostgreSQL tests will skip"
    exit 0
  fi
  run_as=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/sigscore-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"

if ! "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1; then
  say "initdb failed (see $dir/initdb.log); PostgreSQL tests will skip"
  exit 0
fi
if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" start >/dev/null 2>&1; then
  say "the server did not start (see $dir/server.log); PostgreSQL tests will skip"
  exit 0
fi
if ! "${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres sigscore_test >/dev/null 2>&1; then
  say "createdb failed; PostgreSQL tests will skip"
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1
  exit 0
fi

# Stop the server when the shell that eval'ed us (the test run) exits. Inside "$(...)" our
# parent may be a forked subshell (same command line as its own parent): watch that one.
parent=${SIGSCORE_PG_WATCH_PID:-$PPID}
grand=$(ps -o ppid= -p "$parent" 2>/dev/null | tr -d ' ')
if [ -n "$grand" ] && [ "$grand" != 1 ] && \
   cmp -s "/proc/$parent/cmdline" "/proc/$grand/cmdline" 2>/dev/null; then
  parent=$grand
fi
( while kill -0 "$parent" 2>/dev/null; do sleep 2; done
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1
  rm -rf "$dir" ) >/dev/null 2>&1 </dev/null &
disown 2>/dev/null || true

say "PostgreSQL on 127.0.0.1:$port (data in $dir)"
echo "export SIGSCORE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$port/sigscore_test"
