"""``serve`` and ``worker``: the HTTP service and its job workers (the [service] extra)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ...errors import UsageError, install_hint
from ..errors import handle_errors


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Jobs run at once in this process (0: API only, "
            "jobs run by `sigscore worker`); default SIGSCORE_WORKERS.",
        ),
    ] = None,
) -> None:
    """Start the HTTP service (needs the [service] extra); limits come from SIGSCORE_
    settings (header size and count, head/body read timeouts, keep-alive, connections)."""
    _need_service()
    from sigscore_service.server import serve as run_server

    if workers is not None:  # the app factory reads its settings from the environment
        os.environ["SIGSCORE_WORKERS"] = str(workers)

    # uvicorn (h11) with the header, timeout and connection limits of the SIGSCORE_ settings
    run_server(host, port, log_level)


def _need_service() -> None:
    import importlib.util

    missing = [
        m for m in ("sigscore_service", "uvicorn", "fastapi") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise UsageError(
            f"the HTTP service is not installed (missing: {', '.join(missing)}). "
            f"Install it with: {install_hint('service')}"
        )


@handle_errors
def worker(
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Jobs run at once; default SIGSCORE_WORKERS."),
    ] = None,
) -> None:
    """Run jobs only (no HTTP): claims jobs from the store that SIGSCORE_DATABASE_URL or
    SIGSCORE_DATA_DIR names, like the API processes sharing it. Stops on SIGTERM/Ctrl-C,
    handing unfinished jobs back."""
    _need_service()
    from sigscore_service.settings import load_settings
    from sigscore_service.supervisor import run_workers

    s = load_settings()
    run_workers(s if workers is None else s.model_copy(update={"workers": workers}))
