"""The FastAPI application: a thin HTTP shell over the sigscore library.

Entry point: ``sigscore_service.app:create_app`` (an app factory; ``uvicorn --factory``).
Scoring happens in worker processes (:mod:`sigscore_service.jobs`), never on the event loop.
Research use only; not a diagnostic.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from sigscore import __version__

from . import problems
from .api import web
from .jobs import JobStore
from .metrics import Metrics, route_label
from .models import (
    Health,
    JobInfo,
    MethodInfo,
    ProblemModel,
    Ready,
    ScoreJSON,
    ScoreOptions,
    ScoreResult,
    SignatureList,
    SignatureSummary,
)
from .problems import Problem
from .server import BODY_TIMED_OUT, EdgeGuard, body_timeout_detail, install_log_filters
from .settings import Settings
from .supervisor import Dispatcher
from .uploads import Upload, new_upload_dir, parse_json, receive_json, receive_multipart

log = logging.getLogger("sigscore_service")
access_log = logging.getLogger("sigscore_service.access")

MEDIA = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "html": "text/html",
}


# --------------------------------------------------------------------------- logging
class JsonFormatter(logging.Formatter):
    """One JSON object per line; only fields we put there (never request bodies)."""

    FIELDS = ("request_id", "method", "path", "status", "duration_ms", "job_id", "bytes")

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for f in self.FIELDS:
            if hasattr(record, f):
                doc[f] = getattr(record, f)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("sigscore_service")
    if not any(getattr(h, "_sigscore", False) for h in logger.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(JsonFormatter())
        h._sigscore = True  # type: ignore[attr-defined]
        logger.addHandler(h)
        logger.propagate = False
    logger.setLevel(level.upper())


# --------------------------------------------------------------------------- helpers
def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemModel, "content": {"application/problem+json": {}},
           "description": desc}
    for code, desc in {
        400: "Malformed input", 401: "API key missing", 403: "API key not valid",
        404: "Not found", 406: "Format not available", 409: "Not done yet",
        413: "Too large",
        415: "Unsupported format", 422: "Invalid parameters or too little gene coverage",
        429: "Too many queued jobs", 500: "Internal error", 503: "Not ready",
    }.items()
}  # fmt: skip


def _problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: PROBLEM_RESPONSES[c] for c in codes}


def _fix_problem_content(schema: dict[str, Any]) -> None:
    """Problem responses are served as application/problem+json only."""
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for code, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                if code.isdigit() and int(code) >= 400 and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")


def _wanted_format(request: Request, fmt: str | None, allowed: tuple[str, ...]) -> str:
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


# --------------------------------------------------------------------------- auth
def key_id(digest: bytes) -> str:
    """The owner id stored with a job: a short hash of the key's SHA-256 (never the key)."""
    return hashlib.sha256(b"sigscore-job-owner\0" + digest).hexdigest()[:16]


def _auth_dependency(hashes: frozenset[bytes], admin: frozenset[bytes] = frozenset()) -> Any:
    """Checks the key; sets ``request.state.key_id`` (None without keys) and ``is_admin``."""
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    hashes = hashes | admin

    # defaults (not Annotated): evaluated here, so the closure's locals resolve
    async def check(
        request: Request,
        key: str | None = Depends(header),
        cred: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        request.state.key_id, request.state.is_admin = None, False
        if not hashes:
            return
        given = key or (cred.credentials if cred else None)
        if not given:
            raise Problem(
                401,
                "an API key is required: send it in the X-API-Key header",
                kind="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="sigscore"'},
            )
        digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
        # compare against every stored hash in constant time (no early exit)
        ok = is_admin = False
        for h in hashes:
            ok |= hmac.compare_digest(digest, h)
        for h in admin:
            is_admin |= hmac.compare_digest(digest, h)
        if not ok:
            raise Problem(403, "the API key is not valid", kind="forbidden")
        request.state.key_id, request.state.is_admin = key_id(digest), is_admin

    return check


# --------------------------------------------------------------------------- the app
def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service (``uvicorn --factory sigscore_service.app:create_app``)."""
    settings = settings or Settings()
    key_hashes, admin_hashes = settings.api_key_hashes(), settings.admin_key_hashes()
    # keep only the hashes
    settings = settings.model_copy(update={"api_keys": "", "admin_api_keys": ""})
    _configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings)
    metrics = Metrics(store.counts)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # only jobs whose lease lapsed: others may still be running in a live process
        await asyncio.to_thread(store.reclaim_expired)
        await asyncio.to_thread(_preload)
        dispatcher = Dispatcher(settings, store)
        dispatcher.start()
        state["dispatcher"] = dispatcher
        try:
            yield
        finally:
            await dispatcher.stop()
            store.dispose()

    app = FastAPI(
        title="sigscore",
        version=__version__,
        description="Score IL-6/STAT3 sorafenib-resistance programmes in HCC expression data. "
        "Research use only; not a diagnostic.",
        lifespan=lifespan,
        docs_url=None,  # served offline by api.web (the defaults load from a CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    problems.install(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Location", "Retry-After"],
        )

    def observe(scope: dict[str, Any], status: int, seconds: float) -> None:
        """Metrics and the access line of a request (called once per request by EdgeGuard,
        a plain ASGI middleware: BaseHTTPMiddleware costs a task group per body read)."""
        route = route_label(scope, app.router.routes)
        method = scope["method"]
        metrics.requests.labels(method, route, str(status)).inc()
        metrics.latency.labels(method, route).observe(seconds)
        # the only line a disconnect gets (no traceback), and it is not counted as a 500
        msg = "client disconnected before the request was read" if status == 499 else "request"
        access_log.info(msg, extra={
            "request_id": scope["state"].get("request_id"), "method": method, "path": route,
            "status": status, "duration_ms": round(seconds * 1000, 2)})  # fmt: skip

    _install_edges(app, settings, observe)

    def dispatcher() -> Dispatcher:
        d = state.get("dispatcher")
        if d is None or not d.healthy:
            raise Problem(
                503,
                "the worker pool is not running",
                kind="not-ready",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        return d

    # ---------------------------------------------------------------- operations
    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the process answers (on the event loop: no thread hop under load)."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Ready,
        tags=["operations"],
        responses=_problem_responses(503),
    )
    def readyz() -> JSONResponse:
        """Readiness: the data directory takes a file, the job store answers a real query
        (SQLite: ``PRAGMA quick_check``) and the worker pool is up; else 503 problem+json."""
        d = state.get("dispatcher")
        store_err = store.check()
        failed = {
            "data_dir": _probe_data_dir(settings.data_dir),
            "job_store": store_err and "the job store failed its check",
            "workers": None if d is not None and d.healthy else "the worker pool is not running",
        }
        failed = {k: v for k, v in failed.items() if v}
        was_ready, state["ready"] = state.get("ready", True), not failed
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

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        """Prometheus metrics: requests, latencies, jobs by state, bytes uploaded."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---------------------------------------------------------------- /v1
    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(_auth_dependency(key_hashes, admin_hashes))],
        responses=_problem_responses(401, 403, 422),
    )

    @v1.get("/methods", response_model=list[MethodInfo], tags=["reference"])
    def methods() -> list[MethodInfo]:
        """The scoring methods with their defaults and references."""
        from sigscore.scoring.methods import METHOD_NAMES, get_method

        out = []
        for name in METHOD_NAMES:
            spec = get_method(name)
            out.append(MethodInfo(
                name=spec.name, summary=spec.summary, reference=spec.reference,
                defaults=json.loads(json.dumps(dict(spec.defaults), default=str)),
                sample_independent=bool(spec.sample_independent)))  # fmt: skip
        return out

    sigsets: dict[str, Any] = {}

    def _sigset(tier: str) -> Any:
        # the shipped files do not change while the server runs: parse each tier once
        if tier not in sigsets:
            from sigscore.signatures import load_signatures

            sigsets[tier] = load_signatures(tier)
        return sigsets[tier]

    @v1.get(
        "/signatures",
        response_model=SignatureList,
        tags=["reference"],
        responses=_problem_responses(422),
    )
    def signatures(
        tier: Annotated[str, Query(pattern="^(core|extended)$")] = "extended",
    ) -> SignatureList:
        """The shipped signature modules of a tier."""
        s = _sigset(tier)
        return SignatureList(tier=tier, content_hash=s.content_hash, signatures=[
            SignatureSummary(name=n, n_genes=len(s[n]), directional=bool(s[n].is_directional))
            for n in s.names])  # fmt: skip

    @v1.get(
        "/signatures/{name}",
        tags=["reference"],
        responses={
            200: {
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
                "description": "The module as JSON, or GMT text",
            }
        }
        | _problem_responses(404, 406, 422),
    )
    def signature(
        request: Request,
        name: str,
        tier: Annotated[str, Query(pattern="^(core|extended)$")] = "extended",
        format: Annotated[str | None, Query(pattern="^(json|gmt)$")] = None,
    ) -> Response:
        """One module, as JSON or GMT (``?format=gmt`` or ``Accept: text/plain``)."""
        s = _sigset(tier)
        if name not in s.names:
            raise Problem(
                404,
                f"no signature named {name!r} in tier {tier!r}; available: {', '.join(s.names)}",
                kind="not-found",
            )
        wants_gmt = format == "gmt" or (
            format is None
            and "text/plain" in request.headers.get("accept", "")
            and "application/json" not in request.headers.get("accept", "")
        )
        one = s.subset([name])
        if wants_gmt:
            return PlainTextResponse(one.to_gmt())
        return JSONResponse(json.loads(json.dumps(s[name].to_dict(), default=str)))

    # ---------------------------------------------------------------- scoring
    async def _parse_request(request: Request) -> tuple[ScoreOptions, Upload]:
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

    def _task(opts: ScoreOptions, up: Upload) -> dict[str, Any]:
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

    # Admission: queued + running jobs and synchronous requests in progress share one cap,
    # max_queued_jobs. The lock makes "count, then create" one step (no overshoot).
    admission = asyncio.Lock()
    state["sync_inflight"] = 0

    async def _load() -> int:
        return int(await asyncio.to_thread(store.active)) + int(state["sync_inflight"])

    def _queue_full(n: int) -> Problem:
        return Problem(
            429,
            f"the server is busy ({n} jobs and synchronous requests queued or running; the "
            f"limit is {settings.max_queued_jobs}); retry later",
            kind="queue-full",
            headers={"Retry-After": str(settings.retry_after_s)},
        )

    async def _admit_early() -> None:
        """A full server refuses at once, before the upload is read."""
        n = await _load()
        if n >= settings.max_queued_jobs:
            raise _queue_full(n)

    @contextlib.asynccontextmanager
    async def _sync_slot() -> AsyncIterator[None]:
        async with admission:  # count and take the slot in one step
            n = await _load()
            if n >= settings.max_queued_jobs:
                raise _queue_full(n)
            state["sync_inflight"] += 1
        try:
            yield
        finally:
            state["sync_inflight"] -= 1

    def _too_large_for_sync(what: str, **limit: int) -> Problem:
        return Problem(
            413,
            f"{what}, more than this server answers synchronously; submit it as a job "
            "(POST /v1/jobs, or mode=auto)",
            kind="too-large-for-sync",
            **limit,
        )

    async def _run_sync(d: Dispatcher, task: dict[str, Any]) -> dict[str, Any]:
        try:
            fut = d.submit_sync(task)
            return await asyncio.wait_for(asyncio.wrap_future(fut), settings.sync_timeout_s + 30)
        except TimeoutError:
            raise Problem(
                503,
                "scoring took too long for a synchronous answer; submit it as a job "
                "(POST /v1/jobs)",
                kind="timeout",
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None
        except BrokenProcessPool:
            raise Problem(
                503,
                "the worker process stopped while scoring (out of memory?); retry, or submit "
                "the matrix as a job (POST /v1/jobs)",
                kind="worker-lost",
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None

    async def _enqueue(request: Request, opts: ScoreOptions, up: Upload) -> JSONResponse:
        try:
            async with admission:
                n = await _load()
                if n >= settings.max_queued_jobs:
                    raise _queue_full(n)
                job = await asyncio.to_thread(
                    store.create, _task(opts, up), up.files["file"].name, up.total_bytes,
                    getattr(request.state, "key_id", None),
                )  # fmt: skip
        except BaseException:
            up.cleanup()
            raise
        info = _job_info(job)
        return JSONResponse(
            info.model_dump(), status_code=202, headers={"Location": info.links["self"]}
        )

    def _job_info(job: dict[str, Any]) -> JobInfo:
        rdir = store.result_dir(job["id"])
        progress, stage = 0.0, None
        if job["state"] in ("done",):
            progress, stage = 1.0, "done"
        elif job["state"] == "running":
            with contextlib.suppress(OSError, ValueError):
                p = json.loads((rdir / "progress.json").read_text())
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

    score_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _multipart_schema()},
                "application/json": {"schema": {"$ref": "#/components/schemas/ScoreJSON"}},
            },
        }
    }
    result_content = {
        "application/json": {"schema": {"$ref": "#/components/schemas/ScoreResult"}},
        "text/csv": {"schema": {"type": "string"}},
        MEDIA["parquet"]: {"schema": {"type": "string", "format": "binary"}},
    }

    @v1.post(
        "/score", tags=["scoring"], openapi_extra=score_body,
        responses={200: {"content": result_content, "description": "Scores"},
                   202: {"model": JobInfo, "description": "Input too large: a job"}}
        | _problem_responses(400, 406, 413, 415, 422, 429, 500, 503),
    )  # fmt: skip
    async def score(
        request: Request,
        format: Annotated[str | None, Query(pattern="^(json|csv|parquet)$")] = None,
    ) -> Response:
        """Score one matrix (multipart ``file`` or a JSON matrix); small inputs are answered
        at once, large ones become a job (202, ``Location`` = the job). ``mode=sync`` with an
        input above the synchronous limits (``sync_max_bytes``, ``sync_max_cells``) is 413.
        Synchronous requests count against the same cap as jobs (429 when full)."""
        d = dispatcher()
        out_fmt = _wanted_format(request, format, ("json", "csv", "parquet"))
        await _admit_early()
        opts, up = await _parse_request(request)
        small = up.total_bytes <= settings.sync_max_bytes
        if opts.mode == "async" or (opts.mode == "auto" and not small):
            return await _enqueue(request, opts, up)
        result_dir = settings.data_dir / "sync" / uuid.uuid4().hex
        task = _task(opts, up) | {
            "result_dir": str(result_dir),
            "timeout_s": settings.sync_timeout_s,
            "sync_max_cells": settings.sync_max_cells,
        }
        to_job = False  # the upload then belongs to the job
        try:
            if not small:
                raise _too_large_for_sync(
                    f"the upload has {up.total_bytes:,} bytes, more than "
                    f"{settings.sync_max_bytes:,}",
                    limit_bytes=settings.sync_max_bytes,
                )
            async with _sync_slot():
                res = await _run_sync(d, task)
            if res.get("too_large_for_sync"):
                if opts.mode == "sync":
                    raise _too_large_for_sync(
                        f"the matrix has {int(res['n_cells']):,} values, more than "
                        f"{settings.sync_max_cells:,}",
                        limit_cells=settings.sync_max_cells,
                    )
                to_job = True
                return await _enqueue(request, opts, up)
            if not res.get("ok"):
                p = res["problem"]
                raise Problem(
                    int(p["status"]), str(p["detail"]), kind=p.get("kind"), **(p.get("extra") or {})
                )
            return await asyncio.to_thread(_result_response, result_dir, out_fmt)
        finally:
            if not to_job:
                up.cleanup()
            shutil.rmtree(result_dir, ignore_errors=True)

    @v1.post(
        "/jobs", tags=["jobs"], status_code=202, openapi_extra=score_body,
        responses={202: {"model": JobInfo, "description": "The job"}}
        | _problem_responses(400, 413, 415, 422, 429, 503),
    )  # fmt: skip
    async def submit_job(request: Request) -> JSONResponse:
        """Submit a matrix as a job; poll ``GET /v1/jobs/{id}``."""
        dispatcher()
        await _admit_early()
        opts, up = await _parse_request(request)
        return await _enqueue(request, opts, up)

    def _get_job(request: Request, job_id: str) -> dict[str, Any]:
        """The job, if this caller may see it: with API keys, only the key that created it
        (and admin keys) do; to any other key it does not exist (404, not 403)."""
        job = store.get(job_id) if len(job_id) == 32 and job_id.isalnum() else None
        caller = getattr(request.state, "key_id", None)
        if job is not None and caller is not None and not request.state.is_admin:
            job = job if job.get("owner") == caller else None
        if job is None:
            raise Problem(404, f"no job {job_id!r} (unknown, deleted or expired)", kind="not-found")
        return job

    @v1.get(
        "/jobs/{job_id}", response_model=JobInfo, tags=["jobs"], responses=_problem_responses(404)
    )
    def get_job(request: Request, job_id: str) -> JobInfo:
        """State (queued/running/done/failed), progress, and the reason when failed."""
        return _job_info(_get_job(request, job_id))

    @v1.get("/jobs/{job_id}/result", tags=["jobs"],
            responses={200: {"content": result_content | {"text/html": {"schema": {"type": "string"}}},
                             "description": "The result"}}
            | _problem_responses(404, 406, 409))  # fmt: skip
    def job_result(
        request: Request,
        job_id: str,
        format: Annotated[str | None, Query(pattern="^(json|csv|parquet|html)$")] = None,
    ) -> Response:
        """The result as JSON, CSV, Parquet or the HTML report (``?format=`` or ``Accept``)."""
        job = _get_job(request, job_id)
        if job["state"] != "done":
            raise Problem(
                409,
                f"job {job_id} is {job['state']}; the result exists once it is done",
                kind="not-done",
                state=job["state"],
            )
        fmt = _wanted_format(request, format, ("json", "csv", "parquet", "html"))
        return _result_response(store.result_dir(job_id), fmt)

    @v1.delete("/jobs/{job_id}", status_code=204, tags=["jobs"], responses=_problem_responses(404))
    def delete_job(request: Request, job_id: str) -> Response:
        """Delete a job and its files (a running job's result is discarded)."""
        _get_job(request, job_id)
        if (d := state.get("dispatcher")) is not None:
            d.cancel(job_id)  # ours: killed now; another process's: on its next tick
        store.delete(job_id)
        return Response(status_code=204)

    app.include_router(v1)
    app.include_router(web.router(app.title, app.openapi_url or "/openapi.json"))

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ScoreJSON, ScoreResult):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for k, v in js.pop("$defs", {}).items():
                comps.setdefault(k, v)
            comps[model.__name__] = js
        _fix_problem_content(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


STORAGE_ERRNOS = frozenset(
    getattr(errno, n)
    for n in ("EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EIO", "ENFILE", "EMFILE",
              "ENOTDIR", "ESTALE")
    if hasattr(errno, n)
)  # fmt: skip


def _probe_data_dir(data_dir: Path) -> str | None:
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


def _install_edges(app: FastAPI, settings: Settings, observe: Any) -> None:
    """Server-edge behaviour: :class:`~.server.EdgeGuard` outermost (so even a 500 page gets
    its headers), client disconnects and slow bodies, storage failures as 503."""
    import sqlalchemy as sa

    install_log_filters()
    build = app.build_middleware_stack

    def edged() -> Any:
        return EdgeGuard(build(), settings, observe)

    app.build_middleware_stack = edged  # type: ignore[method-assign]

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
        # the upload code has already removed the upload's folder and closed its files
        if getattr(request.state, BODY_TIMED_OUT, False):
            return problems.problem_response(
                408,
                body_timeout_detail(settings),
                kind="request-timeout",
                request=request,
                headers={"Connection": "close"},
            )
        # nobody reads this: the client has gone (nginx's 499, for the log and metrics)
        return Response(status_code=499)

    async def _storage(request: Request, exc: Exception) -> Response:
        if isinstance(exc, OSError) and exc.errno not in STORAGE_ERRNOS:
            raise exc  # not a storage failure: an internal error (500, logged)
        if isinstance(exc, sa.exc.IntegrityError | sa.exc.ProgrammingError | sa.exc.DataError):
            raise exc  # a bug, not the storage
        what = (f"{errno.errorcode.get(exc.errno or 0, '')} {exc.strerror}"
                if isinstance(exc, OSError) else type(exc).__name__)  # fmt: skip
        log.error(
            f"storage failure ({what}): {str(exc).splitlines()[0][:300]}",
            extra={"path": request.url.path},
        )
        return problems.problem_response(
            503,
            f"the server's storage is failing ({what.strip()}); retry later",
            kind="storage-unavailable",
            request=request,
            headers={"Retry-After": str(settings.retry_after_s)},
        )

    for exc_type in (OSError, sa.exc.OperationalError, sa.exc.DatabaseError):
        app.add_exception_handler(exc_type, _storage)


def _preload() -> None:
    """Import the method registry and parse the shipped signatures once, before serving."""
    from sigscore.scoring.methods import METHOD_NAMES, get_method
    from sigscore.signatures import load_signatures

    for name in METHOD_NAMES:
        get_method(name)
    for tier in ("core", "extended"):
        load_signatures(tier)


def _invalid(exc: ValidationError) -> Problem:
    errors = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
    msg = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors[:5])
    return Problem(422, f"invalid parameters: {msg}", kind="invalid-parameters", errors=errors)


def _write_inline(req: ScoreJSON, up: Upload) -> None:
    """An inline JSON matrix → CSV in the upload folder (samples as rows, genes as columns)."""
    import numpy as np
    import pandas as pd

    from .uploads import SavedFile

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


def _result_response(result_dir: Path, fmt: str) -> Response:
    path = (
        result_dir
        / {
            "json": "result.json",
            "csv": "result.csv",
            "parquet": "result.parquet",
            "html": "report.html",
        }[fmt]
    )
    if not path.exists():
        raise Problem(
            406 if fmt == "html" else 404,
            f"no {fmt} result for this job"
            + (" (the HTML report is not available on this server)" if fmt == "html" else ""),
            kind="not-available",
        )
    if fmt == "json":
        return Response(path.read_bytes(), media_type="application/json")
    if fmt in ("csv", "html"):
        return Response(path.read_bytes(), media_type=MEDIA[fmt])
    return Response(path.read_bytes(), media_type=MEDIA["parquet"])


def _multipart_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "The expression matrix."},
        "signatures": {
            "type": "string",
            "format": "binary",
            "description": "Optional signature file (.gmt/.yaml/.json).",
        },
        "definition": {
            "type": "string",
            "format": "binary",
            "description": "Optional index definition YAML.",
        },
        "reference": {
            "type": "string",
            "format": "binary",
            "description": "Optional reference cohort JSON.",
        },
    }
    opt = ScoreOptions.model_json_schema()
    for k, v in opt["properties"].items():
        v = dict(v)
        if k == "params":
            v = {"type": "string", "description": "Method parameters as a JSON object."}
        props[k] = v
    return {"type": "object", "properties": props, "required": ["file"]}


__all__ = ["create_app"]
