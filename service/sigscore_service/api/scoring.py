"""``POST /v1/score``: small inputs answered at once (scored in a child process), large ones
handed to a job."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from concurrent.futures.process import BrokenProcessPool
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..models import JobInfo
from ..problems import Problem
from ..settings import Settings
from ..supervisor import Dispatcher
from .deps import (
    AdmissionDep,
    CallerDep,
    DispatcherDep,
    MetricsDep,
    RequestIdDep,
    SettingsDep,
)
from .intake import parse_request, worker_task
from .openapi import RESULT_CONTENT, SCORE_BODY, problem_responses
from .results import result_response, wanted_format

router = APIRouter(prefix="/v1", tags=["scoring"])


def _too_large_for_sync(what: str, **limit: int) -> Problem:
    return Problem(
        413,
        f"{what}, more than this server answers synchronously; submit it as a job "
        "(POST /v1/jobs, or mode=auto)",
        kind="too-large-for-sync",
        **limit,
    )


async def _run_sync(d: Dispatcher, task: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The task's answer from its own process; 503 (retry, or send a job) when it takes too
    long or the process dies."""
    try:
        fut = d.submit_sync(task)
        return await asyncio.wait_for(asyncio.wrap_future(fut), settings.sync_timeout_s + 30)
    except TimeoutError:
        detail, kind = "scoring took too long for a synchronous answer; submit it", "timeout"
    except BrokenProcessPool:
        detail = "the worker process stopped while scoring (out of memory?); retry, or submit"
        detail, kind = detail + " the matrix", "worker-lost"
    raise Problem(
        503,
        f"{detail} as a job (POST /v1/jobs)",
        kind=kind,
        headers={"Retry-After": str(settings.retry_after_s)},
    )


@router.post(
    "/score", openapi_extra=SCORE_BODY,
    responses={200: {"content": RESULT_CONTENT, "description": "Scores"},
               202: {"model": JobInfo, "description": "Input too large: a job"}}
    | problem_responses(400, 406, 413, 415, 422, 429, 500, 503),
)  # fmt: skip
async def score(
    request: Request,
    d: DispatcherDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    admission: AdmissionDep,
    caller: CallerDep,
    request_id: RequestIdDep,
    format: Annotated[str | None, Query(pattern="^(json|csv|parquet)$")] = None,
) -> Response:
    """Score one matrix (multipart ``file`` or a JSON matrix); small inputs are answered
    at once, large ones become a job (202, ``Location`` = the job). ``mode=sync`` with an
    input above the synchronous limits (``sync_max_bytes``, ``sync_max_cells``) is 413.
    Synchronous requests count against the same cap as jobs (429 when full)."""
    out_fmt = wanted_format(request, format, ("json", "csv", "parquet"))
    await admission.admit()
    opts, up = await parse_request(request, settings, metrics)
    small = up.total_bytes <= settings.sync_max_bytes
    if opts.mode == "async" or (opts.mode == "auto" and not small):
        return await admission.enqueue(opts, up, caller.key_id, request_id)
    result_dir = settings.data_dir / "sync" / uuid.uuid4().hex
    task = worker_task(opts, up, settings) | {
        "result_dir": str(result_dir),
        "timeout_s": settings.sync_timeout_s,
        "sync_max_cells": settings.sync_max_cells,
    }
    to_job = False  # the upload then belongs to the job
    try:
        if not small:
            raise _too_large_for_sync(
                f"the upload has {up.total_bytes:,} bytes, more than {settings.sync_max_bytes:,}",
                limit_bytes=settings.sync_max_bytes,
            )
        async with admission.sync_slot():
            res = await _run_sync(d, task, settings)
        if res.get("too_large_for_sync"):
            if opts.mode == "sync":
                raise _too_large_for_sync(
                    f"the matrix has {int(res['n_cells']):,} values, more than "
                    f"{settings.sync_max_cells:,}",
                    limit_cells=settings.sync_max_cells,
                )
            to_job = True
            return await admission.enqueue(opts, up, caller.key_id, request_id)
        if not res.get("ok"):
            p = res["problem"]
            raise Problem(
                int(p["status"]), str(p["detail"]), kind=p.get("kind"), **(p.get("extra") or {})
            )
        return await asyncio.to_thread(result_response, result_dir, out_fmt)
    finally:
        if not to_job:
            up.cleanup()
        shutil.rmtree(result_dir, ignore_errors=True)
