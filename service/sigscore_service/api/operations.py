"""Operations: liveness, readiness and Prometheus metrics (no API key: probes and scrapers)."""

from __future__ import annotations

import contextlib
import errno
import logging
import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import problems
from ..models import Health, Ready
from .deps import CurrentDispatcherDep, MetricsDep, SettingsDep, StoreDep
from .openapi import problem_responses

log = logging.getLogger("sigscore_service")

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (on the event loop: no thread hop under load)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses=problem_responses(503))
def readyz(
    request: Request, settings: SettingsDep, store: StoreDep, dispatcher: CurrentDispatcherDep
) -> JSONResponse:
    """Readiness: the data directory takes a file, the job store answers a real query
    (SQLite: ``PRAGMA quick_check``) and the worker pool is up; else 503 problem+json."""
    store_err = store.check()
    failed = {
        "data_dir": probe_data_dir(settings.data_dir),
        "job_store": store_err and "the job store failed its check",
        "workers": None
        if dispatcher is not None and dispatcher.healthy
        else "the worker pool is not running",
    }
    failed = {k: v for k, v in failed.items() if v}
    state = request.app.state
    was_ready, state.ready = state.ready, not failed
    if not failed:
        if not was_ready:
            log.info("ready again")
        body = Ready(status="ready", job_store=True, workers=True)
        return JSONResponse(body.model_dump())
    if was_ready:  # log the change, not every probe
        log.warning(f"not ready: {failed}" + (f"; job store: {store_err}" if store_err else ""))
    return problems.problem_response(
        503,
        "not ready: " + "; ".join(failed.values()),
        kind="not-ready",
        headers={"Retry-After": str(settings.retry_after_s)},
        **{k: k not in failed for k in ("data_dir", "job_store", "workers")},
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latencies, jobs by state, bytes uploaded."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def probe_data_dir(data_dir: Path) -> str | None:
    """Create, write and remove a probe file where uploads and results go; the reason if not."""
    for d in (data_dir, data_dir / "uploads"):
        probe = d / f".ready-{uuid.uuid4().hex}"
        try:
            d.mkdir(parents=True, exist_ok=True)
            with open(probe, "xb") as fh:
                fh.write(b"ready")
            probe.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                probe.unlink()
            code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            return f"the data directory is not writable ({code}: {exc.strerror})"
    return None
