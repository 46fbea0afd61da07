"""Limits and security on a live server: upload cap (413, bounded RSS), decompression bombs,
API keys, 50 concurrent clients (p50/p95 recorded in docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import statistics
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

import sigscore
from _support import REPO_ROOT
from sigscore.io import read_matrix

psutil = pytest.importorskip("psutil")

MiB = 1024**2


def _tree_rss(pid: int) -> int:
    """RSS of the server process (the HTTP side; workers are separate processes)."""
    return int(psutil.Process(pid).memory_info().rss)


def _chunks(total: int, size: int = MiB):
    block = b"GENE,1.0\n" * (size // 9)
    sent = 0
    while sent < total:
        part = block[: min(len(block), total - sent)]
        sent += len(part)
        yield part


def test_upload_over_cap_413_bounded_memory(make_server) -> None:
    cap = 64 * MiB
    srv = make_server({"SIGSCORE_MAX_UPLOAD_BYTES": str(cap)}).start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        c.get("/v1/methods")  # warm the request path before measuring
        before = _tree_rss(srv.pid)
        # 1) honest Content-Length over the cap: refused before the body is read
        body = b"x" * (cap + 1)
        r = c.post("/v1/score", content=body,
                   headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
        assert r.status_code == 413, r.text
        del body
        # 2) chunked upload (no length): refused once the cap is passed while streaming
        boundary = "sigscoreboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()  # fmt: skip

        def gen():
            yield head
            yield from _chunks(3 * cap)
            yield f"\r\n--{boundary}--\r\n".encode()

        try:
            r = c.post("/v1/score", content=gen(),
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
            status = r.status_code
        except (httpx.RemoteProtocolError, httpx.WriteError):
            status = 413  # the server may close the connection once it has answered
        after = _tree_rss(srv.pid)
        assert status == 413
        growth = (after - before) / MiB
        print(f"RSS growth on 413 uploads: {growth:.1f} MiB (cap {cap / MiB:.0f} MiB, "
              f"sent up to {3 * cap / MiB:.0f} MiB)")  # fmt: skip
        assert growth < 40, growth
        assert not any((srv.data_dir / "uploads").iterdir())  # partial upload cleaned up
        assert c.get("/readyz").status_code == 200


def test_gzip_and_zip_bombs_refused(server) -> None:
    # 1 GiB of zeros gzipped (~1 MiB): refused while streaming, long before it expands
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
        zeros = b"0" * (16 * MiB)
        for _ in range(64):
            gz.write(zeros)
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("matrix.csv", b"0" * (256 * MiB))
    with httpx.Client(base_url=server.url, timeout=120) as c:
        for name, data in (("bomb.csv.gz", raw.getvalue()), ("bomb.zip", z.getvalue())):
            r = c.post("/v1/score", files={"file": (name, data)})
            assert r.status_code == 413, r.text
            assert r.json()["type"].endswith("decompression-bomb")
            assert "bomb" in r.json()["detail"]


def test_api_keys(make_server) -> None:
    srv = make_server({"SIGSCORE_API_KEYS": "alpha-key, beta-key"}).start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/healthz").status_code == 200  # stays open
        assert c.get("/readyz").status_code == 200
        r = c.get("/v1/methods")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert c.get("/v1/methods", headers={"X-API-Key": "wrong"}).status_code == 403
        assert c.get("/v1/methods", headers={"X-API-Key": "beta-key"}).status_code == 200
        assert (
            c.get("/v1/methods", headers={"Authorization": "Bearer alpha-key"}).status_code == 200
        )
        path = sigscore.example_path()
        r = c.post("/v1/jobs", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 401
    # the keys never reach the log
    assert "alpha-key" not in srv.log.read_text()


def _record_benchmark(lines: list[str]) -> None:
    doc = REPO_ROOT / "docs" / "benchmarks.md"
    section = "## HTTP service"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    body = "\n".join([section, "", *lines, ""])
    if section in text:
        start = text.index(section)
        nxt = text.find("\n## ", start + len(section))
        text = text[:start] + body + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    doc.write_text(text if text.endswith("\n") else text + "\n")


def test_fifty_concurrent_clients(server) -> None:
    expr = read_matrix(sigscore.example_path())
    X = np.asarray(expr.X.todense() if hasattr(expr.X, "todense") else expr.X)[:4, :300]
    body = {"matrix": {"samples": list(expr.obs_names[:4]), "genes": list(expr.var_names[:300]),
                       "values": X.tolist()}, "index": False}  # fmt: skip
    lat: dict[str, list[float]] = {"score": [], "get": []}
    errors: list[str] = []

    async def client(i: int, ac: httpx.AsyncClient) -> None:
        for route in ("/v1/signatures", "/v1/methods"):
            t0 = time.perf_counter()
            r = await ac.get(route)
            lat["get"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"{route}: {r.status_code}")
        t0 = time.perf_counter()
        r = await ac.post("/v1/score", json=body)
        lat["score"].append(time.perf_counter() - t0)
        if r.status_code != 200:
            errors.append(f"score: {r.status_code} {r.text[:200]}")

    async def main() -> float:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as ac:
            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(client(i, ac) for i in range(50))), 240)
            return time.perf_counter() - t0

    wall = asyncio.run(main())
    assert errors == []
    assert len(lat["score"]) == 50 and len(lat["get"]) == 100

    def pct(v: list[float], q: float) -> float:
        return float(np.percentile(v, q)) * 1000

    lines = [
        "50 concurrent clients (httpx async, one connection each, loopback) against one "
        "`sigscore serve` process with 2 worker processes, on the development machine "
        f"({os.cpu_count()} cores). Each client: GET /v1/signatures, GET /v1/methods, then "
        "POST /v1/score with an inline 4 × 300 JSON matrix (singscore, all modules). "
        "Measured by `tests/service/test_service_limits.py::test_fifty_concurrent_clients`.",
        "",
        "| request | n | p50 (ms) | p95 (ms) | errors |",
        "|---|---|---|---|---|",
        f"| GET (signatures, methods) | {len(lat['get'])} | {pct(lat['get'], 50):.0f} | "
        f"{pct(lat['get'], 95):.0f} | 0 |",
        f"| POST /v1/score (sync) | {len(lat['score'])} | {pct(lat['score'], 50):.0f} | "
        f"{pct(lat['score'], 95):.0f} | 0 |",
        "",
        f"Wall time for all 150 requests: {wall:.1f} s; mean score latency "
        f"{statistics.mean(lat['score']) * 1000:.0f} ms (scoring runs in the worker pool, "
        "so score requests queue behind each other and share the 2 cores with the GETs).",
    ]
    print("\n".join(lines))
    if os.environ.get("SIGSCORE_WRITE_BENCHMARKS") == "1":  # refresh docs on request only
        _record_benchmark(lines)


def test_upload_dir_cleanup_after_sync(server) -> None:
    path = sigscore.example_path()
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = c.post("/v1/score", files={"file": (path.name, path.read_bytes())},
                   data={"index": "false"})  # fmt: skip
        assert r.status_code == 200
        bad = c.post("/v1/score", files={"file": ("x.csv", b"a,b\n1,2\n")})
        assert bad.status_code == 400
    leftovers = list((Path(server.data_dir) / "uploads").iterdir())
    assert leftovers == []
