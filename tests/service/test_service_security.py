"""The service under abuse (issue 10, part C), against real uvicorn processes on 127.0.0.1.

Job ownership between API keys; synchronous requests sharing the job admission cap (held
deterministically: the pool's worker process is SIGSTOPped, so nothing admitted can finish
until the test lets it); synchronous limits whatever ``mode`` says; deeply nested JSON; no
server path in problems or results (every response of every service test is also checked by
the autouse hook in ``conftest.py``); CSV formula injection; native reader panics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import pickle
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from svc_live import Server, assert_no_server_path, wait_job

import sigscore
from sigscore.io import read_matrix
from sigscore_service.problems import PROBLEM_TYPE
from test_csv_injection import HOSTILE_MODULES, HOSTILE_SAMPLES, check_csv_text, hostile_matrix

psutil = pytest.importorskip("psutil")

EXAMPLE = sigscore.example_path()
KEY_A, KEY_B, KEY_ADMIN = "alpha-key-0001", "beta-key-0002", "admin-key-0003"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two ordinary keys and one admin key; INFO log (one access line per request)."""
    env = {"SIGSCORE_API_KEYS": f"{KEY_A}, {KEY_B}", "SIGSCORE_ADMIN_API_KEYS": KEY_ADMIN,
           "SIGSCORE_LOG_LEVEL": "INFO"}  # fmt: skip
    srv = Server(tmp_path_factory.mktemp("keyed"), env).start()
    try:
        yield srv
    finally:
        srv.stop()


def _client(srv: Server, key: str | None, bearer: bool = False) -> httpx.Client:
    headers = {} if key is None else (
        {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key})  # fmt: skip
    return httpx.Client(base_url=srv.url, timeout=120, headers=headers)


def _submit(c: httpx.Client, route: str = "/v1/jobs", **fields: str) -> httpx.Response:
    return c.post(route, files={"file": (EXAMPLE.name, EXAMPLE.read_bytes())},
                  data={"index": "false", **fields})  # fmt: skip


# --------------------------------------------------------------------------- ownership
def test_jobs_belong_to_the_key_that_created_them(keyed: Server) -> None:
    with (_client(keyed, KEY_A) as a, _client(keyed, KEY_B, bearer=True) as b,
          _client(keyed, KEY_ADMIN) as admin, _client(keyed, None) as anon):  # fmt: skip
        r = _submit(a)
        assert r.status_code == 202, r.text
        job_a = r.json()["id"]
        assert wait_job(a, job_a)["state"] == "done"
        unknown = b.get("/v1/jobs/" + "f" * 32).json()
        # key B: A's job does not exist (404 like an unknown id, not 403: no oracle)
        for r in (b.get(f"/v1/jobs/{job_a}"), b.get(f"/v1/jobs/{job_a}/result"),
                  b.get(f"/v1/jobs/{job_a}/result?format=csv"), b.delete(f"/v1/jobs/{job_a}")):  # fmt: skip
            assert r.status_code == 404, r.text
            assert r.json()["type"] == unknown["type"]
            assert r.json()["detail"] == unknown["detail"].replace("f" * 32, job_a)
        assert anon.get(f"/v1/jobs/{job_a}").status_code == 401
        # A still has it, whole (B's delete did nothing); the admin key sees it too
        assert a.get(f"/v1/jobs/{job_a}").json()["state"] == "done"
        assert a.get(f"/v1/jobs/{job_a}/result").status_code == 200
        assert admin.get(f"/v1/jobs/{job_a}").json()["id"] == job_a
        assert admin.get(f"/v1/jobs/{job_a}/result").json()["kind"] == "scores"
        # the other way round, and the admin may delete any job
        job_b = _submit(b).json()["id"]
        assert a.get(f"/v1/jobs/{job_b}").status_code == 404
        assert b.get(f"/v1/jobs/{job_b}").status_code == 200
        assert admin.delete(f"/v1/jobs/{job_b}").status_code == 204
        assert b.get(f"/v1/jobs/{job_b}").status_code == 404
        assert a.delete(f"/v1/jobs/{job_a}").status_code == 204
        assert admin.get(f"/v1/jobs/{job_a}").status_code == 404
        job_c = _submit(a).json()["id"]
    # the store holds a short key id per job, never a key or its digest
    with contextlib.closing(sqlite3.connect(keyed.data_dir / "jobs.db")) as con:
        owners = dict(con.execute("SELECT id, owner FROM sigscore_jobs").fetchall())
    assert len(owners[job_c]) == 16 and int(owners[job_c], 16) >= 0
    blob = b"".join(p.read_bytes() for p in keyed.data_dir.glob("jobs.db*"))
    for key in (KEY_A, KEY_B, KEY_ADMIN):
        assert key.encode() not in blob
        assert hashlib.sha256(key.encode()).hexdigest().encode() not in blob
        assert key not in keyed.log.read_text()


def test_old_job_table_gains_the_owner_column(tmp_path: Path) -> None:
    """A store created before ownership existed is migrated in place at start-up."""
    import os

    import sqlalchemy as sa

    from sigscore_service.jobs import JobStore, jobs_table
    from sigscore_service.settings import Settings

    url = os.environ.get("SIGSCORE_TEST_DATABASE_URL")
    urls = [f"sqlite:///{tmp_path / 'old.db'}"]
    if url:
        from test_service_recovery import _fresh_pg_database

        urls.append(_fresh_pg_database(url))
    for db in urls:
        old = sa.MetaData()
        cols = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in jobs_table.columns if c.name != "owner"]  # fmt: skip
        sa.Table(jobs_table.name, old, *cols)
        engine = sa.create_engine(db)
        old.create_all(engine)
        with engine.begin() as c:
            c.execute(old.tables[jobs_table.name].insert().values(
                id="a" * 32, state="done", created_at=1.0, attempts=1, task="{}"))  # fmt: skip
        engine.dispose()
        store = JobStore(Settings(data_dir=tmp_path / "d", database_url=db))
        try:
            assert store.get("a" * 32)["owner"] is None  # type: ignore[index]
            new = store.create({"files": {}}, "x.csv", 1, owner="0123456789abcdef")
            assert store.get(new["id"])["owner"] == "0123456789abcdef"  # type: ignore[index]
            JobStore(Settings(data_dir=tmp_path / "d", database_url=db)).dispose()  # idempotent
        finally:
            store.dispose()


# --------------------------------------------------------------------------- admission
CAP = 3


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker process, a cap of 3, and small synchronous limits."""
    env = {"SIGSCORE_WORKERS": "1", "SIGSCORE_MAX_QUEUED_JOBS": str(CAP),
           "SIGSCORE_SYNC_MAX_BYTES": "100000", "SIGSCORE_SYNC_MAX_CELLS": "1500"}  # fmt: skip
    srv = Server(tmp_path_factory.mktemp("busy"), env).start()
    try:
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def frozen_pool(srv: Server) -> Iterator[list[Any]]:
    """SIGSTOP the server's fork server (and any task process it forked), so a job or
    synchronous request handed to it stays in progress until SIGCONT."""
    procs = [p for p in psutil.Process(srv.pid).children(recursive=True)
             if "multiprocessing.forkserver" in " ".join(p.cmdline())]  # fmt: skip
    assert procs, "no fork server found"
    for p in procs:
        p.suspend()
    try:
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.resume()


def _small_body(n_samples: int = 4, n_genes: int = 300, **extra: Any) -> dict[str, Any]:
    expr = read_matrix(EXAMPLE)
    X = np.asarray(expr.X.todense() if hasattr(expr.X, "todense") else expr.X)
    X = X[:n_samples, :n_genes]
    return {"matrix": {"samples": list(expr.obs_names[:n_samples]),
                       "genes": list(expr.var_names[:n_genes]), "values": X.tolist()},
            "index": False, **extra}  # fmt: skip


def _wait_state(c: httpx.Client, job_id: str, state: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := c.get(f"/v1/jobs/{job_id}").json()["state"]) != state:
        assert time.monotonic() < deadline, f"job {job_id} never {state} (is {now})"
        time.sleep(0.05)


def test_sync_requests_share_the_job_cap(busy: Server) -> None:
    """Full server (1 job held running + 2 synchronous requests held in the pool = cap 3):
    the other 9 of 11 concurrent synchronous requests get 429 + Retry-After while nothing can
    finish, and so does a job; once the worker runs again, the admitted ones are answered."""
    body = _small_body()
    with httpx.Client(base_url=busy.url, timeout=120) as c:
        # answered after the worker's warm-up (one worker, first in first out): jobs are
        # claimed only once the pool is warm, so it must be before the worker is stopped
        assert c.post("/v1/score", json=body).status_code == 200
    with httpx.Client(base_url=busy.url, timeout=120) as c, frozen_pool(busy) as procs:
        job = _submit(c)
        assert job.status_code == 202, job.text
        _wait_state(c, job.json()["id"], "running")  # claimed; its worker is stopped

        async def burst() -> tuple[list[tuple[float, httpx.Response]], list[httpx.Response]]:
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(base_url=busy.url, timeout=120, limits=limits) as ac:

                async def one() -> tuple[float, httpx.Response]:
                    t0 = time.perf_counter()
                    r = await ac.post("/v1/score", json=body)
                    return time.perf_counter() - t0, r

                tasks = [asyncio.create_task(one()) for _ in range(11)]
                refused = []
                # bounded: if more than 2 were admitted, fewer than 9 ever come back
                for fut in asyncio.as_completed(tasks, timeout=120):
                    refused.append(await fut)
                    if len(refused) == 11 - (CAP - 1):
                        break
                # still frozen: the 2 admitted synchronous requests count against jobs too
                r = await ac.post("/v1/jobs", files={"file": ("x.tsv.gz", EXAMPLE.read_bytes())})
                refused.append((0.0, r))
                for p in procs:
                    p.resume()
                admitted = [r for _, r in await asyncio.gather(*(t for t in tasks if not t.done()))]
                return refused, admitted

        refused, admitted = asyncio.run(burst())
        for _dt, r in refused:
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) > 0
            assert r.json()["type"].endswith("queue-full")
        assert len(admitted) == CAP - 1
        for r in admitted:
            assert r.status_code == 200, r.text
            assert r.json()["n_obs"] == 4
        assert wait_job(c, job.json()["id"])["state"] == "done"
        slowest = max(dt for dt, _ in refused[:-1])
        print(f"9 of 11 concurrent sync requests refused (429) while full; slowest refusal "
              f"{slowest * 1000:.0f} ms")  # fmt: skip
        # the queue has room again: answered synchronously
        assert c.post("/v1/score", json=body).status_code == 200
    assert not any((busy.data_dir / "uploads").iterdir())  # nothing left behind


def test_sync_limits_hold_whatever_the_mode(busy: Server) -> None:
    """mode=sync above sync_max_bytes or sync_max_cells: 413 naming the job route; mode=auto
    makes the same input a job."""
    assert EXAMPLE.stat().st_size > 100_000
    wide = _small_body(n_samples=2, n_genes=800)  # 1,600 cells > 1,500, a small body
    with httpx.Client(base_url=busy.url, timeout=120) as c:
        for r, limit, value in (
            (_submit(c, "/v1/score", mode="sync"), "limit_bytes", 100_000),
            (c.post("/v1/score", json={**wide, "mode": "sync"}), "limit_cells", 1500),
        ):
            assert r.status_code == 413, r.text
            doc = r.json()
            assert doc["type"].endswith("too-large-for-sync") and "/v1/jobs" in doc["detail"]
            assert doc[limit] == value, doc
        for r in (_submit(c, "/v1/score"), c.post("/v1/score", json=wide)):
            assert r.status_code == 202, r.text
            assert wait_job(c, r.json()["id"])["state"] == "done"
        assert not any((busy.data_dir / "uploads").iterdir())


# --------------------------------------------------------------------------- nested JSON
def _log_lines(srv: Server) -> list[str]:
    return srv.log.read_text().splitlines()


def test_deeply_nested_json_is_400_with_one_log_line(keyed: Server) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    params_100 = json.dumps(
        _small_body(2, 50) | {"params": json.loads('{"a":' * 100 + "1" + "}" * 100)}
    )
    with _client(keyed, KEY_A) as c:
        cases = [
            c.post("/v1/score", content=deep, headers={"content-type": "application/json"}),
            c.post("/v1/jobs", content=deep, headers={"content-type": "application/json"}),
            c.post("/v1/score", content=params_100, headers={"content-type": "application/json"}),
            c.post(
                "/v1/score",
                files={"file": (EXAMPLE.name, EXAMPLE.read_bytes())},
                data={"params": '{"a":' * 10_000 + "1" + "}" * 10_000},
            ),
        ]
        for r in cases:
            assert r.status_code == 400, r.text
            assert "64 levels" in r.json()["detail"], r.json()
        # one request, one log line (the access line), no traceback. The access line is
        # written once the response is sent: wait for it, and for a later marker request's
        before = _log_lines(keyed)
        r = c.post("/v1/score", content=deep,
                   headers={"content-type": "application/json", "x-request-id": "deepjson01"})  # fmt: skip
        assert r.status_code == 400
        assert c.get("/v1/methods", headers={"x-request-id": "marker01"}).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            new = _log_lines(keyed)[len(before) :]
            ids = [json.loads(x).get("request_id") for x in new if x.startswith("{")]
            if "deepjson01" in ids and "marker01" in ids:
                break
            assert time.monotonic() < deadline, new
            time.sleep(0.05)
    about = [x for x in new if '"marker01"' not in x]
    assert len(about) == 1, about
    assert (
        json.loads(about[0])["status"] == 400 and json.loads(about[0])["request_id"] == "deepjson01"
    )
    assert (
        "Traceback" not in keyed.log.read_text() and "RecursionError" not in keyed.log.read_text()
    )


# --------------------------------------------------------------------------- server paths
def _shipped_definition() -> bytes:
    from sigscore.index.definition import INDEX_FILE
    from sigscore.signatures import shipped_signatures_dir

    return (shipped_signatures_dir() / INDEX_FILE).read_bytes()


def test_bad_uploads_name_the_client_file_not_the_server_path(keyed: Server) -> None:
    matrix = ("expr.tsv.gz", EXAMPLE.read_bytes())
    no_index = {"index": "false"}
    cases = [  # (form files, fields, the name the message must use, status and kind)
        ({"signatures": ("my sigs.yaml", b"emt: 5\n")}, no_index, "my_sigs.yaml",
         (422, "signature")),
        ({"signatures": ("../../etc/passwd.gmt", b"x\n")}, no_index, "passwd.gmt",
         (422, "signature")),
        # no suffix left to tell the format by
        ({"signatures": ("..", b"emt: [A, B]\n")}, no_index, "signatures upload",
         (415, "unsupported-format")),
        ({"definition": ("def.yaml", b"name: x\n")}, {}, "def.yaml", (422, "signature")),
        ({"reference": ("ref.json", b"{}")}, {}, "ref.json", (400, "malformed-input")),
        ({"reference": ("ref.json", b"{not json")}, {}, "ref.json", (400, "malformed-input")),
    ]  # fmt: skip
    with _client(keyed, KEY_A) as c:
        for files, fields, shown, (status, kind) in cases:
            r = c.post("/v1/score", files={"file": matrix, **files}, data=fields)
            assert r.status_code == status, r.text
            doc = r.json()
            assert doc["type"] == PROBLEM_TYPE + kind, doc
            assert shown in doc["detail"], doc
            for k in ("file", "source", "path"):  # a location member names the upload only
                assert "/" not in str(doc.get(k, "")), doc
            assert_no_server_path(r.text, f"bad upload {files}")
        # as a job: the failure reason has no path either
        r = c.post("/v1/jobs", files={"file": matrix, "signatures": ("s.yaml", b"emt: 5\n")},
                   data={"index": "false"})  # fmt: skip
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "failed" and "s.yaml" in info["error"]["detail"], info


def test_manifests_name_uploads_and_shipped_sets(keyed: Server, tmp_path: Path) -> None:
    from sigscore.index.reference import Reference

    ref = Reference.build(read_matrix(EXAMPLE), progress=False).save(tmp_path / "ref.json")
    sigs = json.dumps(HOSTILE_MODULES).encode()
    with _client(keyed, KEY_A) as c:
        shipped = c.post("/v1/score", files={"file": (EXAMPLE.name, EXAMPLE.read_bytes())},
                         data={"index": "false"}).json()["manifest"]  # fmt: skip
        version = sigscore.load_signatures().version
        assert shipped["signatures"]["source"].startswith("shipped signatures ")
        assert shipped["signatures"]["source"].endswith(f" v{version}")
        own = c.post("/v1/score", files={"file": ("m.tsv.gz", EXAMPLE.read_bytes()),
                                         "signatures": ("sigs.json", sigs)},
                     data={"index": "false"}).json()["manifest"]  # fmt: skip
        assert own["signatures"]["source"] == "sigs.json"
        r = c.post("/v1/jobs", files={"file": ("m.tsv.gz", EXAMPLE.read_bytes()),
                                      "definition": ("def.yaml", _shipped_definition()),
                                      "reference": ("cohort.json", ref.read_bytes())})  # fmt: skip
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "done", info
        doc = c.get(f"/v1/jobs/{info['id']}/result").json()
        assert doc["manifest"]["reference"]["source"] == "cohort.json"
        assert doc["manifest"]["input_name"] == "m.tsv.gz"
        # every format of the result (the autouse hook checks each body for server paths)
        for fmt in info["result_formats"]:
            assert c.get(f"/v1/jobs/{info['id']}/result", params={"format": fmt}).status_code == 200


# --------------------------------------------------------------------------- CSV injection
def test_csv_results_open_as_text(keyed: Server, tmp_path: Path) -> None:
    src = hostile_matrix(tmp_path / "hostile.tsv").read_bytes()
    sigs = json.dumps(HOSTILE_MODULES).encode()
    files = {"file": ("hostile.tsv", src), "signatures": ("sigs.json", sigs)}
    with _client(keyed, KEY_A) as c:
        r = c.post("/v1/score", params={"format": "csv"}, files=files, data={"index": "false"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        header = check_csv_text(r.text)[0]
        assert header[1:] == ["'=HYPERLINK(1)", "'@evil", "plain_module"]
        job = c.post("/v1/jobs", files=files, data={"index": "false"}).json()["id"]
        assert wait_job(c, job)["state"] == "done"
        again = c.get(f"/v1/jobs/{job}/result", params={"format": "csv"}).text
        assert again == r.text
        # JSON and Parquet keep the names (they are not opened by spreadsheets)
        doc = c.get(f"/v1/jobs/{job}/result").json()
        assert [row["sample"] for row in doc["rows"]][: len(HOSTILE_SAMPLES)] == HOSTILE_SAMPLES
        pq = c.get(f"/v1/jobs/{job}/result", params={"format": "parquet"}).content
        assert list(pd.read_parquet(io.BytesIO(pq)).columns) == list(HOSTILE_MODULES)


# --------------------------------------------------------------------------- worker boundary
class PanicException(BaseException):
    """Stands in for ``pyo3_runtime.PanicException`` (a BaseException, as polars raises)."""


def _task(tmp_path: Path) -> dict[str, Any]:
    up = tmp_path / "uploads" / "0123abcd"
    up.mkdir(parents=True)
    (up / "file.parquet").write_bytes(b"PAR1")
    return {"files": {"file": str(up / "file.parquet")}, "display_name": "cells.parquet",
            "upload_dir": str(up), "result_dir": str(tmp_path / "res"),
            "options": {"params": {}}, "report": False}  # fmt: skip


def test_native_panic_in_a_reader_is_a_picklable_400(tmp_path: Path, monkeypatch) -> None:
    import sigscore.io
    from sigscore_service.worker import run_task

    def panic(*_a: Any, **_k: Any) -> None:
        raise PanicException(f"assertion failed at {tmp_path}/x.rs:1: forged row count")

    monkeypatch.setattr(sigscore.io, "read_matrix", panic)
    out = run_task(_task(tmp_path))
    pickle.loads(pickle.dumps(out))  # crosses the process boundary
    p = out["problem"]
    assert out["ok"] is False and p["status"] == 400 and p["kind"] == "malformed-input", out
    assert "cells.parquet" in p["detail"] and "PanicException" in p["detail"]
    assert_no_server_path(json.dumps(out), "worker answer")


def test_panic_while_scoring_is_a_picklable_500_without_paths(tmp_path: Path, monkeypatch) -> None:
    import sigscore.io
    import sigscore.scoring
    from sigscore_service.worker import run_task

    task = _task(tmp_path)
    frame = pd.DataFrame({"IL6": [1.0, 2.0]}, index=["a", "b"])

    def panic(*_a: Any, **_k: Any) -> None:
        raise PanicException(f"cannot open {task['upload_dir']}/file.parquet")

    monkeypatch.setattr(sigscore.io, "read_matrix", lambda *a, **k: frame)
    monkeypatch.setattr(sigscore.scoring, "score", panic)
    out = run_task(task)
    pickle.loads(pickle.dumps(out))
    assert out["problem"]["status"] == 500 and "PanicException" in out["problem"]["detail"]
    assert "cells.parquet" in out["problem"]["detail"], out
    assert_no_server_path(json.dumps(out), "worker answer")


def test_the_path_hook_checks_every_response() -> None:
    """The autouse hook of conftest.py sees responses of any httpx client of a test."""

    def leak(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"detail": "cannot read /srv/x/../tmp/upload/file.csv"})

    with httpx.Client(transport=httpx.MockTransport(leak)) as c, pytest.raises(AssertionError):
        c.get("http://service.invalid/v1/jobs")

    async def aleak() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(leak)) as ac:
            await ac.get("http://service.invalid/v1/jobs")

    with pytest.raises(AssertionError, match="server path"):
        asyncio.run(aleak())


def test_operator_limits_reach_the_reader(make_server) -> None:
    """max_ratio / ratio_floor_bytes / max_cells from the settings, not the library defaults:
    bz2 is expanded by the reader (the upload guard follows gzip and zip only)."""
    import bz2

    srv = make_server({"SIGSCORE_MAX_RATIO": "3", "SIGSCORE_RATIO_FLOOR_BYTES": "0",
                       "SIGSCORE_MAX_CELLS": "50000"}).start()  # fmt: skip
    plain = pd.read_csv(EXAMPLE, sep="\t", index_col=0).to_csv(sep="\t").encode()
    packed = bz2.compress(plain, 9)
    assert len(plain) > 3 * len(packed)  # > 3:1, far below the library's default 200:1
    small = pd.read_csv(EXAMPLE, sep="\t", index_col=0).iloc[:2000, :4]  # 8,000 values
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        r = c.post("/v1/score", files={"file": ("m.tsv.bz2", packed)}, data={"index": "false"})
        # bz2 is not followed by the upload guard: the reader refuses it (InputError, 400)
        assert r.status_code == 400 and "3:1" in r.json()["detail"], r.text
        r = _submit(c, "/v1/score")  # 24 × 3,133 = 75,192 values > 50,000
        assert r.status_code == 400 and "max_cells" in r.json()["detail"], r.text
        ok = c.post("/v1/score", files={"file": ("s.tsv", small.to_csv(sep="\t").encode())},
                    data={"index": "false"})  # fmt: skip
        assert ok.status_code == 200, ok.text
