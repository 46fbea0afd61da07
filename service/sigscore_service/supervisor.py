"""The dispatcher: claims jobs under a lease, runs each in its own child process, renews the
leases by heartbeat, records outcomes and hands work back on shutdown.

Runs inside ``sigscore serve`` (embedded workers, ``SIGSCORE_WORKERS`` of them; 0 = API only)
and ``sigscore worker`` (workers only). Every dispatcher also re-queues jobs whose lease
lapsed and sweeps orphaned folders, so a store shared by many processes heals whichever of
them survive.

Fencing: a dispatcher that could not renew its leases for most of a lease period kills its
children before the leases can lapse, so a job never runs twice while its lease is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

from . import runner
from .jobs import JobStore, remove_upload
from .settings import Settings, load_settings
from .sweeper import sweep_orphans

log = logging.getLogger("sigscore_service.supervisor")


@dataclass
class Run:
    """A claimed job and its process."""

    child: runner.Child
    started: float = field(default_factory=time.monotonic)
    timed_out: bool = False


def _time_limit_problem(limit: float) -> dict[str, Any]:
    return {"status": 422, "kind": "time-limit", "extra": {},
            "detail": f"the job ran longer than the server's limit of {limit:.0f} s; score the "
            "matrix in parts or with the sigscore library/CLI"}  # fmt: skip


class Dispatcher:
    """Claims and supervises jobs for one process (one asyncio task plus a heartbeat thread)."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.s = settings
        self.store = store
        self.workers = settings.workers
        self.holder = f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.running: dict[str, Run] = {}
        self.task: asyncio.Task | None = None
        self.stopping = False
        self.warm = False
        self.warm_up_s: float | None = None
        self.last_sweep = 0.0
        self.last_reclaim = 0.0
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def healthy(self) -> bool:
        return self.warm and self.task is not None and not self.task.done() and not self.stopping

    def submit_sync(self, task: dict[str, Any]) -> runner.Child:
        """A synchronous request's task in its own process (``cancel()`` kills it)."""
        return runner.Child(task)

    def cancel(self, job_id: str) -> None:
        """Kill a job's process if this dispatcher runs it (a DELETE in this process; other
        processes notice the deleted row on their next tick)."""
        run = self.running.get(job_id)
        if run is not None:
            run.child.kill()

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="sigscore-dispatcher")

    async def _loop(self) -> None:
        # the fork server's imports and one example run: claim only when a child starts warm
        self.warm_up_s = await asyncio.to_thread(runner.warm_up)
        log.info(f"workers warm in {self.warm_up_s:.1f} s", extra={"holder": self.holder})
        self.warm = True
        self._beat = threading.Thread(target=self._heartbeat, name="sigscore-lease", daemon=True)
        self._beat.start()
        while not self.stopping:
            try:
                await self._tick()
            except Exception:
                log.exception("dispatcher tick failed; retrying")
            await asyncio.sleep(self.s.poll_interval_s)

    # ------------------------------------------------------------------ leases
    def _heartbeat(self) -> None:
        """Renew the leases of running jobs; kill the children of leases this process lost
        (job deleted, or taken over) or can no longer renew (fencing)."""
        every = self.s.heartbeat_s
        last_ok = time.monotonic()
        while not self._beat_stop.wait(every):
            runs = {j: r for j, r in list(self.running.items()) if not r.child.done()}
            t = time.monotonic()
            try:
                held = self.store.renew(self.holder, list(runs), self.s.lease_s)
                last_ok = t
            except Exception as exc:
                log.warning(f"lease renewal failed: {type(exc).__name__}: {exc}")
                if time.monotonic() - last_ok > 0.75 * self.s.lease_s:
                    for r in runs.values():  # stop before another worker may take them
                        r.child.kill()
                continue
            for job_id in set(runs) - held:
                runs[job_id].child.kill()

    # ------------------------------------------------------------------ the loop
    async def _tick(self) -> None:
        await self._collect()
        now = time.monotonic()
        for run in self.running.values():
            # SIGALRM ends a task at its limit; a child stuck in native code ignores it
            if not run.timed_out and now - run.started > self.s.job_timeout_s + 10.0:
                run.timed_out = True
                run.child.kill()
        if self.running:  # a deleted job: stop its computation at once
            ids = list(self.running)
            alive = await asyncio.to_thread(self.store.existing, ids)
            for job_id in set(ids) - alive:
                self.running[job_id].child.kill()
        if now - self.last_reclaim > self.s.heartbeat_s:
            self.last_reclaim = now
            await asyncio.to_thread(self.store.reclaim_expired)
        free = self.workers - len(self.running)
        if free > 0 and not self.stopping:
            for job in await asyncio.to_thread(self.store.claim, free, self.holder, self.s.lease_s):
                task = json.loads(job["task"]) | self._run_options(job["id"])
                try:
                    self.running[job["id"]] = Run(runner.Child(task))
                except Exception:
                    log.exception("could not start a job's process; handing it back")
                    await asyncio.to_thread(
                        self.store.requeue, job["id"], count_attempt=False, holder=self.holder
                    )
        if time.time() - self.last_sweep > self.s.sweep_interval_s:
            self.last_sweep = time.time()
            await asyncio.to_thread(self._sweep)

    def _run_options(self, job_id: str) -> dict[str, Any]:
        """What this worker adds to a job's task: its limits and where it is scored."""
        opts: dict[str, Any] = {"timeout_s": self.s.job_timeout_s, "run_key": job_id}
        if self.s.dask_scheduler:  # row blocks go to the Dask cluster (dask_handoff)
            opts |= {"dask_scheduler": self.s.dask_scheduler,
                     "dask_timeout_s": self.s.dask_timeout_s,
                     "dask_chunk_rows": self.s.dask_chunk_rows}  # fmt: skip
        return opts

    def _sweep(self) -> None:
        self.store.expire()
        sweep_orphans(self.store, older_than=self.s.lease_s + self.s.heartbeat_s,
                      sync_older_than=self.s.sync_timeout_s + self.s.lease_s)  # fmt: skip

    async def _collect(self) -> None:
        for job_id, run in list(self.running.items()):
            if run.child.done():
                del self.running[job_id]
                await asyncio.to_thread(self._record, job_id, run)

    def _record(self, job_id: str, run: Run) -> None:
        try:
            res = run.child.result()
        except runner.ChildDied as exc:
            if run.timed_out:
                self.store.finish(
                    job_id, False, _time_limit_problem(self.s.job_timeout_s), self.holder
                )
            elif run.child.killed or self.stopping:
                # cancelled (deleted), lease lost, or a shutdown: not the job's failure
                if self.stopping:
                    self.store.requeue(job_id, count_attempt=False, holder=self.holder)
            else:
                log.warning(f"a job's process died ({exc}); re-queueing it",
                            extra={"job_id": job_id})  # fmt: skip
                self.store.requeue(job_id, holder=self.holder)
            res = None
        if res is not None:
            payload = {k: v for k, v in res.items() if k != "ok"}
            self.store.finish(job_id, bool(res.get("ok")),
                              payload if res.get("ok") else res.get("problem") or
                              {"detail": "unknown error"}, self.holder)  # fmt: skip
        job = self.store.get(job_id)
        if job is None:  # deleted while running
            shutil.rmtree(self.store.result_dir(job_id), ignore_errors=True)
        elif job["state"] in ("done", "failed"):
            remove_upload(job)  # the upload is no longer needed once the job has finished

    async def stop(self) -> None:
        """Graceful shutdown: stop claiming, let running jobs finish within the grace period,
        then kill the rest and hand them back (lease released, attempt not counted), so
        another worker takes them at once."""
        self.stopping = True
        if self.task is not None:
            # Let the current tick end (the loop checks `stopping`): cancelling it inside
            # `claim` would leave claimed rows `running` but unknown to `self.running`.
            await asyncio.wait({self.task}, timeout=self.s.poll_interval_s + 60.0)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        deadline = time.monotonic() + self.s.shutdown_grace_s
        while self.running and time.monotonic() < deadline:
            await self._collect()
            await asyncio.sleep(0.05)
        for run in self.running.values():
            run.child.kill()
        if self.running:  # the answers (ChildDied) arrive once the processes are gone
            await asyncio.to_thread(futures.wait, [r.child for r in self.running.values()], 30.0)
        await self._collect()  # killed children: handed back (or recorded, had they finished)
        self._beat_stop.set()
        if self._beat is not None:
            await asyncio.to_thread(self._beat.join, 10.0)


def run_workers(settings: Settings | None = None) -> None:
    """``sigscore worker``: dispatchers only, no HTTP (stops on SIGTERM/SIGINT)."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")  # fmt: skip

    async def main() -> None:
        store = JobStore(settings)
        d = Dispatcher(settings, store)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        d.start()
        assert d.task is not None
        await asyncio.wait({d.task, asyncio.ensure_future(stop.wait())},
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        await d.stop()
        store.dispose()

    asyncio.run(main())
