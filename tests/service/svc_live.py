"""Live-server helpers for the service tests (a real uvicorn process on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn --factory sigscore_service.app:create_app`` in its own process group."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "SIGSCORE_DATA_DIR": str(data_dir),
            "SIGSCORE_WORKERS": "2",
            "SIGSCORE_POLL_INTERVAL_S": "0.1",
            "SIGSCORE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        """The server's command line (``self.port`` is chosen before it is called)."""
        return [sys.executable, "-m", "uvicorn", "--factory", "sigscore_service.app:create_app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]  # fmt: skip

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = self.command()
        with open(self.log, "ab") as log:
            # own session: a SIGKILL of the group also takes the worker processes (a crash)
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(
            f"server not ready in {READY_TIMEOUT_S} s: {self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL the server and its workers (no shutdown code runs)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL after a bounded wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        else:
            # reap leftover workers of the group, if any
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get(f"/v1/jobs/{job_id}").json()
        if info["state"] in ("done", "failed"):
            return info
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {info}")


# Server paths must never reach a client: any of these in a response body is a leak (the
# server's temp/data/home folders, an installed package, the checkout the tests run from).
_PATH_MARKERS = (r"/tmp/", r"/var/", r"/root/", r"/home/", r"/work/", r"site-packages",
                 r"\.local/share")  # fmt: skip


def server_path_re(*extra: Path | str) -> re.Pattern[str]:
    """A regex matching absolute server paths (the markers above, plus ``extra`` folders)."""
    from _support import REPO_ROOT

    folders = {str(p).rstrip("/") + "/" for p in (REPO_ROOT, tempfile.gettempdir(), sys.prefix,
                                                   *extra)}  # fmt: skip
    return re.compile("|".join([*_PATH_MARKERS, *(re.escape(f) for f in sorted(folders))]))


def assert_no_server_path(text: str, where: str, pattern: re.Pattern[str] | None = None) -> None:
    m = (pattern or server_path_re()).search(text)
    if m:
        ctx = text[max(0, m.start() - 120) : m.end() + 120]
        raise AssertionError(f"server path {m.group()!r} in {where}: ...{ctx}...")
