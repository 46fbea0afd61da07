"""Jobs survive a crash: SIGKILL with 20 jobs queued or running, restart, none lost.

Run against SQLite (default) and PostgreSQL (``SIGSCORE_TEST_DATABASE_URL``, started by
``scripts/start_postgres.sh``; skipped with a reason when unset).
"""

from __future__ import annotations

import os
import signal
import subprocess
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


GRACE_S = 2.0


def _slow_matrix(path: Path, copies: int = 16) -> Path:
    """The example matrix with its samples repeated: GSVA (quadratic in samples) takes ~5 s."""
    import pandas as pd

    df = pd.read_csv(sigscore.example_path(), sep="\t", index_col=0)
    big = pd.concat([df] * copies, axis=1)
    big.columns = [f"S{i}" for i in range(big.shape[1])]
    big.to_csv(path, sep="\t")
    return path


def _group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group: the server's pool workers."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def test_sigterm_finishes_or_requeues_jobs(make_server, tmp_path: Path) -> None:
    """SIGTERM: short running jobs finish within the grace, long ones go back to the queue
    with the interrupted attempt not counted, queued ones stay queued; nothing is left
    ``running``; after a restart every job ends done.

    ``job_max_attempts=1`` makes the attempt bookkeeping observable: a job the shutdown
    re-queued would be failed as "interrupted" on restart if that attempt had counted (or if
    it had been left ``running`` for the crash recovery to find).
    """
    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    data_dir = tmp_path / "term"
    env = {"SIGSCORE_SHUTDOWN_GRACE_S": str(GRACE_S), "SIGSCORE_JOB_MAX_ATTEMPTS": "1",
           "SIGSCORE_WORKERS": "2"}  # fmt: skip
    slow = _slow_matrix(tmp_path / "slow.tsv.gz").read_bytes()
    small = sigscore.example_path().read_bytes()
    srv = make_server(env, data_dir).start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:

        def submit(name: str, payload: bytes, method: str) -> str:
            r = c.post("/v1/jobs", files={"file": (name, payload)},
                       data={"index": "false", "method": method})  # fmt: skip
            assert r.status_code == 202, r.text
            return r.json()["id"]

        # one long job (far longer than the grace) and five short ones (~0.1 s each), so
        # that at SIGTERM the long one and a short one run and the rest are queued
        slow_id = submit("slow.tsv.gz", slow, "gsva")
        ids = [slow_id] + [submit(f"s{i}.tsv.gz", small, "singscore") for i in range(5)]
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        for _ in range(3000):  # bounded in count and time
            states = {j: c.get(f"/v1/jobs/{j}").json()["state"] for j in ids}
            if states[slow_id] == "running" and list(states.values()).count("running") == 2:
                break
            assert time.monotonic() < deadline, f"never saw two jobs running: {states}"
            time.sleep(0.02)
    running_at_term = [j for j, s in states.items() if s == "running"]
    assert slow_id in running_at_term and len(running_at_term) == 2, states
    short_running = next(j for j in running_at_term if j != slow_id)

    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)  # the server only, as an orchestrator does
    try:
        srv.proc.wait(timeout=GRACE_S + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still up {GRACE_S + 30} s after SIGTERM: "
                    f"{srv.log.read_text()[-3000:]}")  # fmt: skip
    exit_s = time.monotonic() - t0
    # the long job outlives the grace, so the shutdown waited the grace (not more: margin)
    assert GRACE_S <= exit_s < GRACE_S + 30, exit_s
    deadline = time.monotonic() + 10
    while _group_alive(srv.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(srv.pid), "worker processes outlived the server"

    # the store as the shutdown left it (before any start-up recovery could tidy it)
    store = JobStore(Settings(data_dir=data_dir))
    try:
        rows = {j: store.get(j) for j in ids}
    finally:
        store.dispose()
    assert all(rows.values()), "a job disappeared"
    left = {j: r["state"] for j, r in rows.items()}  # type: ignore[index]
    assert "running" not in left.values() and "failed" not in left.values(), left
    assert left[short_running] == "done", (left, rows[short_running])  # finished in the grace
    assert left[slow_id] == "queued", left  # cut at the grace: back to the queue...
    assert rows[slow_id]["attempts"] == 0, rows[slow_id]  # type: ignore[index]  # ...uncounted
    for r in rows.values():  # a queued job carries no attempt from the stopped server
        assert r["state"] == "done" or r["attempts"] == 0, r  # type: ignore[index]

    srv2 = make_server(env, data_dir).start()
    with httpx.Client(base_url=srv2.url, timeout=60) as c:
        finals = {j: wait_job(c, j, timeout=180) for j in ids}
    assert {j: f["state"] for j, f in finals.items()} == dict.fromkeys(ids, "done"), [
        f["error"] for f in finals.values()
    ]
    assert finals[slow_id]["attempts"] == 1, finals[slow_id]


def test_stop_during_claim_requeues_the_claimed_jobs(tmp_path: Path, monkeypatch) -> None:
    """A shutdown that lands while the dispatcher is claiming jobs must not leave the claimed
    rows ``running`` (they would cost an attempt, or fail as "interrupted" on restart)."""
    import asyncio
    import threading

    from sigscore_service.jobs import Dispatcher, JobStore
    from sigscore_service.settings import Settings

    s = Settings(data_dir=tmp_path / "d", workers=1, poll_interval_s=0.05, shutdown_grace_s=0,
                 job_max_attempts=1)  # fmt: skip
    store = JobStore(s)
    job = store.create({"files": {}, "options": {}}, "x.tsv", 1)["id"]
    in_claim = threading.Event()
    real_claim = store.claim

    def slow_claim(n: int) -> list[dict]:
        in_claim.set()
        time.sleep(0.5)  # the shutdown arrives while the rows are being claimed
        return real_claim(n)

    monkeypatch.setattr(store, "claim", slow_claim)

    async def main() -> None:
        d = Dispatcher(s, store)
        d.start()
        for _ in range(200):  # bounded: ≤ 10 s
            if in_claim.is_set():
                break
            await asyncio.sleep(0.05)
        assert in_claim.is_set()
        await d.stop()

    try:
        asyncio.run(main())
        row = store.get(job)
    finally:
        store.dispose()
    assert row is not None and row["state"] == "queued" and row["attempts"] == 0, row
