"""A scoring request coming in: the body read into an upload folder and options, admission
against the one cap on work in progress, and the hand-off to a job.

Shared by ``POST /v1/score`` (which may hand a large input to a job) and ``POST /v1/jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ..jobs import JobStore
from ..metrics import Metrics
from ..models import ScoreJSON, ScoreOptions
from ..problems import Problem
from ..settings import Settings
from ..uploads import (
    SavedFile,
    Upload,
    new_upload_dir,
    parse_json,
    receive_json,
    receive_multipart,
)
from .results import job_info

log = logging.getLogger("sigscore_service")


def _invalid(exc: ValidationError) -> Problem:
    errors = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
    msg = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors[:5])
    return Problem(422, f"invalid parameters: {msg}", kind="invalid-parameters", errors=errors)


def _write_inline(req: ScoreJSON, up: Upload) -> None:
    """An inline JSON matrix → CSV in the upload folder (samples as rows, genes as columns)."""
    import numpy as np
    import pandas as pd

    m = req.matrix
    if len(m.values) != len(m.samples) or any(len(r) != len(m.genes) for r in m.values):
        raise Problem(
            422,
            f"matrix.values must be {len(m.samples)} rows × {len(m.genes)} "
            "columns (one row per sample, one value per gene)",
            kind="invalid-parameters",
        )
    values = np.array([[np.nan if v is None else v for v in r] for r in m.values], dtype=float)
    df = pd.DataFrame(values, index=pd.Index(m.samples, name="sample"), columns=m.genes)
    path = up.directory / "file.csv"
    df.to_csv(path)
    up.files["file"] = SavedFile(path, "matrix.json", path.stat().st_size)
    up.total_bytes = path.stat().st_size


async def parse_request(
    request: Request, settings: Settings, metrics: Metrics
) -> tuple[ScoreOptions, Upload]:
    """The options and the saved upload of a multipart or JSON scoring request (the upload
    folder is removed on any error)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await receive_json(request, settings)
        try:
            req = ScoreJSON.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        up = Upload(new_upload_dir(settings))
        try:
            await asyncio.to_thread(_write_inline, req, up)
        except Exception:
            up.cleanup()
            raise
        metrics.upload_bytes.inc(up.total_bytes)
        return ScoreOptions.model_validate(req.model_dump(exclude={"matrix"})), up
    up = await receive_multipart(request, settings)
    metrics.upload_bytes.inc(up.total_bytes)
    try:
        if "file" not in up.files:
            raise Problem(
                422,
                "no matrix: send the expression file as the 'file' part",
                kind="invalid-parameters",
            )
        raw: dict[str, Any] = dict(up.fields)
        if "params" in raw:
            try:
                raw["params"] = parse_json(raw["params"], "the params field")
            except ValueError as exc:
                raise Problem(
                    422,
                    'params must be a JSON object, e.g. {"alpha": 0.25}',
                    kind="invalid-parameters",
                ) from exc
        for k in ("layer", "method", "min_genes"):
            if raw.get(k) == "":
                raw.pop(k)
        try:
            opts = ScoreOptions.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(exc) from None
        return opts, up
    except BaseException:
        up.cleanup()
        raise


def worker_task(opts: ScoreOptions, up: Upload, settings: Settings) -> dict[str, Any]:
    """What a worker needs to score the upload: options, file paths, the reader's limits."""
    return {
        "options": opts.model_dump(exclude={"mode"}),
        "files": {k: str(v.path) for k, v in up.files.items()},
        "display_name": up.files["file"].name,
        "display_names": {k: v.name for k, v in up.files.items()},
        "upload_dir": str(up.directory),
        "max_decompressed_bytes": settings.max_decompressed_bytes,
        "max_ratio": settings.max_ratio,
        "ratio_floor_bytes": settings.ratio_floor_bytes,
        "max_cells": settings.max_cells,
    }


class Admission:
    """Queued + running jobs and synchronous requests in progress share one cap,
    ``max_queued_jobs``. The lock makes "count, then create" one step (no overshoot)."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.lock = asyncio.Lock()
        self.sync_inflight = 0

    async def _load(self) -> int:
        return int(await asyncio.to_thread(self.store.active)) + self.sync_inflight

    def _queue_full(self, n: int) -> Problem:
        return Problem(
            429,
            f"the server is busy ({n} jobs and synchronous requests queued or running; the "
            f"limit is {self.settings.max_queued_jobs}); retry later",
            kind="queue-full",
            headers={"Retry-After": str(self.settings.retry_after_s)},
        )

    async def admit(self) -> None:
        """429 when the cap is reached: at once, before the upload is read, and again (under
        the lock) when the request takes its slot."""
        n = await self._load()
        if n >= self.settings.max_queued_jobs:
            raise self._queue_full(n)

    @contextlib.asynccontextmanager
    async def sync_slot(self) -> AsyncIterator[None]:
        """One synchronous request in progress (429 when the cap is reached)."""
        async with self.lock:  # count and take the slot in one step
            await self.admit()
            self.sync_inflight += 1
        try:
            yield
        finally:
            self.sync_inflight -= 1

    async def enqueue(
        self, opts: ScoreOptions, up: Upload, owner: str | None, request_id: str | None
    ) -> JSONResponse:
        """The upload as a queued job (202, ``Location`` = the job); the job owns the upload
        from here (removed here if the job is not created)."""
        try:
            async with self.lock:
                await self.admit()
                job = await asyncio.to_thread(
                    self.store.create, worker_task(opts, up, self.settings),
                    up.files["file"].name, up.total_bytes, owner,
                )  # fmt: skip
        except BaseException:
            up.cleanup()
            raise
        info = job_info(job, self.store)
        # the line that ties a request to its job in the log
        log.info("job queued", extra={"request_id": request_id, "job_id": info.id})
        return JSONResponse(
            info.model_dump(), status_code=202, headers={"Location": info.links["self"]}
        )
