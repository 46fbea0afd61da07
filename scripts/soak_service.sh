#!/usr/bin/env bash
# Run the service test files N times in a row while two busy-loop processes keep both cores
# busy (issue 11: "the service test files pass 10 times in a row under load").
#
#   bash scripts/soak_service.sh [RUNS] [LOG]      # defaults: 10 runs, /tmp/sigscore-soak.log
#
# Stops at the first failing run. Logs, per run: start/end time, wall seconds, load average
# before and after, and pytest's summary line. The loader is started here in its own process
# group and stopped here by that group id only; PostgreSQL is the throwaway one from
# scripts/start_postgres.sh, stopped when this shell exits.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
log=${2:-/tmp/sigscore-soak.log}
py=.venv/bin/python

# The loader: two processes spinning for the whole soak, in one new process group.
setsid python3 -c '
import multiprocessing as mp
def spin():
    while True:
        pass
if __name__ == "__main__":
    ps = [mp.Process(target=spin) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
' &
loader=$!
stop_loader() { kill -TERM -- "-$loader" 2>/dev/null; wait "$loader" 2>/dev/null; }
trap stop_loader EXIT

if [ -x scripts/start_postgres.sh ]; then
  eval "$(bash scripts/start_postgres.sh)"
fi

{
  echo "# soak: $runs runs of tests/service, commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
  echo "# machine: $(nproc) cores, $(python3 -c 'import platform; print(platform.platform())')"
  echo "# loader: 2 busy-loop processes (process group $loader) for the whole soak"
  echo "# postgres: ${SIGSCORE_TEST_DATABASE_URL:+yes}${SIGSCORE_TEST_DATABASE_URL:-no (PostgreSQL tests skip)}"
} >"$log"

status=0
for i in $(seq 1 "$runs"); do
  t0=$(date +%s)
  la0=$(cut -d' ' -f1-3 /proc/loadavg)
  out=$("$py" -m pytest -q -p no:cacheprovider tests/service 2>&1)
  rc=$?
  t1=$(date +%s)
  la1=$(cut -d' ' -f1-3 /proc/loadavg)
  summary=$(printf '%s\n' "$out" | grep -E '(passed|failed|error)' | tail -1)
  echo "run $i: rc=$rc wall=$((t1 - t0))s load before=[$la0] after=[$la1] :: $summary" >>"$log"
  if [ "$rc" -ne 0 ]; then
    printf '%s\n' "$out" | tail -80 >>"$log"
    status=$rc
    break
  fi
done
echo "# done: status=$status" >>"$log"
exit "$status"
