"""The FastAPI application: a thin HTTP shell over the sigscore library.

Entry point: ``sigscore_service.app:create_app`` (an app factory; ``uvicorn --factory``).
``create_app`` assembles the app: its state (read by the dependencies of :mod:`.api.deps`),
error handlers, middleware and the routers of :mod:`.api`. Scoring happens in worker
processes (:mod:`sigscore_service.supervisor`), never on the event loop.
Research use only; not a diagnostic.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from sigscore import __version__

from . import problems
from .api import jobs, openapi, operations, reference, scoring, web
from .api.deps import ApiKeys, require_api_key
from .api.intake import Admission
from .jobs import JobStore
from .logs import configure_logging
from .metrics import Metrics, route_label
from .server import BODY_TIMED_OUT, EdgeGuard, body_timeout_detail, install_log_filters
from .settings import Settings
from .supervisor import Dispatcher

log = logging.getLogger("sigscore_service")
access_log = logging.getLogger("sigscore_service.access")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service (``uvicorn --factory sigscore_service.app:create_app``)."""
    settings = settings or Settings()
    api_keys = ApiKeys.from_settings(settings)
    # keep only the hashes
    settings = settings.model_copy(update={"api_keys": "", "admin_api_keys": ""})
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings)

    app = FastAPI(
        title="sigscore",
        version=__version__,
        description="Score IL-6/STAT3 sorafenib-resistance programmes in HCC expression data. "
        "Research use only; not a diagnostic.",
        lifespan=_lifespan,
        docs_url=None,  # served offline by api.web (the defaults load from a CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.api_keys = api_keys
    app.state.store = store
    app.state.metrics = Metrics(store.counts)
    app.state.admission = Admission(settings, store)
    app.state.signature_sets = {}
    app.state.dispatcher = None  # started by the lifespan
    app.state.ready = True  # /readyz logs changes of readiness, not every probe

    problems.install(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Location", "Retry-After"],
        )
    _install_edges(app)

    app.include_router(operations.router)
    # the /v1 routers carry their prefix themselves: FastAPI (>= 0.137) puts the route as
    # defined in scope["route"], and /metrics labels requests by its path
    for router in (reference.router, scoring.router, jobs.router):
        app.include_router(
            router,
            dependencies=[Depends(require_api_key)],
            responses=openapi.problem_responses(401, 403, 422),
        )
    app.include_router(web.router(app.title, app.openapi_url or "/openapi.json"))
    openapi.install(app)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings, store = app.state.settings, app.state.store
    # only jobs whose lease lapsed: others may still be running in a live process
    await asyncio.to_thread(store.reclaim_expired)
    await asyncio.to_thread(reference.warm, app.state.signature_sets)
    dispatcher = Dispatcher(settings, store)
    dispatcher.start()
    app.state.dispatcher = dispatcher
    try:
        yield
    finally:
        await dispatcher.stop()
        store.dispose()


STORAGE_ERRNOS = frozenset(
    getattr(errno, n)
    for n in ("EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EIO", "ENFILE", "EMFILE",
              "ENOTDIR", "ESTALE")
    if hasattr(errno, n)
)  # fmt: skip


def _install_edges(app: FastAPI) -> None:
    """Server-edge behaviour: :class:`~.server.EdgeGuard` outermost (so even a 500 page gets
    its headers), client disconnects and slow bodies, storage failures as 503."""
    import sqlalchemy as sa

    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics

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


__all__ = ["create_app"]
