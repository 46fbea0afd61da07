"""Fixtures: a real uvicorn server process on 127.0.0.1 (free port, temporary data dir)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sigscore_service")
sys.path.insert(0, str(Path(__file__).parent))  # for `from svc_live import ...`

import httpx
from svc_live import Server, assert_no_server_path, server_path_re


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("svc")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    """Factory for servers with their own settings; all stopped at the end of the test."""
    made: list[Server] = []

    def make(
        env: dict[str, str] | None = None, data_dir: Path | None = None, cls: type = Server
    ) -> Server:
        srv = cls(data_dir or tmp_path / f"svc{len(made)}", env)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()


@pytest.fixture(autouse=True)
def no_server_path_in_any_response(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """Every response any service test receives (sync or async httpx client, JSON, CSV,
    Parquet, HTML, problems) is checked for absolute server paths."""
    pattern = server_path_re(tmp_path)

    def check(response: httpx.Response) -> None:
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        assert_no_server_path(response.content.decode("utf-8", "replace"), where, pattern)

    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kw: object) -> httpx.Response:
        response = sync_send(self, request, **kw)  # type: ignore[arg-type]
        if not kw.get("stream"):  # a streamed body is the test's to read
            check(response)
        return response

    async def asend(
        self: httpx.AsyncClient, request: httpx.Request, **kw: object
    ) -> httpx.Response:
        response = await async_send(self, request, **kw)  # type: ignore[arg-type]
        if not kw.get("stream"):
            check(response)
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", asend)
    yield
