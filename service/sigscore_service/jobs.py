"""Persistent jobs: a SQLAlchemy job store and a dispatcher feeding a worker process pool.

Store: SQLite in ``data_dir/jobs.db`` (WAL journal, so readers never block the writer) or
PostgreSQL when ``SIGSCORE_DATABASE_URL`` names it. One table, ``sigscore_jobs``; times
are Unix seconds. A job is claimed with a conditional UPDATE (``state='queued'`` →
``running``), so two dispatchers can never run the same job.

Lifecycle: queued → running → done | failed (with a reason). On start-up every job left
``running`` by a previous process (a crash, SIGKILL) is re-queued, or failed with a reason
once it has been started ``job_max_attempts`` times — never lost, never stuck. A graceful
shutdown waits ``shutdown_grace_s`` for running jobs and re-queues the rest.

Results live in ``data_dir/results/<id>/``; ``result_ttl_s`` after finishing, a job and its
files are deleted. One service process per data directory/database (the recovery step
assumes no other live dispatcher owns ``running`` rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import shutil
import sqlite3
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .settings import Settings
from .worker import run_task, warm_up

log = logging.getLogger("sigscore_service.jobs")
STATES = ("queued", "running", "done", "failed")

metadata = sa.MetaData()
jobs_table = sa.Table(
    "sigscore_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("input_name", sa.String(200)),
    sa.Column("input_bytes", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("summary", sa.Text),
    # key id of the API key that created the job (a hash, never the key); NULL without keys
    sa.Column("owner", sa.String(32)),
)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class JobStore:
    """CRUD on the jobs table (all methods blocking; call them off the event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.db_url)
        metadata.create_all(self.engine)
        self._migrate()

    def _migrate(self) -> None:
        """Add columns that stores created by older versions lack (``create_all`` only creates
        missing tables). A plain ``ALTER TABLE ... ADD COLUMN`` of a nullable column works on
        SQLite and PostgreSQL; a concurrent start-up that added it first is tolerated."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns(jobs_table.name)}
        for col in jobs_table.columns:
            if col.name in have:
                continue
            ddl = col.type.compile(dialect=self.engine.dialect)
            try:
                with self.engine.begin() as c:
                    c.execute(sa.text(f"ALTER TABLE {jobs_table.name} ADD COLUMN {col.name} {ddl}"))
            except sa.exc.DBAPIError:
                fresh = sa.inspect(self.engine).get_columns(jobs_table.name)
                if col.name not in {c["name"] for c in fresh}:
                    raise
            log.info(f"job store: added column {col.name!r} to {jobs_table.name}")

    def result_dir(self, job_id: str) -> Path:
        return self.s.data_dir / "results" / job_id

    def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def check(self) -> str | None:
        """Readiness: ``None`` when the store answers a real query, else the reason.

        SQLite: ``PRAGMA quick_check`` on a fresh connection (a pooled one may answer from its
        page cache after the file went bad). It reads every page once, so it costs O(file
        size); the job table stays small (finished jobs expire), and a corrupt page anywhere
        is found, which ``SELECT 1`` or a count over an index would miss. PostgreSQL: a
        query on the jobs table through the pool.
        """
        db = self.engine.url.database
        try:
            if self.engine.dialect.name == "sqlite" and db and db != ":memory:":
                # mode=rw: a missing file is an error, not a new empty database
                con = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=rw", uri=True, timeout=5)
                try:
                    rows = [str(r[0]) for r in con.execute("PRAGMA quick_check").fetchall()]
                finally:
                    con.close()
                if rows != ["ok"]:
                    return "PRAGMA quick_check: " + "; ".join(rows[:3])
            else:
                with self.engine.connect() as c:
                    c.execute(sa.select(jobs_table.c.id).limit(1)).all()
        except Exception as exc:  # any failure means "not ready", with the reason
            return f"{type(exc).__name__}: {exc}"
        return None

    def create(
        self, task: dict[str, Any], input_name: str, input_bytes: int, owner: str | None = None
    ) -> dict[str, Any]:
        job_id = uuid.uuid4().hex
        task = {**task, "result_dir": str(self.result_dir(job_id))}
        row = {
            "id": job_id, "state": "queued", "created_at": time.time(), "attempts": 0,
            "task": json.dumps(task), "input_name": input_name, "input_bytes": input_bytes,
            "owner": owner,
        }  # fmt: skip
        with self.engine.begin() as c:
            c.execute(jobs_table.insert().values(**row))
        return self.get(job_id) or row

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).mappings().first()
        return dict(r) if r else None

    def counts(self) -> dict[str, int]:
        q = sa.select(jobs_table.c.state, sa.func.count()).group_by(jobs_table.c.state)
        with self.engine.connect() as c:
            got = {s: int(n) for s, n in c.execute(q)}
        return {s: got.get(s, 0) for s in STATES}

    def active(self) -> int:
        c = self.counts()
        return c["queued"] + c["running"]

    def claim(self, n: int) -> list[dict[str, Any]]:
        """Atomically move up to ``n`` oldest queued jobs to running."""
        out: list[dict[str, Any]] = []
        if n <= 0:
            return out
        q = (sa.select(jobs_table.c.id).where(jobs_table.c.state == "queued")
             .order_by(jobs_table.c.created_at).limit(n))  # fmt: skip
        with self.engine.begin() as c:
            ids = [r[0] for r in c.execute(q)]
            for job_id in ids:
                upd = (
                    jobs_table.update()
                    .where(jobs_table.c.id == job_id, jobs_table.c.state == "queued")
                    .values(state="running", started_at=time.time(),
                            attempts=jobs_table.c.attempts + 1)
                )  # fmt: skip
                if c.execute(upd).rowcount == 1:
                    out.append(job_id)
        return [j for j in (self.get(i) for i in out) if j]

    def finish(self, job_id: str, ok: bool, payload: dict[str, Any]) -> None:
        now = time.time()
        values: dict[str, Any] = {
            "state": "done" if ok else "failed",
            "finished_at": now,
            "expires_at": now + self.s.result_ttl_s,
        }
        values["summary" if ok else "error"] = json.dumps(payload)
        with self.engine.begin() as c:
            c.execute(jobs_table.update()
                      .where(jobs_table.c.id == job_id, jobs_table.c.state == "running")
                      .values(**values))  # fmt: skip

    def requeue(self, job_id: str, *, count_attempt: bool = True) -> None:
        """Back to queued (a crashed worker, a shutdown); fails it after too many attempts."""
        job = self.get(job_id)
        if job is None or job["state"] != "running":
            return
        attempts = int(job["attempts"]) - (0 if count_attempt else 1)
        with self.engine.begin() as c:
            if attempts >= self.s.job_max_attempts:
                self._fail_running(c, job_id, attempts)
            else:
                c.execute(jobs_table.update()
                          .where(jobs_table.c.id == job_id, jobs_table.c.state == "running")
                          .values(state="queued", attempts=attempts))  # fmt: skip

    def _fail_running(self, c: Any, job_id: str, attempts: int) -> None:
        now = time.time()
        err = {
            "status": 500, "kind": "interrupted", "extra": {"attempts": attempts},
            "detail": f"the job was interrupted {attempts} time(s) (server restart or worker "
            "crash) and was not retried again; resubmit it, and if it fails again score the "
            "matrix in parts",
        }  # fmt: skip
        c.execute(jobs_table.update()
                  .where(jobs_table.c.id == job_id, jobs_table.c.state == "running")
                  .values(state="failed", finished_at=now, error=json.dumps(err),
                          expires_at=now + self.s.result_ttl_s))  # fmt: skip

    def recover(self) -> int:
        """Start-up: re-queue (or fail) every job a previous process left running."""
        with self.engine.connect() as c:
            ids = [
                r[0]
                for r in c.execute(
                    sa.select(jobs_table.c.id).where(jobs_table.c.state == "running")
                )
            ]
        for job_id in ids:
            self.requeue(job_id)
        return len(ids)

    def delete(self, job_id: str) -> bool:
        job = self.get(job_id)
        with self.engine.begin() as c:
            n = c.execute(jobs_table.delete().where(jobs_table.c.id == job_id)).rowcount
        shutil.rmtree(self.result_dir(job_id), ignore_errors=True)
        if job is not None:
            remove_upload(job)
        return n == 1

    def expire(self) -> int:
        now = time.time()
        with self.engine.connect() as c:
            ids = [
                r[0]
                for r in c.execute(
                    sa.select(jobs_table.c.id).where(
                        jobs_table.c.expires_at.is_not(None), jobs_table.c.expires_at < now
                    )
                )
            ]
        for job_id in ids:
            self.delete(job_id)
        return len(ids)

    def dispose(self) -> None:
        self.engine.dispose()


def remove_upload(job: dict[str, Any]) -> None:
    """Delete a job's uploaded files (kept only until the job has run)."""
    with contextlib.suppress(ValueError, TypeError):
        up = json.loads(job["task"]).get("upload_dir")
        if up:
            shutil.rmtree(up, ignore_errors=True)


def new_pool(workers: int) -> ProcessPoolExecutor:
    # spawn: a clean interpreter per worker (no forked locks, threads or event loop).
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


class Dispatcher:
    """Feeds queued jobs to the pool and records outcomes (one asyncio task)."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.s = settings
        self.store = store
        self.pool = new_pool(settings.workers)
        self.running: dict[str, tuple[Future, float]] = {}
        self.task: asyncio.Task | None = None
        self.stopping = False
        self.last_sweep = 0.0
        self.warm_ups: list[Future] = []

    @property
    def healthy(self) -> bool:
        return self.task is not None and not self.task.done() and not self.stopping

    def submit_sync(self, task: dict[str, Any]) -> Future:
        try:
            return self.pool.submit(run_task, task)
        except BrokenProcessPool:
            self._restart_pool()
            return self.pool.submit(run_task, task)

    def _restart_pool(self) -> None:
        old = self.pool
        self.pool = new_pool(self.s.workers)
        old.shutdown(wait=False, cancel_futures=True)

    def start(self) -> None:
        with contextlib.suppress(Exception):
            for _ in range(self.s.workers):
                self.warm_ups.append(self.pool.submit(warm_up))
        self.task = asyncio.create_task(self._loop(), name="sigscore-dispatcher")

    async def _loop(self) -> None:
        while not self.stopping:
            try:
                await self._tick()
            except Exception:
                log.exception("dispatcher tick failed; retrying")
            await asyncio.sleep(self.s.poll_interval_s)

    async def _tick(self) -> None:
        for job_id, (fut, _t0) in list(self.running.items()):
            if fut.done():
                del self.running[job_id]
                await asyncio.to_thread(self._record, job_id, fut)
        now = time.monotonic()
        hard = self.s.job_timeout_s + 30.0
        overdue = [j for j, (_f, t0) in self.running.items() if now - t0 > hard]
        if overdue:
            # A worker stuck in native code ignores its alarm: fail the overdue job(s) with
            # the reason, then kill the pool's processes (other running jobs are re-queued).
            log.warning("a job exceeded its hard time limit; restarting the worker pool")
            for job_id in overdue:
                del self.running[job_id]
                await asyncio.to_thread(self.store.finish, job_id, False, {
                    "status": 422, "kind": "time-limit", "extra": {},
                    "detail": f"the job ran longer than the server's limit of "
                    f"{self.s.job_timeout_s:.0f} s; score the matrix in parts or with the "
                    "sigscore library/CLI"})  # fmt: skip
            self._kill_pool()
        free = self.s.workers - len(self.running)
        # Claim once the workers are warm: a job marked running then runs at once (behind a
        # warm-up, a shutdown's grace could end before it even started).
        warm = all(f.done() for f in self.warm_ups)
        if free > 0 and warm and not self.stopping:
            for job in await asyncio.to_thread(self.store.claim, free):
                task = json.loads(job["task"])
                task["timeout_s"] = self.s.job_timeout_s
                try:
                    fut = self.pool.submit(run_task, task)
                except BrokenProcessPool:
                    self._restart_pool()
                    fut = self.pool.submit(run_task, task)
                self.running[job["id"]] = (fut, time.monotonic())
        if time.time() - self.last_sweep > self.s.sweep_interval_s:
            self.last_sweep = time.time()
            await asyncio.to_thread(self.store.expire)

    def _kill_pool(self) -> None:
        procs = getattr(self.pool, "_processes", None) or {}
        for p in list(procs.values()):
            with contextlib.suppress(Exception):
                p.kill()
        self._restart_pool()

    def _record(self, job_id: str, fut: Future) -> None:
        try:
            res = fut.result()
        except BrokenProcessPool:
            log.warning("worker process died; re-queueing job", extra={"job_id": job_id})
            self.store.requeue(job_id)
            self._restart_pool_if_broken()
            return
        except Exception as exc:
            res = {
                "ok": False,
                "problem": {
                    "status": 500,
                    "kind": "internal",
                    "extra": {},
                    "detail": f"worker failed ({type(exc).__name__})",
                },
            }
        if res.get("ok"):
            self.store.finish(job_id, True, {k: v for k, v in res.items() if k != "ok"})
        else:
            self.store.finish(job_id, False, res.get("problem") or {"detail": "unknown error"})
        job = self.store.get(job_id)
        if job is None:  # deleted while running
            shutil.rmtree(self.store.result_dir(job_id), ignore_errors=True)
        elif job["state"] in ("done", "failed"):
            remove_upload(job)  # the upload is no longer needed once the job has finished

    def _restart_pool_if_broken(self) -> None:
        if getattr(self.pool, "_broken", False):
            self._restart_pool()

    async def stop(self) -> None:
        """Graceful shutdown: stop claiming, wait for running jobs, re-queue the rest."""
        self.stopping = True
        if self.task is not None:
            # Let the current tick end (the loop checks `stopping`): cancelling it inside
            # `claim` would leave the rows it claimed `running` but unknown to `self.running`.
            # Cancel only a tick that hangs (a stuck database).
            await asyncio.wait({self.task}, timeout=self.s.poll_interval_s + 30.0)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        deadline = time.monotonic() + self.s.shutdown_grace_s
        while self.running and time.monotonic() < deadline:
            for job_id, (fut, _t0) in list(self.running.items()):
                if fut.done():
                    del self.running[job_id]
                    await asyncio.to_thread(self._record, job_id, fut)
            await asyncio.sleep(0.1)
        for job_id in list(self.running):
            await asyncio.to_thread(self.store.requeue, job_id, count_attempt=False)
        self.running.clear()
        self._kill_pool_final()

    def _kill_pool_final(self) -> None:
        procs = getattr(self.pool, "_processes", None) or {}
        for p in list(procs.values()):
            with contextlib.suppress(Exception):
                p.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
