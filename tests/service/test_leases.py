"""Jobs under leases with many processes on one store (real processes on 127.0.0.1).

Scale-out: two API processes and two ``sigscore worker`` processes share one store
(PostgreSQL from ``scripts/start_postgres.sh``, skipped with a reason when absent; and
SQLite, where the API processes also run embedded workers). 40 jobs (more, 4 at a time,
while the victim has none and the others drained the queue); one worker is SIGKILLed
mid-run twice and one API process is restarted mid-run. Every job must end ``done``, scored
to completion exactly once (children append ``start``/``end`` lines to the file named by
``SIGSCORE_TEST_RUN_LOG``), none charged an attempt for another process's death, and no job
started again while an earlier run of it could still be alive.

Every wait is on a state or an event (a row claimed, a process gone) with a generous bound;
leases are short (``LEASE``) so a killed worker's jobs are taken over within seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from svc_live import Server, wait_job
from test_service_recovery import _fresh_pg_database, _slow_matrix, job_pid

import sigscore

psutil = pytest.importorskip("psutil")

LEASE = {"SIGSCORE_LEASE_S": "4", "SIGSCORE_HEARTBEAT_S": "0.5", "SIGSCORE_POLL_INTERVAL_S": "0.1"}
N_JOBS = 40


class Worker:
    """``sigscore worker`` in its own session (so the test can stop exactly its group)."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "SIGSCORE_DATA_DIR": str(data_dir), "SIGSCORE_LOG_LEVEL": "INFO",
                    **env}  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / f"worker-{id(self)}.log"

    def start(self) -> Worker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sigscore.cli", "worker"], env=self.env, stdout=log,
                stderr=log, start_new_session=True)  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def descendants(self) -> set[int]:
        with contextlib.suppress(psutil.Error):
            return {p.pid for p in psutil.Process(self.pid).children(recursive=True)}
        return set()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its group
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


@pytest.fixture
def workers() -> list[Worker]:
    made: list[Worker] = []
    yield made
    for w in made:
        w.stop()


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
    return out


def _wait_gone(pids: set[int], bound_s: float) -> float:
    """Seconds until every pid has exited (fails after ``bound_s``)."""
    t0 = time.monotonic()
    while _alive(pids):
        if time.monotonic() - t0 > bound_s:
            left = {p: " ".join(psutil.Process(p).cmdline())[:150] for p in _alive(pids)}
            raise AssertionError(f"still alive after {bound_s} s: {left}")
        time.sleep(0.05)
    return time.monotonic() - t0


def _held_by(store, pid: int) -> list[str]:
    """Jobs running under a lease held by the process ``pid``."""
    import sqlalchemy as sa

    from sigscore_service.jobs import jobs_table

    q = sa.select(jobs_table.c.id).where(
        jobs_table.c.state == "running", jobs_table.c.lease_owner.like(f"%:{pid}:%")
    )
    with store.engine.connect() as c:
        return [r[0] for r in c.execute(q)]


def _wait_running_in(
    store, worker: Worker, run_log: Path, top_up: Callable[[], None], bound_s: float = 300.0
) -> None:
    """Until a job leased to ``worker`` is being scored by one of its child processes (its
    run started and has not ended: a kill after the end but before the worker recorded the
    outcome would rightly run the job again). While the worker has none, the queue is kept
    non-empty (``top_up``): on a loaded machine the other processes may drain it first."""
    deadline = time.monotonic() + bound_s
    while True:
        held = set(_held_by(store, worker.pid))
        if held and run_log.exists():
            kids = worker.descendants()
            runs = _runs(run_log)
            for j in held:
                started = {r.pid for r in runs.get(j, []) if r.event == "start" and r.pid in kids}
                ended = {r.pid for r in runs.get(j, []) if r.event == "end"}
                if started - ended:
                    return
        if store.counts()["queued"] == 0:
            top_up()
        assert time.monotonic() < deadline, f"worker {worker.pid} never ran a job"
        time.sleep(0.05)


def _wait_warm(worker: Worker, bound_s: float = 300.0) -> None:
    """Until the worker's log says its job processes are warm (it claims jobs from then on)."""
    deadline = time.monotonic() + bound_s
    while not (worker.log.exists() and "workers warm in" in worker.log.read_text()):
        assert worker.proc is not None and worker.proc.poll() is None, worker.log.read_text()
        assert time.monotonic() < deadline, f"worker {worker.pid} not warm in {bound_s} s"
        time.sleep(0.1)


def _submit_jobs(apis: list[Server], payload: bytes, n: int, ids: list[str]) -> None:
    """Submit ``n`` example jobs, alternating between the API processes; ids appended."""
    for _ in range(n):
        i = len(ids)
        with httpx.Client(base_url=apis[i % 2].url, timeout=120) as c:
            r = c.post("/v1/jobs", files={"file": (f"s{i}.tsv.gz", payload)},
                       data={"index": "false", "method": "singscore"})  # fmt: skip
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])


class Run(NamedTuple):
    """One line of the run log: a job process started or finished scoring a job."""

    event: str  # "start" or "end"
    pid: int  # the job's process
    t: float  # wall-clock time of the event
    owner: int  # the worker or API process supervising it (its fork server's parent)


def _runs(log: Path) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for line in log.read_text().splitlines():
        event, key, pid, t, owner = line.split()
        out[key].append(Run(event, int(pid), float(t), int(owner)))
    return out


def _scale_out(tmp_path: Path, workers: list[Worker], store_env: dict[str, str],
               api_workers: int) -> None:  # fmt: skip
    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    run_log = tmp_path / "runs.log"
    data = tmp_path / "data"
    env = {**LEASE, **store_env, "SIGSCORE_TEST_RUN_LOG": str(run_log),
           "SIGSCORE_MAX_QUEUED_JOBS": "1000"}  # fmt: skip
    api_env = {**env, "SIGSCORE_WORKERS": str(api_workers)}
    apis = [Server(data, api_env).start(), Server(data, api_env).start()]
    w_env = {**env, "SIGSCORE_WORKERS": "2"}
    workers += [Worker(data, w_env).start(), Worker(data, w_env).start()]
    store = JobStore(Settings(data_dir=data, **({"database_url": store_env["SIGSCORE_DATABASE_URL"]}
                                                 if "SIGSCORE_DATABASE_URL" in store_env else {})))  # fmt: skip
    payload = sigscore.example_path().read_bytes()
    kills: dict[int, float] = {}  # supervising process (worker, API) -> when it was stopped
    try:
        ids: list[str] = []
        _submit_jobs(apis, payload, N_JOBS, ids)
        for round_ in range(2):  # SIGKILL the first worker while it runs a job, twice
            victim = workers[0]
            _wait_warm(victim)
            _wait_running_in(store, victim, run_log, lambda: _submit_jobs(apis, payload, 4, ids))
            children = victim.descendants()
            kills[victim.pid] = time.time()
            os.kill(victim.pid, signal.SIGKILL)
            victim.proc.wait(timeout=30)  # type: ignore[union-attr]
            gone_s = _wait_gone(children, bound_s=5.0)  # no child outlives it by > 5 s
            print(
                f"kill {round_ + 1}: {len(children)} children of the worker gone in {gone_s:.2f} s"
            )
            workers[0] = Worker(data, w_env).start()
            workers.append(workers[0])  # stopped by the fixture
        # restart the second API process mid-run (gracefully, as a rolling update does)
        api = apis[1]
        kills[api.pid] = time.time()
        api.stop()
        apis[1] = Server(data, api_env).start()
        with httpx.Client(base_url=apis[1].url, timeout=120) as c:
            finals = {j: wait_job(c, j, timeout=600) for j in ids}
    finally:
        for a in apis:
            a.stop()
        store.dispose()
    bad = {j: (f["state"], f["error"]) for j, f in finals.items() if f["state"] != "done"}
    assert not bad, bad  # no job failed because another job's process died
    assert {f["attempts"] for f in finals.values()} == {1}, [f["attempts"] for f in finals.values()]
    runs = _runs(run_log)
    ends = {j: sum(r.event == "end" for r in runs[j]) for j in ids}
    assert set(ends.values()) == {1}, {j: runs[j] for j, n in ends.items() if n != 1}
    restarted = 0
    for j in ids:
        starts = sorted((r for r in runs[j] if r.event == "start"), key=lambda r: r.t)
        for first, again in itertools.pairwise(starts):
            # an earlier run was cut only by its supervising process being stopped, and the
            # job started again only after that (its lease lapsed or was handed back)
            assert first.owner in kills and again.t > kills[first.owner], (j, runs[j], kills)
            restarted += 1
    assert restarted >= 1, "no run was interrupted: the kills hit no job"
    print(f"{len(ids)} jobs done once each; {restarted} interrupted run(s) resumed elsewhere")


def test_scale_out_sqlite_embedded_workers(tmp_path: Path, workers: list[Worker]) -> None:
    _scale_out(tmp_path, workers, {}, api_workers=1)


def test_scale_out_postgres(tmp_path: Path, workers: list[Worker]) -> None:
    url = os.environ.get("SIGSCORE_TEST_DATABASE_URL")
    if not url:
        pytest.skip('SIGSCORE_TEST_DATABASE_URL unset (eval "$(bash scripts/start_postgres.sh)")')
    _scale_out(tmp_path, workers, {"SIGSCORE_DATABASE_URL": _fresh_pg_database(url)},
               api_workers=0)  # fmt: skip


def test_delete_kills_the_job_process_in_another_worker(
    tmp_path: Path, workers: list[Worker]
) -> None:
    """DELETE on an API process (no workers) of a job a separate worker runs: the job's
    process is gone within 2 s, and so are its folders."""
    data = tmp_path / "data"
    api = Server(data, {**LEASE, "SIGSCORE_WORKERS": "0"}).start()
    workers.append(Worker(data, {**LEASE, "SIGSCORE_WORKERS": "1"}).start())
    slow = _slow_matrix(tmp_path / "slow.tsv.gz", copies=96).read_bytes()
    try:
        with httpx.Client(base_url=api.url, timeout=120) as c:
            job = c.post("/v1/jobs", files={"file": ("slow.tsv.gz", slow)},
                         data={"method": "gsva", "index": "false"}).json()["id"]  # fmt: skip
            pid = job_pid(data, job, timeout=180)
            assert c.get(f"/v1/jobs/{job}").json()["state"] == "running"
            assert c.delete(f"/v1/jobs/{job}").status_code == 204
            gone_s = _wait_gone({pid}, bound_s=2.0)
            print(f"DELETE: the job's process was gone {gone_s:.2f} s after the answer")
            deadline = time.monotonic() + 30
            while (data / "results" / job).exists():
                assert time.monotonic() < deadline, "the deleted job's results stayed"
                time.sleep(0.05)
    finally:
        api.stop()


def test_orphaned_folders_are_swept_after_a_crash(tmp_path: Path) -> None:
    """After a SIGKILL and a restart, upload/sync/result folders nothing owns any more are
    removed once older than a lease; a queued job's upload stays."""
    data = tmp_path / "data"
    env = {**LEASE, "SIGSCORE_WORKERS": "0", "SIGSCORE_SWEEP_INTERVAL_S": "0.5",
           "SIGSCORE_SYNC_TIMEOUT_S": "1"}  # fmt: skip
    srv = Server(data, env).start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        payload = sigscore.example_path().read_bytes()
        job = c.post("/v1/jobs", files={"file": ("x.tsv.gz", payload)}).json()["id"]
    srv.kill()
    old = time.time() - 3600
    orphans = [
        data / "uploads" / ("a" * 32),
        data / "sync" / ("b" * 32),
        data / "results" / ("c" * 32),
    ]
    for d in orphans:  # what a killed process leaves: folders with files, untouched for long
        d.mkdir(parents=True)
        (d / "part").write_bytes(b"x")
        os.utime(d / "part", (old, old))
        os.utime(d, (old, old))
    kept = [p for p in (data / "uploads").iterdir() if p not in orphans]
    assert len(kept) == 1  # the queued job's upload
    for p in [*kept[0].iterdir(), kept[0]]:
        os.utime(p, (old, old))
    srv2 = Server(data, env).start()
    try:
        deadline = time.monotonic() + 120
        while any(d.exists() for d in orphans):
            assert time.monotonic() < deadline, [d for d in orphans if d.exists()]
            time.sleep(0.1)
        assert kept[0].is_dir(), "a queued job's upload was swept"
        with httpx.Client(base_url=srv2.url, timeout=60) as c:
            assert c.get(f"/v1/jobs/{job}").json()["state"] == "queued"
    finally:
        srv2.stop()


# ---------------------------------------------------------------- lease lapses and settings
def _store(tmp_path: Path, **settings):
    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    return JobStore(Settings(data_dir=tmp_path / "store", **settings))


def test_a_job_whose_worker_keeps_dying_fails_after_max_lease_lapses(tmp_path: Path) -> None:
    """Each lapsed lease re-queues the job without charging an attempt, but is counted: at
    the max_lease_lapses-th lapse the job is failed with the reason (not re-queued forever).
    A job whose lease is alive is never touched."""
    store = _store(tmp_path, max_lease_lapses=3)
    try:
        job = store.create({"files": {}}, "x.csv", 1)["id"]
        other = store.create({"files": {}}, "y.csv", 1)["id"]
        for lapse in (1, 2, 3):
            claimed = store.claim(2, f"worker-{lapse}", lease_s=3600)
            assert {j["id"] for j in claimed} == {job, other}
            assert store.reclaim_expired() == 0  # leases alive: nothing re-queued
            # the job's worker died: its lease lapses (the other job's worker renews)
            with store.engine.begin() as c:
                c.execute(jobs_table_update(job, lease_expires_at=time.time() - 1))
            requeued = store.reclaim_expired()
            row = store.get(job)
            assert row["lease_lapses"] == lapse
            assert row["attempts"] == 0  # a lapse is not the job's failure
            if lapse < 3:
                assert requeued == 1 and row["state"] == "queued", row
            else:
                assert requeued == 0 and row["state"] == "failed", row
            assert store.get(other)["state"] == "running"  # untouched
            store.finish(other, True, {}, f"worker-{lapse}")
            if lapse < 3:
                other = store.create({"files": {}}, "y.csv", 1)["id"]
        import json

        err = json.loads(store.get(job)["error"])
        assert err["kind"] == "interrupted" and err["extra"] == {"lease_lapses": 3}
        assert "stopped 3 time(s)" in err["detail"]
        assert store.get(job)["lease_owner"] is None
    finally:
        store.dispose()


def jobs_table_update(job_id: str, **values):
    from sigscore_service.jobs import jobs_table

    return jobs_table.update().where(jobs_table.c.id == job_id).values(**values)


def test_lease_lapses_column_is_added_to_an_existing_store(tmp_path: Path) -> None:
    """A store created before lease_lapses existed gets the column at start; its running
    rows (no lease at all) count as lapsed once."""
    import sqlalchemy as sa

    db = tmp_path / "store" / "jobs.db"
    db.parent.mkdir(parents=True)
    old = sa.create_engine(f"sqlite:///{db}")
    with old.begin() as c:
        c.execute(sa.text(
            "CREATE TABLE sigscore_jobs (id VARCHAR(32) PRIMARY KEY, state VARCHAR(16) NOT NULL, "
            "created_at FLOAT NOT NULL, started_at FLOAT, finished_at FLOAT, expires_at FLOAT, "
            "attempts INTEGER NOT NULL, task TEXT NOT NULL, input_name VARCHAR(200), "
            "input_bytes BIGINT, error TEXT, summary TEXT, owner VARCHAR(32))"))  # fmt: skip
        c.execute(sa.text("INSERT INTO sigscore_jobs (id, state, created_at, attempts, task) "
                          "VALUES ('old', 'running', 0, 1, '{}')"))  # fmt: skip
    old.dispose()
    store = _store(tmp_path, max_lease_lapses=2)
    try:
        cols = {c["name"] for c in sa.inspect(store.engine).get_columns("sigscore_jobs")}
        assert {"lease_owner", "lease_expires_at", "lease_lapses"} <= cols
        assert store.reclaim_expired() == 1
        row = store.get("old")
        assert (row["state"], row["lease_lapses"], row["attempts"]) == ("queued", 1, 0)
    finally:
        store.dispose()


def test_heartbeat_must_be_under_a_third_of_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A heartbeat of lease/3 or more is refused at start, naming both variables."""
    from sigscore.errors import UsageError
    from sigscore_service.settings import Settings, load_settings

    Settings(lease_s=4, heartbeat_s=1.3)  # under a third: fine
    monkeypatch.setenv("SIGSCORE_LEASE_S", "30")
    monkeypatch.setenv("SIGSCORE_HEARTBEAT_S", "10")
    with pytest.raises(UsageError) as err:
        load_settings()
    msg = str(err.value)
    assert "SIGSCORE_HEARTBEAT_S (10 s)" in msg and "SIGSCORE_LEASE_S (30 s)" in msg, msg
    assert "Traceback" not in msg


def test_worker_command_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    """`sigscore worker` with a heartbeat that is too long: one clear line, exit status 2."""
    env = {**os.environ, "SIGSCORE_DATA_DIR": str(tmp_path), "SIGSCORE_LEASE_S": "6",
           "SIGSCORE_HEARTBEAT_S": "2"}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "sigscore.cli", "worker"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "SIGSCORE_HEARTBEAT_S (2 s)" in out.stderr and "SIGSCORE_LEASE_S (6 s)" in out.stderr
    assert "Traceback" not in out.stderr


def test_live_job_whose_worker_keeps_dying_fails_at_the_lapse_cap(
    tmp_path: Path, workers: list[Worker]
) -> None:
    """Live: an API process without workers and one ``sigscore worker`` at a time on one
    SQLite store, SIGSCORE_MAX_LEASE_LAPSES=2. Each worker is SIGKILLed (its whole process
    group) while its child is scoring the job; a fresh worker is then started. After the
    second lapse the job is failed with the lapse reason, no attempt charged, never run a
    third time, and every process the test started is gone at the end."""
    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    cap = 2
    data, run_log = tmp_path / "data", tmp_path / "runs.log"
    env = {**LEASE, "SIGSCORE_MAX_LEASE_LAPSES": str(cap), "SIGSCORE_TEST_RUN_LOG": str(run_log)}
    w_env = {**env, "SIGSCORE_WORKERS": "1"}
    slow = _slow_matrix(tmp_path / "slow.tsv.gz", copies=96).read_bytes()  # ~6 s idle
    api = Server(data, {**env, "SIGSCORE_WORKERS": "0"}).start()
    store = JobStore(Settings(data_dir=data))
    started: set[int] = {api.pid}  # every process seen, checked gone at the end
    killed: list[set[int]] = []  # the descendants of each killed worker
    owners: list[int] = []  # each killed worker's pid
    try:
        with httpx.Client(base_url=api.url, timeout=120) as c:
            job = c.post("/v1/jobs", files={"file": ("slow.tsv.gz", slow)},
                         data={"method": "gsva", "index": "false"}).json()["id"]  # fmt: skip
            t0 = time.monotonic()
            workers.append(Worker(data, w_env).start())
            _wait_warm(workers[-1])
            warm_s = time.monotonic() - t0
            # the takeover after a kill: the lease runs out, a fresh worker warms up and
            # claims the job; bounded generously from this measured warm-up
            bound_s = max(120.0, 10 * (warm_s + float(LEASE["SIGSCORE_LEASE_S"])))
            for lapse in range(1, cap + 1):
                victim = workers[-1]
                _wait_warm(victim, bound_s)
                _wait_running_in(store, victim, run_log, lambda: None, bound_s)
                children = victim.descendants()
                started |= {victim.pid, *children}
                os.killpg(victim.pid, signal.SIGKILL)  # the worker and its job's process
                victim.proc.wait(timeout=30)  # type: ignore[union-attr]
                killed.append(children)
                owners.append(victim.pid)
                _wait_gone(children, bound_s=5.0)
                workers.append(Worker(data, w_env).start())
                if lapse < cap:  # re-queued, not failed, and no attempt charged
                    deadline = time.monotonic() + bound_s
                    while (row := store.get(job))["lease_lapses"] != lapse:
                        assert row["state"] == "running", row  # not failed early
                        assert time.monotonic() < deadline, row
                        time.sleep(0.05)
                    # 0, or 1 if the fresh worker already claimed it again: the lapse gave
                    # back the killed run's attempt
                    assert row["attempts"] == (row["state"] == "running"), row
            final = wait_job(c, job, timeout=bound_s)
            last = workers[-1]
            _wait_warm(last, bound_s)  # a live worker that could have claimed the job
            started |= {last.pid, *last.descendants()}
            started |= {p.pid for p in psutil.Process(api.pid).children(recursive=True)}
        row = store.get(job)
    finally:
        for w in workers:
            w.stop()
        api.stop()
        store.dispose()
    assert final["state"] == "failed", final
    assert final["attempts"] == 0, final  # the lapses were not charged as attempts
    err = final["error"]
    assert err["type"].endswith("/interrupted") and err["lease_lapses"] == cap, err
    assert f"the worker running this job stopped {cap} time(s) while running it" in err["detail"]
    assert (row["lease_lapses"], row["lease_owner"]) == (cap, None), row
    runs = _runs(run_log)[job]
    # scored once in each killed worker (by one of its children), never finished, and not
    # started again once failed
    starts = [r for r in runs if r.event == "start"]
    assert len(starts) == cap and not [r for r in runs if r.event == "end"], runs
    assert all(r.pid in kids for r, kids in zip(starts, killed, strict=True)), (runs, killed)
    assert [r.owner for r in starts] == owners, (runs, owners)
    assert not _alive(started), {p: psutil.Process(p).cmdline() for p in _alive(started)}
    print(f"warm-up {warm_s:.1f} s; job failed after {cap} lapses: {err['detail'][:60]}")
