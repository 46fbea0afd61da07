"""The browser page at ``/`` and the offline API docs at ``/docs`` and ``/redoc``.

The page is plain HTML, CSS and JavaScript from ``sigscore_service/static`` (no build step);
it talks to the same ``/v1`` API as any client. Swagger UI and ReDoc load their scripts from
the ``fastapi_offline`` package's copies, so the docs render without a network. Everything
here is an :class:`~fastapi.routing.APIRoute` (not a ``Mount``), so ``/metrics`` names each
route by its template.

Content-Security-Policy: the page allows scripts and styles from this origin only (no inline
script or style); the docs pages allow their one inline start-up script by its hash, and
inline styles (Swagger UI and ReDoc set element styles).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..problems import Problem

STATIC = Path(__file__).resolve().parent.parent / "static"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: media types of the files the page and the docs ship (anything else is not served)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _docs_assets() -> Path | None:
    """Where the offline Swagger UI / ReDoc bundles are (``fastapi_offline``), if installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if folder.is_dir() else None


@functools.cache
def _listing(folder: Path) -> dict[str, Path]:
    """File name → path for the servable files of ``folder`` (read once; fixed at install)."""
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix in _TYPES}


def _file(folder: Path | None, name: str, csp: str | None = None) -> Response:
    # only names listed from the folder: no path from the request reaches the file system
    path = _listing(folder).get(name) if folder is not None else None
    if path is None:
        raise Problem(404, f"no file {name!r} here", kind="not-found")
    headers = {"Cache-Control": "no-cache"}  # revalidated (ETag), so an upgrade shows at once
    if csp:
        headers["Content-Security-Policy"] = csp
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=headers)


@functools.cache
def _redoc_bundle(path: Path) -> bytes:
    """ReDoc's bundle with its one remote image (the "Redocly" logo under the menu) pointed at
    this server's icon: offline, and no request for another host is even attempted."""
    return path.read_bytes().replace(_REDOC_LOGO, b"/ui/icon.svg")


def _with_script_hashes(page: HTMLResponse, extra: str) -> HTMLResponse:
    """Add a CSP that allows the page's inline scripts by their SHA-256, nothing else inline."""
    html = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
        f"base-uri 'none'; frame-ancestors 'none'{extra}"
    )
    return page


def _root(request: Request) -> str:
    return str(request.scope.get("root_path") or "").rstrip("/")


def router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """The page, its assets and the offline docs (``title``: the docs pages' title)."""
    r = APIRouter(include_in_schema=False)
    docs = _docs_assets()

    @r.get("/")
    def page() -> Response:
        """The upload page (research use only)."""
        return _file(STATIC, "index.html", PAGE_CSP)

    @r.get("/ui/{name}")
    def asset(name: str) -> Response:
        """The page's scripts, styles and icon."""
        return _file(STATIC, name, PAGE_CSP)

    @r.get("/docs/assets/{name}")
    def docs_asset(name: str) -> Response:
        """Swagger UI and ReDoc bundles, from the ``fastapi_offline`` package."""
        if name == "redoc.standalone.js" and docs is not None:
            return Response(
                _redoc_bundle(docs / name),
                media_type=_TYPES[".js"],
                headers={"Cache-Control": "max-age=3600"},
            )
        return _file(docs, name)

    def _need_docs() -> None:
        if docs is None:
            raise Problem(
                404,
                "the API docs need the fastapi-offline package (pip install "
                "'sigscore[service]'); the schema is at " + openapi_url,
                kind="not-found",
            )

    @r.get("/docs")
    def swagger(request: Request) -> HTMLResponse:
        """Swagger UI, offline."""
        _need_docs()
        root = _root(request)  # behind a proxy that strips a path prefix
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
            # no badge that sends the schema to an online validator
            swagger_ui_parameters={"validatorUrl": None},
        )
        return _with_script_hashes(page, "")

    @r.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        """ReDoc, offline (no web fonts)."""
        _need_docs()
        root = _root(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} API",
            redoc_js_url=f"{root}/docs/assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs/assets/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc runs its search index in a worker started from a blob: URL
        return _with_script_hashes(page, "; worker-src 'self' blob:")

    return r


__all__ = ["PAGE_CSP", "STATIC", "router"]
