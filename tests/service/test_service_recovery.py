"""Jobs survive a crash: SIGKILL with 20 jobs queued or running, restart, none lost.

Run against SQLite (default) and PostgreSQL (``SIGSCORE_TEST_DATABASE_URL``, started by
``scripts/start_postgres.sh``; skipped with a reason when unset).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from svc_live import wait_job

import sigscore

N_JOBS = 20


def _fresh_pg_database(url: str) -> str:
    """A new, empty database on the test server (so runs never see each other's jobs)."""
    import sqlalchemy as sa

    name = "sigscore_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def _crash_and_recover(make_server, env: dict[str, str], data_dir: Path) -> None:
    path = sigscore.example_path()
    payload = path.read_bytes()
    srv = make_server(env, data_dir).start()
    ids: list[str] = []
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(N_JOBS):
            r = c.post("/v1/jobs", files={"file": (f"s{i}.tsv.gz", payload)},
                       data={"index": "false"})  # fmt: skip
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        # wait (bounded) until a job is running, so the kill interrupts work in progress
        deadline = time.monotonic() + 60
        states: list[str] = []
        while time.monotonic() < deadline:
            states = [c.get(f"/v1/jobs/{j}").json()["state"] for j in ids[:4]]
            if "running" in states:
                break
            time.sleep(0.05)
    srv.kill()
    # restart on the same data dir / database: every job ends done or failed-with-reason
    srv2 = make_server(env, data_dir).start()
    with httpx.Client(base_url=srv2.url, timeout=60) as c:
        finals = [wait_job(c, j, timeout=240) for j in ids]
    assert len(finals) == N_JOBS
    for info in finals:
        assert info["state"] in ("done", "failed")
        if info["state"] == "failed":
            assert info["error"] and info["error"]["detail"], info
    # with the default 3 attempts, one crash re-queues: all are done
    assert all(f["state"] == "done" for f in finals), [f["error"] for f in finals]
    assert max(f["attempts"] for f in finals) >= 1


def test_sigkill_with_queued_jobs_sqlite(make_server, tmp_path: Path) -> None:
    _crash_and_recover(make_server, {}, tmp_path / "sqlite")


def test_sigkill_with_queued_jobs_postgres(make_server, tmp_path: Path) -> None:
    url = os.environ.get("SIGSCORE_TEST_DATABASE_URL")
    if not url:
        pytest.skip('SIGSCORE_TEST_DATABASE_URL unset (eval "$(bash scripts/start_postgres.sh)")')
    db = _fresh_pg_database(url)
    _crash_and_recover(make_server, {"SIGSCORE_DATABASE_URL": db}, tmp_path / "pg")


def test_failed_after_max_attempts(make_server, tmp_path: Path) -> None:
    """With job_max_attempts=1 an interrupted job is failed with a reason, never stuck."""
    path = sigscore.example_path()
    env = {"SIGSCORE_JOB_MAX_ATTEMPTS": "1", "SIGSCORE_WORKERS": "1"}
    srv = make_server(env, tmp_path / "d").start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        job = c.post("/v1/jobs", files={"file": (path.name, path.read_bytes())}).json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and c.get(f"/v1/jobs/{job}").json()["state"] == "queued":
            time.sleep(0.02)
        state = c.get(f"/v1/jobs/{job}").json()["state"]
    srv.kill()
    srv2 = make_server(env, tmp_path / "d").start()
    with httpx.Client(base_url=srv2.url, timeout=60) as c:
        info = wait_job(c, job)
    if state == "running":
        assert info["state"] == "failed" and "interrupted" in info["error"]["detail"], info
    else:  # finished before the kill
        assert info["state"] == "done"


def test_job_time_limit(make_server, tmp_path: Path) -> None:
    """A job past SIGSCORE_JOB_TIMEOUT_S fails with the time-limit reason (not stuck)."""
    path = sigscore.example_path()
    srv = make_server({"SIGSCORE_JOB_TIMEOUT_S": "0.01"}, tmp_path / "t").start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        job = c.post("/v1/jobs", files={"file": (path.name, path.read_bytes())}).json()["id"]
        info = wait_job(c, job)
    assert info["state"] == "failed", info
    assert info["error"]["type"].endswith("time-limit") and "limit" in info["error"]["detail"], (
        info["error"]
    )
