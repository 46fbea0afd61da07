#!/usr/bin/env bash
# The test command: set everything up on a fresh machine, start the services the tests
# use (PostgreSQL on 127.0.0.1), run the whole suite. Exit status is pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/start_postgres.sh ]; then
  eval "$(bash scripts/start_postgres.sh)"   # exports SIGSCORE_TEST_DATABASE_URL
fi
.venv/bin/python -m pytest -q "$@"
