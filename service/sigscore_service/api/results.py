"""How a job and a result look to a client: the job document, the result in the format
asked for (``?format=`` or ``Accept``)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from .. import problems
from ..jobs import JobStore
from ..models import JobInfo
from ..problems import Problem
from .openapi import MEDIA

RESULT_FILES = {
    "json": "result.json",
    "csv": "result.csv",
    "parquet": "result.parquet",
    "html": "report.html",
}


def wanted_format(request: Request, fmt: str | None, allowed: tuple[str, ...]) -> str:
    """``fmt`` if given (406 when not allowed), else the first allowed one ``Accept`` names,
    else the first allowed one."""
    if fmt is not None:
        if fmt not in allowed:
            raise Problem(
                406,
                f"format {fmt!r} is not available; use one of {', '.join(allowed)}",
                kind="not-acceptable",
            )
        return fmt
    accept = request.headers.get("accept", "")
    for f in allowed:
        if MEDIA[f] in accept:
            return f
    return allowed[0]


def result_response(result_dir: Path, fmt: str) -> Response:
    """The result file of ``fmt`` (404, or 406 for a report this server does not write)."""
    path = result_dir / RESULT_FILES[fmt]
    if not path.exists():
        raise Problem(
            406 if fmt == "html" else 404,
            f"no {fmt} result for this job"
            + (" (the HTML report is not available on this server)" if fmt == "html" else ""),
            kind="not-available",
        )
    return Response(path.read_bytes(), media_type=MEDIA[fmt])


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def job_info(job: dict[str, Any], store: JobStore) -> JobInfo:
    """The client's view of a job row: state, progress, the reason when failed, links."""
    progress, stage = 0.0, None
    if job["state"] == "done":
        progress, stage = 1.0, "done"
    elif job["state"] == "running":
        with contextlib.suppress(OSError, ValueError):
            p = json.loads((store.result_dir(job["id"]) / "progress.json").read_text())
            progress, stage = min(1.0, max(0.0, float(p["fraction"]))), str(p["stage"])
    error = None
    if job.get("error"):
        e = json.loads(job["error"])
        error = {
            "status": e.get("status"),
            "type": problems.PROBLEM_TYPE + str(e.get("kind")),
            "detail": e.get("detail"),
            **(e.get("extra") or {}),
        }
    summary = json.loads(job["summary"]) if job.get("summary") else {}
    base = f"/v1/jobs/{job['id']}"
    links = {"self": base}
    if job["state"] == "done":
        links["result"] = base + "/result"
    return JobInfo(
        id=job["id"], state=job["state"], created_at=_iso(job["created_at"]) or "",
        started_at=_iso(job.get("started_at")), finished_at=_iso(job.get("finished_at")),
        expires_at=_iso(job.get("expires_at")), attempts=int(job.get("attempts") or 0),
        progress=progress, stage=stage, input_name=job.get("input_name"),
        input_bytes=job.get("input_bytes"), error=error,
        result_formats=list(summary.get("formats", [])), links=links,
    )  # fmt: skip
