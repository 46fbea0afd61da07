"""The edges of the HTTP server: how ``sigscore serve`` runs the app, and the limits it enforces.

Stack: uvicorn with its **h11** protocol (not httptools, which has no cap on header size).
What each limit is enforced by (all set by :class:`~sigscore_service.settings.Settings`):

==========================  ===============================================================
``max_header_bytes``         h11's ``max_incomplete_event_size``: a request head (request
                             line + headers) larger than this is answered 400 and the
                             connection closed; no more than this is ever buffered.
``max_header_count``,        :class:`EdgeGuard` (ASGI): 431 before the app sees the request.
``max_header_field_bytes``
``max_request_line_bytes``   :class:`EdgeGuard`: 414.
``header_timeout_s``         :func:`edge_protocol`: uvicorn has no head-read timeout (its
                             keep-alive timer starts only after a response), so a connection
                             whose head is not complete this long after it opened (or after
                             the first byte of a next request) is closed — a total, so one
                             byte a second does not extend it (slowloris).
``body_timeout_s``,          :class:`EdgeGuard`: while the app waits for the body, more than
``body_min_rate``            ``body_timeout_s`` without a byte, or an average rate below
                             ``body_min_rate`` once ``body_timeout_s`` of waiting have passed,
                             ends the request with 408 and ``Connection: close``; the app sees
                             a disconnect, so the upload's folder and files are removed.
``keep_alive_s``             uvicorn ``timeout_keep_alive``.
``max_connections``          uvicorn ``limit_concurrency``: beyond it new requests get 503.
==========================  ===============================================================

gunicorn's ``limit_request_*`` options were not used: with uvicorn workers they are not
applied (the uvicorn protocol parses the request), and gunicorn's ``timeout`` is a worker
heartbeat, not a read timeout. hypercorn's ``read_timeout`` and its idle timer restart on
every read, so neither stops a client that trickles a byte a second. Bare ``uvicorn --factory
sigscore_service.app:create_app`` keeps the ASGI-level limits but not the head-size cap or
the head timeout: run the service with ``sigscore serve`` (the container does).

Query strings never reach a log: uvicorn's access log is off (the app writes its own access
line with the route template), and :class:`DropQuery` strips them if it is switched on.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .problems import problem_response
from .settings import Settings, load_settings

log = logging.getLogger("sigscore_service.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: key in ``scope["state"]`` (``request.state``) set when the body read timed out
BODY_TIMED_OUT = "body_timed_out"
CSP_REPORT = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class DropQuery(logging.Filter):
    """Remove the query string from uvicorn access-log records (``?api_key=`` must not land
    in a log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def install_log_filters() -> None:
    """Idempotently attach :class:`DropQuery` to uvicorn's access logger."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQuery) for f in logger.filters):
        logger.addFilter(DropQuery())


class EdgeGuard:
    """Outermost ASGI middleware: head limits (414/431), body read timeouts (408), the
    request id, the security headers every response carries, and one ``observe(scope,
    status, seconds)`` call per request (metrics and the access line)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        observe: Callable[[Scope, int, float], None] | None = None,
    ) -> None:
        self.app = app
        self.s = settings
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.s
        t0 = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = rid = _request_id(scope)
        loop = asyncio.get_running_loop()
        status = 500  # if the app fails before it answers
        started = timed_out = body_done = False
        waited = 0.0  # time spent waiting for the client, not working on what it sent
        received = 0

        async def guarded_receive() -> Message:
            nonlocal waited, received, timed_out, body_done
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done or started:
                return await receive()  # waiting for a disconnect, not reading a body
            # up to body_timeout_s for each piece; in all, as long as the bytes so far
            # justify at body_min_rate (and at least body_timeout_s)
            budget = s.body_timeout_s
            if s.body_min_rate:
                allowed = max(s.body_timeout_s, received / s.body_min_rate)
                budget = min(budget, allowed - waited)
            t = loop.time()
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(budget, 0.0))
            except TimeoutError:
                timed_out = True
                state[BODY_TIMED_OUT] = True
                return {"type": "http.disconnect"}  # the app cleans up as on a disconnect
            waited += loop.time() - t
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                body_done = not msg.get("more_body", False)
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started, status
            if msg["type"] == "http.response.start":
                started, status = True, int(msg["status"])
                hdrs = list(msg.get("headers", []))
                hdrs.extend(_security_headers(scope["path"], hdrs))
                hdrs.append((b"x-request-id", rid.encode()))
                if timed_out and not any(k.lower() == b"connection" for k, _ in hdrs):
                    hdrs.append((b"connection", b"close"))  # stop reading a stalled body
                msg = {**msg, "headers": hdrs}
            await send(msg)

        try:
            refusal = _head_refusal(scope, s)
            if refusal is not None:
                await _refuse(guarded_send, *refusal)
                return
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            if timed_out and not started:  # the app gave no answer: close the connection
                await _refuse(guarded_send, 408, body_timeout_detail(s))
            if self.observe is not None:
                self.observe(scope, status, time.perf_counter() - t0)


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is short and plain, else a new one."""
    for k, v in scope.get("headers") or ():
        if k == b"x-request-id":
            rid = v.decode("latin-1")
            if 0 < len(rid) <= 64 and rid.replace("-", "").isalnum():
                return rid
            break
    return uuid.uuid4().hex


def _head_refusal(scope: Scope, s: Settings) -> tuple[int, str] | None:
    """414/431 for a request line or headers over the limits (h11 caps their total)."""
    headers = scope.get("headers") or []
    line = len(scope["method"]) + len(scope.get("raw_path") or b"") + 12
    line += len(scope.get("query_string") or b"") + 1
    if line > s.max_request_line_bytes:
        return 414, f"the request line is longer than {s.max_request_line_bytes} bytes"
    if len(headers) > s.max_header_count:
        return 431, f"more than {s.max_header_count} request headers"
    if any(len(k) + len(v) + 2 > s.max_header_field_bytes for k, v in headers):
        return 431, f"a request header is longer than {s.max_header_field_bytes} bytes"
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    resp = problem_response(status, detail, headers={"Connection": "close"})
    await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})


def body_timeout_detail(s: Settings) -> str:
    return (
        f"the request body arrived too slowly (more than {s.body_timeout_s:g} s without data, "
        f"or under {s.body_min_rate} bytes/s); the connection is closed"
    )


def _security_headers(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    have = {k.lower() for k, _ in headers}
    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    out = []
    if b"x-content-type-options" not in have:
        out.append((b"x-content-type-options", b"nosniff"))
    # results and job data are private and change: never cached
    if path.startswith("/v1/") and b"cache-control" not in have:
        out.append((b"cache-control", b"no-store"))
    # the report is static HTML with inline styles and data: images, no scripts
    if path.startswith("/v1/") and ctype.startswith(b"text/html"):
        out.append((b"content-security-policy", CSP_REPORT.encode()))
    return out


def edge_protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol with a total time limit on reading each request head."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class EdgeH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()  # a connection that never sends a byte is closed too

        def data_received(self, data: bytes) -> None:
            idle = self.conn.their_state is h11.IDLE
            if idle and self._head_timer is None:
                self._arm_head_timer()  # first byte of a next request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._cancel_head_timer()  # the head is complete

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a response is still being produced: not the client's stall
            log.debug("request head not complete in %.1f s: connection closed", header_timeout_s)
            self.transport.close()

    return EdgeH11Protocol


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted`` (within the hard limit); returns it.

    Each connection is a file descriptor; with the default soft limit (often 1024) accepting
    would fail long before ``max_connections``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def serve(host: str, port: int, log_level: str = "info", settings: Settings | None = None) -> None:
    """Run the service with every edge limit applied (blocks until shut down)."""
    import uvicorn

    s = settings or load_settings()
    # connections + upload files + database + worker pipes, with room to spare
    raise_nofile_limit(2 * s.max_connections + 256)
    install_log_filters()
    config = uvicorn.Config(
        "sigscore_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        http=edge_protocol(s.header_timeout_s),
        h11_max_incomplete_event_size=s.max_header_bytes,
        timeout_keep_alive=s.keep_alive_s,  # type: ignore[arg-type]  # a float works
        limit_concurrency=s.max_connections,
        access_log=False,  # the app logs each request itself, without the query string
        server_header=False,
    )
    uvicorn.Server(config).run()


__all__ = ["DropQuery", "EdgeGuard", "edge_protocol", "install_log_filters", "serve"]
