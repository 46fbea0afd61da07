#!/usr/bin/env bash
# Container smoke test: build the image from ./Dockerfile with buildah (no Docker daemon
# needed), start it, and check that the CLI and the HTTP service answer.
# The base image is made locally with debootstrap from Debian's archive (no image registry
# is reachable here), then used as BASE. Exit 77 = cannot run here (not root / no buildah).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null && command -v debootstrap >/dev/null || { echo "buildah/debootstrap not installed" >&2; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root for buildah (chroot isolation)" >&2; exit 77; }

export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
BASE=localhost/sigscore-base:bookworm
IMAGE=localhost/sigscore:smoke
PORT=${SIGSCORE_SMOKE_PORT:-18765}
work=$(mktemp -d)
ctr=""
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  # buildah run (chroot isolation) leaves the server as a host process: stop it by its command line
  pkill -f "sigscore serve --host 127.0.0.1 --port $PORT" 2>/dev/null || true
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "smoke: building base image $BASE with debootstrap (bookworm, python3)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  c=$(buildah from scratch)
  buildah copy "$c" "$work/rootfs" / >/dev/null
  buildah commit -q "$c" "$BASE" >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$work/rootfs"
fi

# Behind a TLS-intercepting proxy pip needs the host's CA bundle: mount it for the build.
ca_args=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca_args=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/host-ca.crt)
fi
echo "smoke: building $IMAGE"
buildah bud --network host --layers=false "${ca_args[@]}" --build-arg "BASE=$BASE" \
  -t "$IMAGE" -f Dockerfile . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }

ctr=$(buildah from "$IMAGE")
echo "smoke: sigscore --version in the container"
buildah run --network host "$ctr" -- sigscore --version

echo "smoke: starting the service on 127.0.0.1:$PORT"
buildah run --network host --env SIGSCORE_DATA_DIR=/tmp/sigscore "$ctr" -- \
  sigscore serve --host 127.0.0.1 --port "$PORT" >"$work/serve.log" 2>&1 &
server_pid=$!
python3 - "$PORT" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 90
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            assert r.status == 200
            break
    except Exception:
        if time.time() > deadline:
            raise SystemExit("service did not become healthy within 90 s")
        time.sleep(1)
with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/signatures", timeout=10) as r:
    body = json.load(r)
print("smoke: /healthz ok; /v1/signatures answered", type(body).__name__)
PY
echo "smoke: OK"
