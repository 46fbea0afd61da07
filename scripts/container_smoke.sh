#!/usr/bin/env bash
# Container smoke test: build the image from ./Dockerfile with buildah (no Docker daemon
# needed), start the service in it, wait for /healthz, score the bundled example through
# POST /v1/score and compare the numbers with the library's, check that the server runs as a
# non-root uid, then stop ONLY what this script started (its own process group, by id) and
# remove the images it built (keep them with SIGSCORE_KEEP_IMAGE_CACHE=1).
# The base image is made locally with debootstrap from Debian's archive (no image registry
# is reachable here), then used as BASE. Exit 77 = cannot run here (not root / no buildah).
# Prints "smoke: figures build_s=... image_mb=... first_healthy_s=..." for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null && command -v debootstrap >/dev/null || { echo "buildah/debootstrap not installed" >&2; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root for buildah (chroot isolation)" >&2; exit 77; }

export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
PYTHON=${PYTHON:-python3}
BASE=localhost/sigscore-base:bookworm
IMAGE=localhost/sigscore:smoke-$$
PORT=${SIGSCORE_SMOKE_PORT:-$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
work=$(mktemp -d)
ctr=""
server_pgid=""
built_base=0
cleanup() {
  if [ -n "$server_pgid" ]; then
    # the server and its workers: the process group this script made for them (setsid)
    kill -TERM -- "-$server_pgid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 -- "-$server_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server_pgid" 2>/dev/null || true
  fi
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  if [ "${SIGSCORE_KEEP_IMAGE_CACHE:-0}" != 1 ]; then
    buildah rmi "$IMAGE" >/dev/null 2>&1 || true
    [ "$built_base" = 1 ] && buildah rmi "$BASE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "smoke: building base image $BASE with debootstrap (bookworm, python3)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # what Debian's slim images leave out too: the package cache and lists (apt-get update
  # fetches them again where needed), documentation, manual pages and translations
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/usr/share/doc/* \
    "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
  c=$(buildah from scratch)
  buildah copy "$c" "$work/rootfs" / >/dev/null
  buildah commit -q "$c" "$BASE" >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$work/rootfs"
  built_base=1
fi

# Behind a TLS-intercepting proxy pip needs the host's CA bundle: mount it for the build.
ca_args=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca_args=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/host-ca.crt)
fi
echo "smoke: building $IMAGE"
t0=$(date +%s.%N)
buildah bud --network host --layers=false "${ca_args[@]}" --build-arg "BASE=$BASE" \
  -t "$IMAGE" -f Dockerfile . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
build_s=$(echo "$(date +%s.%N) - $t0" | bc)
image_size=$(buildah images --noheading --format '{{.Size}}' "$IMAGE" | head -1 | tr -d ' ')
labels=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.title"}}' "$IMAGE")
[ "$labels" = sigscore ] || { echo "smoke: OCI title label missing" >&2; exit 1; }

ctr=$(buildah from "$IMAGE")
echo "smoke: sigscore --version in the container"
buildah run --network host "$ctr" -- sigscore --version
# what the image's size is made of (MB): the venv, and its largest packages
buildah run "$ctr" -- sh -c 'du -sm /opt/sigscore; du -sm /opt/sigscore/lib/python3*/site-packages/* | sort -n | tail -6' \
  | tr '\t' ' ' | sed 's|/opt/sigscore/lib/python3[.0-9]*/site-packages/||; s|^|smoke: size |'

echo "smoke: starting the service on 127.0.0.1:$PORT"
t1=$(date +%s.%N)
# its own session: the cleanup stops exactly this group (buildah run with chroot isolation
# leaves the server a host process)
setsid buildah run --network host --env SIGSCORE_DATA_DIR=/tmp/sigscore "$ctr" -- \
  sigscore serve --host 127.0.0.1 --port "$PORT" >"$work/serve.log" 2>&1 &
server_pgid=$!
"$PYTHON" - "$PORT" "$server_pgid" "$t1" <<'PY' || { tail -30 "$work/serve.log" >&2; exit 1; }
import json, os, subprocess, sys, time, urllib.request
port, pgid, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
base = f"http://127.0.0.1:{port}"
deadline = time.time() + 180
while True:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
            assert r.status == 200
            break
    except Exception:
        if time.time() > deadline:
            raise SystemExit("service did not become healthy within 180 s")
        time.sleep(0.2)
print(f"smoke: /healthz ok after {time.time() - t1:.1f} s")
# scoring needs the workers: wait for readiness, then score the bundled example
while True:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            if r.status == 200:
                break
    except Exception:
        if time.time() > deadline:
            raise SystemExit("service not ready within 180 s")
        time.sleep(0.2)
import pandas as pd
import sigscore
from sigscore.scoring import score

example = sigscore.example_path()
boundary = "sigscoresmoke"
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"index\"\r\n\r\nfalse\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{example.name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n").encode() + example.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
req = urllib.request.Request(base + "/v1/score", data=body, method="POST",
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
with urllib.request.urlopen(req, timeout=300) as r:
    doc = json.load(r)
lib = score(pd.read_csv(example, sep="\t", index_col=0), progress=False)
rows = {row["sample"]: row for row in doc["rows"]}
assert len(rows) == lib.shape[0], (len(rows), lib.shape)
worst = 0.0
for sample, values in lib.iterrows():
    for col, v in values.items():
        got = rows[str(sample)][str(col)]
        if v != v:
            assert got is None, (sample, col, got)
        else:
            worst = max(worst, abs(float(got) - float(v)))
assert worst <= 1e-9, worst
print(f"smoke: POST /v1/score matches the library ({lib.size} values, max |diff| {worst:.1e})")
# the server (the process listening on the port) and its workers: uid != 0
uids = set()
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        if os.getpgid(int(pid)) != pgid:
            continue
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        continue
    if "sigscore" in cmd and "buildah" not in cmd:
        uids.add(int(status.split("Uid:")[1].split()[0]))
assert uids and 0 not in uids, uids
print(f"smoke: server processes run as uid {sorted(uids)}")
PY
echo "smoke: figures build_s=$build_s image_size=$image_size"
echo "smoke: OK"
