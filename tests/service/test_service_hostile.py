"""Hostile uploads against a live server: HDF5 files reaching outside, forged Parquet.

Each file of the hostile corpus (``scripts/make_hostile_corpus.py``) is refused with 400 by
``POST /v1/score`` and by ``POST /v1/jobs`` (checked at upload time, so no job is queued);
inside an archive it is refused by the reader in the worker (the job fails with status
400). The secret the corpus points at appears in no response, result file or log line.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from svc_live import Server, wait_job

from _support import load_script

hostile = load_script("make_hostile_corpus")
SECRET = hostile.DEFAULT_SECRET
NAMES = hostile.corpus_names()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile_svc")
    manifest = hostile.make_corpus(root / "corpus", root / "outside")
    return root / "corpus", manifest


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server logging at INFO (every request has its access line to scan)."""
    server = Server(tmp_path_factory.mktemp("svc_hostile"), {"SIGSCORE_LOG_LEVEL": "INFO"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _post(c: httpx.Client, route: str, name: str, data: bytes) -> httpx.Response:
    return c.post(route, files={"file": (name, data)}, data={"index": "false"})


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.text
    assert SECRET not in r.text
    return r.json()


@pytest.mark.parametrize("route", ["/v1/score", "/v1/jobs"])
def test_every_hostile_file_is_400(srv: Server, corpus, route: str) -> None:
    folder, manifest = corpus
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        for name in NAMES:
            doc = _problem(_post(c, route, name, (folder / name).read_bytes()), 400)
            assert doc["detail"].startswith(f"{name}: refused: object "), doc
            assert any(repr(o) in doc["detail"] for o in manifest[name]["objects"]), doc
            assert doc["object"] in manifest[name]["objects"], doc


def test_hostile_file_in_archive_refused_by_the_worker(srv: Server, corpus) -> None:
    folder, _ = corpus
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(folder / "external_storage__obs._index.h5ad", "data/cells.h5ad")
    payload = buf.getvalue()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        doc = _problem(_post(c, "/v1/score", "cells.zip", payload), 400)
        assert "'obs/_index' is a dataset with external storage" in doc["detail"], doc
        r = _post(c, "/v1/jobs", "cells.zip", payload)
        assert r.status_code == 202, r.text
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "failed" and info["error"]["status"] == 400, info
        assert "external storage" in info["error"]["detail"], info
        assert SECRET not in c.get(f"/v1/jobs/{info['id']}").text


def _forged_parquet(path: Path) -> bytes:
    """3 rows whose row group claims a million (the footer's last num_rows, 0x16 0x06)."""
    table = pa.table({"gene": ["TP53", "MYC", "GAPDH"], "s1": [1.0, 2.0, 3.0], "s2": [4.0, 5, 6]})
    pq.write_table(table, path)
    data = path.read_bytes()
    n = struct.unpack("<i", data[-8:-4])[0]
    footer = data[-8 - n : -8]
    i = footer.rfind(b"\x16\x06")
    footer = footer[:i] + b"\x16\x80\x89\x7a" + footer[i + 2 :]  # zigzag varint of 1e6
    return data[: -8 - n] + footer + struct.pack("<i", len(footer)) + b"PAR1"


def test_forged_parquet_is_400_with_one_log_line(srv: Server, tmp_path: Path) -> None:
    payload = _forged_parquet(tmp_path / "f.parquet")
    assert pq.ParquetFile(io.BytesIO(payload)).metadata.row_group(0).num_rows == 1_000_000
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        before = srv.log.read_text().splitlines()
        doc = _problem(_post(c, "/v1/score", "forged.parquet", payload), 400)
        assert "forged Parquet metadata" in doc["detail"], doc
        # the access line is written when the response is sent; wait for it by content
        rid = doc.get("request_id")
        new = _log_lines_after(srv, len(before), rid)
    assert len(new) == 1, new
    assert "panicked" not in srv.log.read_text()


def _log_lines_after(srv: Server, start: int, request_id: str | None) -> list[str]:
    """Log lines after ``start``, once the line of ``request_id`` is there (bounded wait)."""
    import time

    deadline = time.monotonic() + 30
    while True:
        lines = srv.log.read_text().splitlines()[start:]
        if request_id is None or any(request_id in ln for ln in lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line for request {request_id}: {lines}")
        time.sleep(0.05)


def test_secret_in_no_log_line_or_stored_file(srv: Server) -> None:
    """Runs last: nothing the server wrote (log, job store, results) holds the secret."""
    log = srv.log.read_text()
    assert log.count("request") >= 2 * len(NAMES), log[-2000:]  # the requests were logged
    assert SECRET not in log
    for p in srv.data_dir.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
