#!/usr/bin/env bash
# Set up sigscore from scratch on a Debian machine: system packages, a virtual environment,
# and the package with all extras. Idempotent: re-running only installs what is missing.
#   bash scripts/setup.sh            # everything (tests need R+GSVA, Chromium, PostgreSQL)
#   bash scripts/setup.sh --minimal  # Python only (enough for the library, CLI and demo)
set -euo pipefail
cd "$(dirname "$0")/.."

minimal=0
[ "${1:-}" = "--minimal" ] && minimal=1

if [ "$minimal" = 0 ]; then
  # R + GSVA: numeric parity tests; chromium: report rendering; postgresql: job store tests;
  # buildah/runc/debootstrap: the container smoke test; nodejs/npm: axe-core for the page's
  # accessibility checks.
  pkgs=(r-base-core r-bioc-gsva chromium postgresql buildah runc debootstrap nodejs)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  # an npm that came with node (not the Debian package) is used as it is
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing Debian packages: ${missing[*]}"
      # retried: a transient mirror error or a busy dpkg lock should not fail a CI run
      for attempt in 1 2 3; do
        if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
          break
        fi
        [ "$attempt" = 3 ] && { echo "setup: apt-get failed 3 times" >&2; exit 1; }
        echo "setup: apt-get failed (attempt $attempt); retrying in 20 s" >&2
        sleep 20
      done
    else
      echo "setup: not root; skipping Debian packages ${missing[*]} (tests needing them will skip)" >&2
    fi
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$minimal" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[scanpy]"
else
  .venv/bin/python -m pip install -q -e ".[all,test]"
fi
if [ "$minimal" = 0 ] && command -v npm >/dev/null 2>&1; then
  # axe-core (pinned by the lock file) for tests/service/test_web_browser.py; retried like apt
  for attempt in 1 2 3; do
    if (cd tests/service/axe && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
      break
    fi
    [ "$attempt" = 3 ] && { echo "setup: npm ci failed 3 times" >&2; exit 1; }
    echo "setup: npm ci failed (attempt $attempt); retrying in 20 s" >&2
    sleep 20
  done
fi
echo "setup: done ($(.venv/bin/python -c 'import sigscore; print("sigscore", sigscore.__version__)'))"
