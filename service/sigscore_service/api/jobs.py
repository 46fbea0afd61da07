"""``/v1/jobs``: submit a matrix as a job, poll it, fetch its result, delete it.

With API keys, a job belongs to the key that created it: other keys (admin keys excepted)
get 404 for it, as for a job that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ..jobs import JobStore
from ..models import JobInfo
from ..problems import Problem
from .deps import (
    AdmissionDep,
    Caller,
    CallerDep,
    CurrentDispatcherDep,
    DispatcherDep,
    MetricsDep,
    RequestIdDep,
    SettingsDep,
    StoreDep,
)
from .intake import parse_request
from .openapi import RESULT_CONTENT, SCORE_BODY, problem_responses
from .results import job_info, result_response, wanted_format

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _visible_job(store: JobStore, caller: Caller, job_id: str) -> dict[str, Any]:
    """The job, if this caller may see it: with API keys, only the key that created it
    (and admin keys) do; to any other key it does not exist (404, not 403)."""
    job = store.get(job_id) if len(job_id) == 32 and job_id.isalnum() else None
    if job is not None and caller.key_id is not None and not caller.is_admin:
        job = job if job.get("owner") == caller.key_id else None
    if job is None:
        raise Problem(404, f"no job {job_id!r} (unknown, deleted or expired)", kind="not-found")
    return job


@router.post(
    "", status_code=202, openapi_extra=SCORE_BODY,
    responses={202: {"model": JobInfo, "description": "The job"}}
    | problem_responses(400, 413, 415, 422, 429, 503),
)  # fmt: skip
async def submit_job(
    request: Request,
    _: DispatcherDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    admission: AdmissionDep,
    caller: CallerDep,
    request_id: RequestIdDep,
) -> JSONResponse:
    """Submit a matrix as a job; poll ``GET /v1/jobs/{id}``."""
    await admission.admit()
    opts, up = await parse_request(request, settings, metrics)
    return await admission.enqueue(opts, up, caller.key_id, request_id)


@router.get("/{job_id}", response_model=JobInfo, responses=problem_responses(404))
def get_job(job_id: str, store: StoreDep, caller: CallerDep) -> JobInfo:
    """State (queued/running/done/failed), progress, and the reason when failed."""
    return job_info(_visible_job(store, caller, job_id), store)


@router.get(
    "/{job_id}/result",
    responses={200: {"content": RESULT_CONTENT | {"text/html": {"schema": {"type": "string"}}},
                     "description": "The result"}}
    | problem_responses(404, 406, 409),
)  # fmt: skip
def job_result(
    request: Request,
    job_id: str,
    store: StoreDep,
    caller: CallerDep,
    format: Annotated[str | None, Query(pattern="^(json|csv|parquet|html)$")] = None,
) -> Response:
    """The result as JSON, CSV, Parquet or the HTML report (``?format=`` or ``Accept``)."""
    job = _visible_job(store, caller, job_id)
    if job["state"] != "done":
        raise Problem(
            409,
            f"job {job_id} is {job['state']}; the result exists once it is done",
            kind="not-done",
            state=job["state"],
        )
    fmt = wanted_format(request, format, ("json", "csv", "parquet", "html"))
    return result_response(store.result_dir(job_id), fmt)


@router.delete("/{job_id}", status_code=204, responses=problem_responses(404))
def delete_job(
    job_id: str, store: StoreDep, caller: CallerDep, dispatcher: CurrentDispatcherDep
) -> Response:
    """Delete a job and its files (a running job's result is discarded)."""
    _visible_job(store, caller, job_id)
    if dispatcher is not None:
        dispatcher.cancel(job_id)  # ours: killed now; another process's: on its next tick
    store.delete(job_id)
    return Response(status_code=204)
