"""Fixtures: a real uvicorn server process on 127.0.0.1 (free port, temporary data dir)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sigscore_service")
sys.path.insert(0, str(Path(__file__).parent))  # for `from svc_live import ...`

from svc_live import Server


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

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Server:
        srv = Server(data_dir or tmp_path / f"svc{len(made)}", env)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()
