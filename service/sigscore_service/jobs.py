"""Persistent jobs: a SQLAlchemy job store with leases, and the dispatcher that runs them.

Store: SQLite in ``data_dir/jobs.db`` (WAL journal, so readers never block the writer) or
PostgreSQL when ``SIGSCORE_DATABASE_URL`` names it. One table, ``sigscore_jobs``; times
are Unix seconds (hosts sharing a store need synchronised clocks, as with any lease).

Leases (in the style of database-backed queues such as Oban or GoodJob): a dispatcher claims
queued jobs atomically (PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite a conditional
``UPDATE ... WHERE state='queued'``, SQLite serialising writers), records itself as the
holder with a lease expiry, and renews the lease by heartbeat while the job runs. A job goes
back to the queue only when its lease has expired (its holder died or lost the store) or its
holder hands it back on shutdown, never because some process started: any number of API and
worker processes can share one store.

Attempts: counted when a job is claimed; given back when the run ended through no fault of
the job (a graceful hand-back, an expired lease: its worker died). A job whose own process
dies (crash, out-of-memory kill) keeps the attempt and is failed with a reason once it has
used ``job_max_attempts``. Lapsed leases are counted apart (``lease_lapses``): a job whose
worker died under it ``max_lease_lapses`` times (a job that takes its whole worker down,
e.g. a container killed for memory) is failed with a reason instead of re-queued forever.

Lifecycle: queued → running → done | failed (with a reason). Each job runs in its own child
process (:mod:`sigscore_service.runner`). Results live in ``data_dir/results/<id>/``;
``result_ttl_s`` after finishing, a job and its files are deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .settings import Settings

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
    # who runs the job ("host:pid:nonce") and until when its lease holds (Unix seconds)
    sa.Column("lease_owner", sa.String(120)),
    sa.Column("lease_expires_at", sa.Float),
    # how often the job's lease lapsed (its worker died while running it); capped by
    # max_lease_lapses, since such lapses are not charged as attempts
    sa.Column("lease_lapses", sa.Integer),
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

    def claim(self, n: int, holder: str, lease_s: float) -> list[dict[str, Any]]:
        """Atomically move up to ``n`` oldest queued jobs to running, leased to ``holder``."""
        if n <= 0:
            return []
        q = (
            sa.select(jobs_table.c.id)
            .where(jobs_table.c.state == "queued")
            .order_by(jobs_table.c.created_at)
            .limit(n)
            .with_for_update(skip_locked=True)
        )  # fmt: skip  (ignored by SQLite)
        out: list[str] = []
        with self.engine.begin() as c:
            now = time.time()
            for job_id in [r[0] for r in c.execute(q)]:
                upd = (
                    jobs_table.update()
                    .where(jobs_table.c.id == job_id, jobs_table.c.state == "queued")
                    .values(state="running", started_at=now, lease_owner=holder,
                            lease_expires_at=now + lease_s,
                            attempts=jobs_table.c.attempts + 1)
                )  # fmt: skip
                if c.execute(upd).rowcount == 1:
                    out.append(job_id)
        return [j for j in (self.get(i) for i in out) if j]

    def _held(self, job_id: str, holder: str | None) -> Any:
        cond = sa.and_(jobs_table.c.id == job_id, jobs_table.c.state == "running")
        return cond if holder is None else sa.and_(cond, jobs_table.c.lease_owner == holder)

    def renew(self, holder: str, ids: list[str], lease_s: float) -> set[str]:
        """Extend the leases ``holder`` has on ``ids``; returns those it still holds (a job
        deleted, or taken over after the lease lapsed, is missing)."""
        if not ids:
            return set()
        mine = sa.and_(jobs_table.c.id.in_(ids), jobs_table.c.state == "running",
                       jobs_table.c.lease_owner == holder)  # fmt: skip
        with self.engine.begin() as c:
            c.execute(jobs_table.update().where(mine)
                      .values(lease_expires_at=time.time() + lease_s))  # fmt: skip
            return {r[0] for r in c.execute(sa.select(jobs_table.c.id).where(mine))}

    def existing(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` still exist (a deleted job's run is cancelled)."""
        if not ids:
            return set()
        with self.engine.connect() as c:
            q = sa.select(jobs_table.c.id).where(jobs_table.c.id.in_(ids))
            return {r[0] for r in c.execute(q)}

    def finish(
        self, job_id: str, ok: bool, payload: dict[str, Any], holder: str | None = None
    ) -> bool:
        """Record the outcome (only while ``holder`` still holds the lease); True if recorded."""
        now = time.time()
        values: dict[str, Any] = {
            "state": "done" if ok else "failed",
            "finished_at": now,
            "expires_at": now + self.s.result_ttl_s,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        values["summary" if ok else "error"] = json.dumps(payload)
        with self.engine.begin() as c:
            upd = jobs_table.update().where(self._held(job_id, holder)).values(**values)
            return bool(c.execute(upd).rowcount)

    def requeue(
        self, job_id: str, *, count_attempt: bool = True, holder: str | None = None
    ) -> None:
        """Back to queued, lease released (a hand-back, a crashed child); fails it once it has
        used ``job_max_attempts``. ``count_attempt=False`` gives the attempt back."""
        job = self.get(job_id)
        if job is None or job["state"] != "running":
            return
        if holder is not None and job["lease_owner"] != holder:
            return
        attempts = int(job["attempts"]) - (0 if count_attempt else 1)
        with self.engine.begin() as c:
            if count_attempt and attempts >= self.s.job_max_attempts:
                self._fail_running(c, job_id, attempts)
            else:
                c.execute(jobs_table.update().where(self._held(job_id, holder))
                          .values(state="queued", attempts=max(0, attempts), lease_owner=None,
                                  lease_expires_at=None))  # fmt: skip

    def _fail_running(self, c: Any, job_id: str, attempts: int) -> None:
        now = time.time()
        err = {
            "status": 500, "kind": "interrupted", "extra": {"attempts": attempts},
            "detail": f"the job's process ended without an answer {attempts} time(s) (out "
            "of memory, or a crash) and was not retried again; resubmit it, and if it fails "
            "again score the matrix in parts",
        }  # fmt: skip
        c.execute(jobs_table.update()
                  .where(jobs_table.c.id == job_id, jobs_table.c.state == "running")
                  .values(state="failed", finished_at=now, error=json.dumps(err),
                          expires_at=now + self.s.result_ttl_s, lease_owner=None,
                          lease_expires_at=None))  # fmt: skip

    def reclaim_expired(self) -> int:
        """Re-queue running jobs whose lease has lapsed (their holder died or lost the store),
        giving the attempt back: the job did not fail. Each lapse is counted; a job at its
        ``max_lease_lapses``-th lapse is failed with the reason instead. A row from a version
        without leases (no expiry) counts as lapsed. Returns how many were re-queued."""
        now = time.time()
        lapsed = sa.and_(
            jobs_table.c.state == "running",
            sa.or_(jobs_table.c.lease_expires_at.is_(None), jobs_table.c.lease_expires_at < now),
        )
        released = {
            "lease_owner": None, "lease_expires_at": None,
            "lease_lapses": sa.func.coalesce(jobs_table.c.lease_lapses, 0) + 1,
            "attempts": sa.case((jobs_table.c.attempts > 0, jobs_table.c.attempts - 1), else_=0),
        }  # fmt: skip
        cap = self.s.max_lease_lapses
        at_cap = sa.func.coalesce(jobs_table.c.lease_lapses, 0) + 1 >= cap
        with self.engine.begin() as c:  # one transaction: a row is failed or re-queued, once
            failed = c.execute(
                jobs_table.update().where(lapsed, at_cap).values(
                    state="failed", finished_at=now, expires_at=now + self.s.result_ttl_s,
                    error=json.dumps(_lapsed_problem(cap)), **released)
            ).rowcount  # fmt: skip
            n = c.execute(jobs_table.update().where(lapsed).values(state="queued", **released)
                          ).rowcount  # fmt: skip
        if failed:
            log.warning(f"failed {failed} job(s) whose worker died under them {cap} time(s)")
        if n:
            log.info(f"re-queued {n} job(s) whose lease had expired")
        return int(n or 0)

    def referenced_uploads(self) -> set[str]:
        """Upload folders of jobs that have not finished (the sweeper keeps them)."""
        q = sa.select(jobs_table.c.task).where(jobs_table.c.state.in_(("queued", "running")))
        out: set[str] = set()
        with self.engine.connect() as c:
            for (task,) in c.execute(q):
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    if up := json.loads(task).get("upload_dir"):
                        out.add(str(up))
        return out

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


def _lapsed_problem(lapses: int) -> dict[str, Any]:
    return {
        "status": 500, "kind": "interrupted", "extra": {"lease_lapses": lapses},
        "detail": f"the worker running this job stopped {lapses} time(s) while running it "
        "(its process or container was killed, e.g. for memory, or lost the job store), so "
        "it was not retried again; if it fails again, score the matrix in parts or give the "
        "workers more memory",
    }  # fmt: skip


def remove_upload(job: dict[str, Any]) -> None:
    """Delete a job's uploaded files (kept only until the job has run)."""
    with contextlib.suppress(ValueError, TypeError):
        up = json.loads(job["task"]).get("upload_dir")
        if up:
            shutil.rmtree(up, ignore_errors=True)
