"""Jobs scored on a real ``dask.distributed`` cluster (``SIGSCORE_DASK_SCHEDULER``).

A ``dask scheduler`` and two ``dask worker`` processes run on 127.0.0.1 (free ports, each
in its own process group, stopped by group id at the end). A service pointed at the
scheduler hands each job's row blocks to the cluster; its numbers must equal the embedded
path's (same upload to a server without the setting). Killing one Dask worker while the
job's blocks are being processed must still end the job ``done`` with the same numbers.
Every wait is on a state (workers registered, tasks processing, job finished).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svc_live import Server, free_port, wait_job
from test_service_recovery import _slow_matrix

import sigscore

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'sigscore[dask]')"
)

#: generous bound for processes to start and register on a loaded 2-core machine
READY_S = 180.0
#: rows per block sent to the cluster: many small blocks, so a job is still running when a
#: worker is killed
CHUNK_ROWS = 4
COPIES = 40  # the example's 24 samples × 40 = 960 rows → 240 blocks per pass


class Cluster:
    """A dask scheduler and named workers, each process in its own session."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, args: list[str]) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "dask", *args], stdout=log, stderr=log,
                start_new_session=True)  # fmt: skip

    def start(self, n_workers: int = 2) -> Cluster:
        """Start the processes and wait until the workers registered (stopped on failure)."""
        try:
            return self._start_all(n_workers)
        except BaseException:
            self.stop()
            raise

    def _start_all(self, n_workers: int) -> Cluster:
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--no-dashboard"])  # fmt: skip
        for i in range(n_workers):
            # no nanny: one process per worker, so a SIGKILL is a worker lost for good
            self._start(f"w{i}", ["worker", self.address, "--name", f"w{i}", "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"])  # fmt: skip
        with self.client() as c:  # connecting waits for the scheduler
            if n_workers:
                c.wait_for_workers(n_workers, timeout=READY_S)
            assert len(c.scheduler_info()["workers"]) == n_workers
        return self

    def client(self) -> distributed.Client:
        return distributed.Client(self.address, timeout=READY_S, set_as_default=False)

    def kill(self, name: str) -> None:
        """SIGKILL one process group this cluster started (by its leader's pid)."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def dask_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SIGSCORE_DASK_SCHEDULER": cluster.address, "SIGSCORE_DASK_CHUNK_ROWS": str(CHUNK_ROWS),
           "SIGSCORE_DASK_TIMEOUT_S": str(READY_S)}  # fmt: skip
    srv = Server(tmp_path_factory.mktemp("svc-dask"), env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _slow_matrix(tmp_path_factory.mktemp("in") / "big.tsv.gz", copies=COPIES).read_bytes()


def _submit(srv: Server, payload: bytes, method: str) -> str:
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        r = c.post("/v1/jobs", files={"file": ("big.tsv.gz", payload)},
                   data={"index": "false", "method": method})  # fmt: skip
        assert r.status_code == 202, r.text
        return r.json()["id"]


def _result(srv: Server, job_id: str) -> dict:
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        info = wait_job(c, job_id, timeout=600)
        assert info["state"] == "done", info
        return c.get(f"/v1/jobs/{job_id}/result").json()


def _assert_same_scores(got: dict, want: dict) -> int:
    """Every score equal to float tolerance (NaN where NaN); returns the values compared."""
    assert got["columns"] == want["columns"]
    assert [r["sample"] for r in got["rows"]] == [r["sample"] for r in want["rows"]]
    n = 0
    for g, w in zip(got["rows"], want["rows"], strict=True):
        for col in want["columns"]:
            if w[col] is None:
                assert g[col] is None, (g["sample"], col)
            else:
                assert g[col] == pytest.approx(w[col], rel=1e-12, abs=1e-12), (g["sample"], col)
                n += 1
    assert n > 0
    return n


def _ran_on_cluster(doc: dict) -> None:
    notes = doc["manifest"]["input"]["notes"]
    assert any("Dask cluster" in n and f"≤ {CHUNK_ROWS} rows" in n for n in notes), notes


def _block_tasks_ran(cluster: Cluster) -> bool:
    """Whether the scheduler has run row-block tasks (the library's ``_run_block``)."""
    with cluster.client() as c:
        return bool(c.run_on_scheduler(lambda dask_scheduler: "run_block" in
                                       dask_scheduler.task_prefixes))  # fmt: skip


@pytest.mark.parametrize("method", ["singscore", "zscore"])
def test_dask_job_equals_embedded(
    method: str, cluster: Cluster, dask_server: Server, server: Server, upload: bytes
) -> None:
    """Same upload, same numbers: embedded workers vs row blocks on the Dask cluster
    (singscore: ranks per row; zscore: per-gene statistics summed over blocks first)."""
    want = _result(server, _submit(server, upload, method))
    got = _result(dask_server, _submit(dask_server, upload, method))
    _ran_on_cluster(got)
    assert _block_tasks_ran(cluster)
    n = _assert_same_scores(got, want)
    print(f"{method}: {n} scores from the Dask cluster equal the embedded path's")


def test_killing_a_dask_worker_mid_job_still_ends_done(
    cluster: Cluster, dask_server: Server, server: Server, upload: bytes
) -> None:
    """SIGKILL one of the two Dask workers while it processes the job's blocks, with most
    blocks still to do: the scheduler reruns its work on the other worker; the job ends
    ``done`` with the embedded path's numbers."""

    def unfinished_blocks(dask_scheduler) -> int:  # runs on the scheduler (pickled by value)
        done = ("memory", "released", "forgotten", "erred")
        return sum("run_block" in str(k) and t.state not in done
                   for k, t in dask_scheduler.tasks.items())  # fmt: skip

    want = _result(server, _submit(server, upload, "singscore"))
    job = _submit(dask_server, upload, "singscore")
    with cluster.client() as c:
        deadline = time.monotonic() + READY_S
        victim = None
        while victim is None:
            workers = c.scheduler_info()["workers"]
            processing = c.processing()
            names = {addr: info["name"] for addr, info in workers.items()}
            busy = [names[a] for a, keys in processing.items() if a in names and
                    any("run_block" in str(k) for k in keys)]  # fmt: skip
            left = c.run_on_scheduler(unfinished_blocks)
            if busy and left >= 20:
                victim = busy[0]
                cluster.kill(victim)
                break
            with httpx.Client(base_url=dask_server.url, timeout=60) as h:
                state = h.get(f"/v1/jobs/{job}").json()["state"]
            assert state in ("queued", "running"), f"job {state} before a worker was killed"
            assert time.monotonic() < deadline, "no Dask worker ever processed the job's blocks"
            time.sleep(0.02)
        print(f"killed Dask worker {victim} with {left} block tasks unfinished")
        got = _result(dask_server, job)
        assert len(c.scheduler_info()["workers"]) == 1  # the victim is gone for good
    _ran_on_cluster(got)
    _assert_same_scores(got, want)


def test_unreachable_scheduler_fails_the_job_with_a_reason(tmp_path: Path) -> None:
    """No scheduler on the address: the run ends with a 503 problem naming the address and
    the setting, not a traceback (the worker's own function, no server needed)."""
    from sigscore_service.worker import run_task

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    task = {"files": {"file": str(sigscore.example_path())}, "result_dir": str(tmp_path / "r"),
            "options": {"params": {}, "index": False}, "report": False,
            "dask_scheduler": address, "dask_timeout_s": 2}  # fmt: skip
    res = run_task(task)
    assert res["ok"] is False
    p = res["problem"]
    assert p["status"] == 503 and p["kind"] == "dask-unavailable", p
    assert address in p["detail"] and "SIGSCORE_DASK_SCHEDULER" in p["detail"], p
    assert "Traceback" not in p["detail"]


def test_scheduler_without_workers_fails_the_job_with_a_reason(tmp_path: Path) -> None:
    """A scheduler with no worker: the run waits SIGSCORE_DASK_TIMEOUT_S, then ends with a
    problem that says so (it does not wait for the job's time limit)."""
    from sigscore_service.worker import run_task

    lonely = Cluster(tmp_path).start(n_workers=0)
    try:
        task = {"files": {"file": str(sigscore.example_path())},
                "result_dir": str(tmp_path / "r"), "options": {"params": {}, "index": False},
                "report": False, "dask_scheduler": lonely.address, "dask_timeout_s": 2}  # fmt: skip
        p = run_task(task)["problem"]
    finally:
        lonely.stop()
    assert p["status"] == 503 and p["kind"] == "dask-unavailable", p
    assert "has no workers" in p["detail"] and lonely.address in p["detail"], p


def test_scheduler_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed address, or the setting without dask.distributed installed, is refused at
    start with the variable's name and the fix."""
    from sigscore.errors import UsageError
    from sigscore_service import settings as settings_mod

    monkeypatch.setenv("SIGSCORE_DASK_SCHEDULER", "scheduler:8786")
    with pytest.raises(UsageError, match=r"SIGSCORE_DASK_SCHEDULER: .*tcp://host:port"):
        settings_mod.load_settings()
    monkeypatch.setenv("SIGSCORE_DASK_SCHEDULER", "tcp://scheduler:8786")
    assert settings_mod.load_settings().dask_scheduler == "tcp://scheduler:8786"
    real = settings_mod.importlib.util.find_spec
    monkeypatch.setattr(settings_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))  # fmt: skip
    with pytest.raises(
        UsageError, match=r"dask.distributed is not installed.*sigscore\[service,dask\]"
    ):
        settings_mod.load_settings()


def test_missing_distributed_fails_the_job_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker without dask.distributed (setting made elsewhere): a clear problem."""
    from sigscore_service.worker import run_task

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    task = {"files": {"file": str(sigscore.example_path())}, "result_dir": tempfile.mkdtemp(
                dir=tmp_path), "options": {"params": {}, "index": False}, "report": False,
            "dask_scheduler": "tcp://127.0.0.1:1", "dask_timeout_s": 1}  # fmt: skip
    p = run_task(task)["problem"]
    assert p["kind"] == "dask-unavailable" and "not installed" in p["detail"], p
