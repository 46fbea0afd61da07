"""RFC 9457 problem details (``application/problem+json``) for every error the service sends.

Library errors (:class:`sigscore.errors.SigscoreError`) keep their message — the same text
the CLI prints — and map to ``http_status``; their ``detail`` dict (e.g. the coverage table
of a :class:`~sigscore.errors.CoverageError`) is added as extension members.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from sigscore.errors import SigscoreError
from sigscore.io.results import json_safe

PROBLEM_TYPE = "https://sigscore.invalid/problems/"
log = logging.getLogger("sigscore_service")


class Problem(Exception):
    """An error to send as a problem document (raise it from handlers)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(status)
        self.headers = headers or {}
        self.extra = extra


def _slug(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-")
    except ValueError:
        return "error"


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response with type, title, status, detail, instance."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (kind or _slug(status)),
        "title": _phrase(status),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    for k, v in extra.items():
        if k not in body and v is not None:
            body[k] = json_safe(v)  # NaN → null, numpy → Python, other objects → text
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_to_problem(exc: SigscoreError) -> dict[str, Any]:
    """The status, kind and extension members of a library error (also used for job errors)."""
    kind = {
        "UnsupportedFormatError": "unsupported-format",
        "CoverageError": "coverage",
        "SignatureError": "signature",
        "UsageError": "invalid-parameters",
        "InputError": "malformed-input",
    }.get(type(exc).__name__, "input")
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    extra = json_safe(detail)  # NaN in a coverage table → null, value by value
    # advice names form fields (genes_axis=rows), not Python keywords or CLI flags
    detail_text = exc.message_for("http")
    return {"status": int(exc.http_status), "kind": kind, "detail": detail_text, "extra": extra}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, kind=exc.kind, request=request, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(SigscoreError)
    async def _sigscore(request: Request, exc: SigscoreError) -> JSONResponse:
        p = error_to_problem(exc)
        return problem_response(
            p["status"], p["detail"], kind=p["kind"], request=request, **p["extra"]
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        msg = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(
            422,
            f"invalid request: {msg}",
            kind="invalid-parameters",
            request=request,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code, str(exc.detail), request=request, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error", extra={"path": request.url.path})
        return problem_response(
            500,
            "internal error; the request id identifies it in the server log",
            kind="internal",
            request=request,
        )
