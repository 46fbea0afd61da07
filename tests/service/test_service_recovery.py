"""Jobs survive a crash: SIGKILL with 20 jobs queued or running, restart, none lost.

Leases are short here (``LEASE``): a restarted server takes over the killed one's jobs once
their leases lapse, never earlier.

Run against SQLite (default) and PostgreSQL (``SIGSCORE_TEST_DATABASE_URL``, started by
``scripts/start_postgres.sh``; skipped with a reason when unset).
"""

from __future__ import annotations

import contextlib
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
#: short leases, so jobs of a killed process are taken over within seconds
LEASE = {"SIGSCORE_LEASE_S": "4", "SIGSCORE_HEARTBEAT_S": "0.5"}


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
    _crash_and_recover(make_server, LEASE, tmp_path / "sqlite")


def test_sigkill_with_queued_jobs_postgres(make_server, tmp_path: Path) -> None:
    url = os.environ.get("SIGSCORE_TEST_DATABASE_URL")
    if not url:
        pytest.skip('SIGSCORE_TEST_DATABASE_URL unset (eval "$(bash scripts/start_postgres.sh)")')
    db = _fresh_pg_database(url)
    _crash_and_recover(make_server, {"SIGSCORE_DATABASE_URL": db, **LEASE}, tmp_path / "pg")


def job_pid(data_dir: Path, job_id: str, timeout: float = 120.0) -> int:
    """The pid of the process running a job (written by the child into its result folder)."""
    f = data_dir / "results" / job_id / ".pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(f.read_text())
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never started a process")


def test_job_process_crash_is_charged_and_fails_after_max_attempts(
    make_server, tmp_path: Path
) -> None:
    """A job whose own process dies (OOM kill, crash) uses an attempt; with
    job_max_attempts=1 it is failed with the reason, never stuck and never retried; the
    other job, in its own process, is untouched."""
    path = sigscore.example_path()
    env = {"SIGSCORE_JOB_MAX_ATTEMPTS": "1", "SIGSCORE_WORKERS": "2"}
    slow = _slow_matrix(tmp_path / "slow.tsv.gz").read_bytes()
    srv = make_server(env, tmp_path / "d").start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        victim = c.post("/v1/jobs", files={"file": ("slow.tsv.gz", slow)},
                        data={"method": "gsva", "index": "false"}).json()["id"]  # fmt: skip
        other = c.post("/v1/jobs", files={"file": (path.name, path.read_bytes())}).json()["id"]
        os.kill(job_pid(srv.data_dir, victim), signal.SIGKILL)
        info = wait_job(c, victim)
        assert info["state"] == "failed" and "ended without an answer" in info["error"]["detail"]
        assert info["attempts"] == 1, info
        assert wait_job(c, other)["state"] == "done"


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


def _slow_matrix(path: Path, copies: int = 16) -> Path:
    """The example matrix with its samples repeated (GSVA on 96 copies: ~6 s idle)."""
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


def _term_and_read_store(srv, ids: list[str], limit_s: float) -> tuple[float, dict[str, dict]]:
    """SIGTERM the server only (as an orchestrator does), wait for its exit and for its
    group's processes, and read the store as the shutdown left it (before any restart)."""
    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still up {limit_s} s after SIGTERM: {srv.log.read_text()[-3000:]}")
    exit_s = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while _group_alive(srv.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(srv.pid), "job processes outlived the server"
    store = JobStore(Settings(data_dir=srv.data_dir))
    try:
        rows = {j: store.get(j) for j in ids}
    finally:
        store.dispose()
    assert all(rows.values()), "a job disappeared"
    return exit_s, rows  # type: ignore[return-value]


def _submit_until_running(c: httpx.Client, jobs: list[tuple[str, bytes, str]], want: list[int]):
    ids = []
    for name, payload, method in jobs:
        r = c.post("/v1/jobs", files={"file": (name, payload)},
                   data={"index": "false", "method": method})  # fmt: skip
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    deadline = time.monotonic() + 120
    while True:  # bounded: the claim is an event, whatever the machine's load
        states = [c.get(f"/v1/jobs/{j}").json()["state"] for j in ids]
        if all(states[i] == "running" for i in want):
            return ids
        assert time.monotonic() < deadline, f"jobs {want} never running: {states}"
        time.sleep(0.02)


def test_sigterm_hands_running_jobs_back(make_server, tmp_path: Path) -> None:
    """SIGTERM with no grace: a running job is killed and handed back at once (queued, lease
    released, the attempt not counted), queued ones stay queued, nothing stays ``running``;
    after a restart every job ends done, the handed-back one with one counted attempt.

    ``job_max_attempts=1`` makes the bookkeeping observable: a charged hand-back would fail
    the job on its next run."""
    env = {"SIGSCORE_SHUTDOWN_GRACE_S": "0", "SIGSCORE_JOB_MAX_ATTEMPTS": "1",
           "SIGSCORE_WORKERS": "1", **LEASE}  # fmt: skip
    slow = _slow_matrix(tmp_path / "slow.tsv.gz", copies=96).read_bytes()
    small = sigscore.example_path().read_bytes()
    srv = make_server(env, tmp_path / "term").start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        jobs = [("slow.tsv.gz", slow, "gsva")] + [(f"s{i}.tsv.gz", small, "singscore")
                                                  for i in range(3)]  # fmt: skip
        ids = _submit_until_running(c, jobs, want=[0])
    _exit_s, rows = _term_and_read_store(srv, ids, limit_s=60)
    left = {j: r["state"] for j, r in rows.items()}
    assert left == dict.fromkeys(ids, "queued"), left
    assert all(r["attempts"] == 0 and r["lease_owner"] is None for r in rows.values()), rows

    srv2 = make_server(env, tmp_path / "term").start()
    with httpx.Client(base_url=srv2.url, timeout=60) as c:
        finals = {j: wait_job(c, j, timeout=240) for j in ids}
    assert {j: f["state"] for j, f in finals.items()} == dict.fromkeys(ids, "done"), [
        f["error"] for f in finals.values()
    ]
    assert all(f["attempts"] == 1 for f in finals.values()), finals


def test_sigterm_finishes_running_jobs_within_the_grace(make_server, tmp_path: Path) -> None:
    """SIGTERM with a long grace: the running jobs finish (done), the server then exits
    without waiting out the grace, and the queued ones stay queued with no attempt."""
    grace = 300.0
    env = {"SIGSCORE_SHUTDOWN_GRACE_S": str(grace), "SIGSCORE_WORKERS": "2", **LEASE}
    small = sigscore.example_path().read_bytes()
    srv = make_server(env, tmp_path / "grace").start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        jobs = [(f"s{i}.tsv.gz", small, "singscore") for i in range(6)]
        ids = _submit_until_running(c, jobs, want=[0])
    exit_s, rows = _term_and_read_store(srv, ids, limit_s=grace + 60)
    assert exit_s < grace, exit_s
    left = {j: r["state"] for j, r in rows.items()}
    assert left[ids[0]] == "done", left
    assert set(left.values()) <= {"done", "queued"}, left
    for r in rows.values():
        assert (r["state"], r["attempts"]) in (("done", 1), ("queued", 0)), r


def test_stop_during_claim_requeues_the_claimed_jobs(tmp_path: Path, monkeypatch) -> None:
    """A shutdown that lands while the dispatcher is claiming jobs must not leave the claimed
    rows ``running`` (they would cost an attempt, or fail as "interrupted" on restart)."""
    import asyncio
    import threading

    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings
    from sigscore_service.supervisor import Dispatcher

    s = Settings(data_dir=tmp_path / "d", workers=1, poll_interval_s=0.05, shutdown_grace_s=0,
                 job_max_attempts=1)  # fmt: skip
    store = JobStore(s)
    slow = _slow_matrix(tmp_path / "slow.tsv.gz", copies=96)  # still running at the stop
    task = {"files": {"file": str(slow)}, "options": {"method": "gsva", "params": {}}}
    job = store.create(task, "x.tsv", 1)["id"]
    in_claim = threading.Event()
    real_claim = store.claim

    def slow_claim(*args: object) -> list[dict]:
        in_claim.set()
        time.sleep(0.5)  # the shutdown arrives while the rows are being claimed
        return real_claim(*args)

    monkeypatch.setattr(store, "claim", slow_claim)

    async def main() -> None:
        d = Dispatcher(s, store)
        d.start()
        for _ in range(2400):  # bounded: ≤ 120 s (the workers warm up first)
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
