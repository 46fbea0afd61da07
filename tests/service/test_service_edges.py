"""The edges of the HTTP server under abuse, against a real ``sigscore serve`` on 127.0.0.1.

A 100 MB header and 1,000 slow clients (half stalling in the request head, half in an upload
body, one byte a second each, all on loopback); a client that disconnects mid-upload;
security headers; query strings kept out of logs; ``/readyz`` with a read-only data
directory and with a corrupted SQLite page. The server's limits are made small here
(seconds) so the attack ends quickly; the figures are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import selectors
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from svc_live import Server, wait_job

import sigscore
from sigscore_service.server import CSP_REPORT, DropQuery

psutil = pytest.importorskip("psutil")

MiB = 1024**2
TIMEOUT_S = 3.0  # header, body and keep-alive timeouts of the servers below
ATTACK_TIMEOUT_S = 6.0  # header and body timeouts under the slow-client attack...
RAMP_S = 4.0  # ...which opens its connections over this long (all are open at once)
N_SLOW = 1000
MARGIN_S = 30.0  # generous: a busy 2-core machine may be slow to schedule the close


class ServeServer(Server):
    """The service as the container runs it: ``sigscore serve`` (all edge limits applied)."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sigscore.cli", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning"]  # fmt: skip


EDGE_ENV = {
    "SIGSCORE_HEADER_TIMEOUT_S": str(TIMEOUT_S),
    "SIGSCORE_BODY_TIMEOUT_S": str(TIMEOUT_S),
    "SIGSCORE_KEEP_ALIVE_S": str(TIMEOUT_S),
    "SIGSCORE_WORKERS": "1",
}


@pytest.fixture(scope="module")
def info_server(tmp_path_factory: pytest.TempPathFactory):
    srv = ServeServer(
        tmp_path_factory.mktemp("edges"), {**EDGE_ENV, "SIGSCORE_LOG_LEVEL": "INFO"}
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def _log_lines(srv: Server) -> list[str]:
    return srv.log.read_text(errors="replace").splitlines()


def _wait_for(cond, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {what}")


def _upload_dirs(srv: Server) -> list[str]:
    d = srv.data_dir / "uploads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _multipart_head(boundary: str, length: int, extra: str = "") -> bytes:
    """Request head and the start of a 'file' part of a ``length``-byte multipart upload."""
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n")  # fmt: skip
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="m.csv"\r\nContent-Type: text/csv\r\n\r\nsample,GENE1\r\n')  # fmt: skip
    return head.encode() + part.encode()


# --------------------------------------------------------------------------- abuse
class SlowClients:
    """``n`` loopback connections, opened over ``ramp_s`` seconds (as an attacker builds up
    a slowloris), that each send one byte a second and never finish: half stall in the
    request head, half in an upload body. Records when the server closes each."""

    def __init__(self, port: int, n: int, ramp_s: float) -> None:
        self.port, self.n, self.ramp_s = port, n, ramp_s
        self.opened: dict[socket.socket, float] = {}
        self.closed_after: list[float] = []
        self.last_open = self.first_close = float("nan")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> SlowClients:
        self.thread.start()
        return self

    def _open(self, i: int, sel: selectors.BaseSelector, live: set) -> None:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        # head stallers send an unfinished head; body stallers a whole head and a part
        s.sendall(_multipart_head("slowboundary", 50 * MiB) if i % 2 else b"GET / HTTP/1.1\r\n")
        s.setblocking(False)
        self.opened[s] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
        live.add(s)

    def _run(self) -> None:
        try:
            sel = selectors.DefaultSelector()
            live: set[socket.socket] = set()
            t0 = next_tick = time.monotonic()
            while (live or len(self.opened) < self.n) and not self.stop.is_set():
                # open the next ones on schedule (bounded: n in all)
                due = min(self.n, int(self.n * (time.monotonic() - t0) / self.ramp_s) + 1)
                while len(self.opened) < due:
                    self._open(len(self.opened), sel, live)
                    if len(self.opened) == self.n:
                        self.last_open = time.monotonic()
                for key, _ in sel.select(timeout=0.02):
                    s = key.fileobj
                    try:
                        gone = not s.recv(65536)  # type: ignore[union-attr]
                    except BlockingIOError:
                        continue
                    except OSError:
                        gone = True
                    if gone:
                        self._closed(s, sel, live)  # type: ignore[arg-type]
                if time.monotonic() >= next_tick:  # one byte a second on every connection
                    next_tick += 1.0
                    for s in list(live):
                        try:
                            s.send(b"a")
                        except BlockingIOError:
                            pass
                        except OSError:
                            self._closed(s, sel, live)
            sel.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _closed(self, s: socket.socket, sel: selectors.BaseSelector, live: set) -> None:
        now = time.monotonic()
        if not self.closed_after:
            self.first_close = now
        self.closed_after.append(now - self.opened[s])
        sel.unregister(s)
        live.discard(s)
        s.close()

    def close_all(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        for s in self.opened:
            with contextlib.suppress(OSError):
                s.close()


def _huge_header(port: int, size: int) -> tuple[int, float, bytes]:
    """Send a request with one ``size``-byte header; bytes the server took before it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    t0 = time.monotonic()
    sent = 0
    chunk = b"a" * MiB
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < size:
            s.sendall(chunk[: min(MiB, size - sent)])
            sent += MiB
    except OSError:
        pass  # the server refused and closed: what we want
    answer = b""
    with contextlib.suppress(OSError):
        answer = s.recv(4096)
    s.close()
    return sent, time.monotonic() - t0, answer


def _settled_fds(proc) -> int:
    """The server's descriptor count once it stops changing (closing connections settle)."""
    last = [-1]

    def same() -> int | None:
        n, prev = proc.num_fds(), last[0]
        last[0] = n
        return n if n == prev else None

    return _wait_for(same, 30, "a stable fd count", step=0.5)


def _fds(pid: int) -> dict[str, int]:
    """The server's open descriptors: the job store's (``jobs.db*``, a connection pool) and
    all others (sockets, pipes, upload files, logs)."""
    out = {"job store": 0, "other": 0}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            out["job store" if Path(target).name.startswith("jobs.db") else "other"] += 1
    return out


def _nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_huge_header_and_slow_clients(make_server) -> None:
    _nofile(N_SLOW + 1024)
    timeout = ATTACK_TIMEOUT_S
    env = {**EDGE_ENV, **{f"SIGSCORE_{k}_TIMEOUT_S": str(timeout) for k in ("HEADER", "BODY")}}
    srv = make_server(env, cls=ServeServer).start()
    proc = psutil.Process(srv.pid)
    # a fresh connection per probe (as a health checker makes), one client (no TLS set-up)
    probe = httpx.Client(
        base_url=srv.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )
    with probe:
        # warm every path the attack touches (an upload and health probes)
        for _ in range(3):
            assert probe.get("/healthz").status_code == 200
        r = probe.post("/v1/jobs", files={"file": ("m.csv", b"sample,GENE1\ns1,1.0\n")})
        assert r.status_code == 202, r.text
        job = wait_job(probe, r.json()["id"])
        # fill the job store's connection pool to its steady size: it is not a leak
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda _: probe.get(f"/v1/jobs/{job['id']}"), range(64)))
        _settled_fds(proc)
        fds0 = _fds(srv.pid)
        rss0 = proc.memory_info().rss

        header_result: list[tuple[int, float, bytes]] = []
        big = threading.Thread(
            target=lambda: header_result.append(_huge_header(srv.port, 100 * MiB))
        )
        slow = SlowClients(srv.port, N_SLOW, RAMP_S)
        latencies: list[float] = []
        when: list[float] = []  # probe start, seconds into the attack
        peak_rss = rss0
        t_attack = time.monotonic()
        slow.start()
        big.start()
        try:
            # /healthz throughout the attack: until every slow client was closed by the
            # server and the huge header refused (bounded)
            while (len(slow.closed_after) < N_SLOW or big.is_alive()) and (
                time.monotonic() - t_attack < RAMP_S + timeout + 2 * MARGIN_S
            ):
                t0 = time.monotonic()
                r = probe.get("/healthz")
                latencies.append(time.monotonic() - t0)
                when.append(round(t0 - t_attack, 2))
                assert r.status_code == 200, r.text
                peak_rss = max(peak_rss, proc.memory_info().rss)
                time.sleep(0.05)
        finally:
            big.join(timeout=60)
            slow.close_all()
        assert slow.error is None, slow.error
        sent, header_s, answer = header_result[0]
        worst_close = max(slow.closed_after) if slow.closed_after else float("nan")
        print(
            f"\n/healthz under attack: {len(latencies)} probes, max {max(latencies) * 1000:.0f} "
            f"ms; RSS growth {(peak_rss - rss0) / MiB:.1f} MiB; {len(slow.closed_after)}/"
            f"{N_SLOW} slow clients closed by the server {min(slow.closed_after):.1f}-"
            f"{worst_close:.1f} s after they opened (timeouts {timeout:g} s); 100 MB header "
            f"refused after {sent / MiB:.0f} MiB sent ({header_s:.2f} s): {answer[:28]!r}"
        )
        assert len(slow.closed_after) == N_SLOW, "the server left slow clients open"
        assert slow.last_open < slow.first_close, "the slow clients were not all open at once"
        assert min(slow.closed_after) >= timeout * 0.9  # closed by the timeout, not at once
        assert worst_close < timeout + MARGIN_S
        assert (peak_rss - rss0) < 50 * MiB
        assert sent < 100 * MiB or answer.startswith(b"HTTP/1.1 400"), (sent, answer)
        # every upload folder of the stalled uploads removed, every descriptor given back
        _wait_for(lambda: not _upload_dirs(srv), 60, f"upload folders left: {_upload_dirs(srv)}")
        fds1 = _wait_for(
            lambda: (n := _fds(srv.pid)) and n["other"] <= fds0["other"] and n,
            60,
            f"the server's descriptors back to the baseline {fds0}: {_fds(srv.pid)}",
        )
        # the job store's connection pool is bounded by its size (SQLAlchemy's QueuePool:
        # 5 kept + 10 overflow connections, two files each, and the shared WAL index)
        assert fds1["job store"] <= 2 * (5 + 10) + 1, (fds0, fds1)
        print(f"server fds: baseline {fds0}, after {fds1}")
        metrics = probe.get("/metrics").text
    assert 'status="500"' not in metrics
    assert 'route="/v1/jobs",status="408"' in metrics  # the stalled uploads timed out
    assert "Traceback" not in srv.log.read_text(errors="replace")
    slowest = sorted(zip(latencies, when, strict=True), reverse=True)[:5]
    # A server that slow clients could stall would answer /healthz only once they were
    # dropped, after the timeout; half of it bounds the slowest probe (a loaded 2-core
    # machine delayed one probe 1.09 s while 1,000 connections opened), and the median
    # stays well below that.
    assert max(latencies) < timeout / 2, f"slowest /healthz (s, at s into the attack): {slowest}"
    assert statistics.median(latencies) < 0.5, f"median /healthz: {statistics.median(latencies)} s"


def test_connection_cap(make_server) -> None:
    """Beyond max_connections, requests get 503 at once; the idle ones time out and the
    server serves again."""
    srv = make_server({**EDGE_ENV, "SIGSCORE_MAX_CONNECTIONS": "5"}, cls=ServeServer).start()
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
    try:
        r = _wait_for(
            lambda: (x := httpx.get(srv.url + "/healthz", timeout=10)).status_code == 503 and x,
            10,
            "503 beyond the connection cap",
        )
        assert r.status_code == 503
        # the idle connections are closed after the head timeout; then /healthz answers
        _wait_for(
            lambda: httpx.get(srv.url + "/healthz", timeout=10).status_code == 200,
            TIMEOUT_S + MARGIN_S,
            "served again after the idle connections timed out",
        )
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------- disconnects
def test_disconnect_mid_upload_logged_once(info_server: Server) -> None:
    srv = info_server
    rid = "disconnect0test0upload"
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(_multipart_head("bnd", 10 * MiB, f"X-Request-ID: {rid}\r\n") + b"s1,1\r\n" * 1000)
    # the upload has begun when its folder exists; then the client goes away
    _wait_for(lambda: _upload_dirs(srv), 30, "the upload folder")
    s.close()
    lines = _wait_for(
        lambda: [ln for ln in _log_lines(srv) if rid in ln], 30, "the disconnect log line"
    )
    _wait_for(lambda: not _upload_dirs(srv), 30, "upload folder removed after the disconnect")
    lines = [ln for ln in _log_lines(srv) if rid in ln]
    assert len(lines) == 1, lines
    doc = json.loads(lines[0])
    assert doc["level"] == "INFO" and "disconnected" in doc["message"], doc
    assert doc["status"] == 499 and "exception" not in doc
    text = srv.log.read_text(errors="replace")
    assert "Traceback" not in text and "internal error" not in text
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        metrics = c.get("/metrics").text
    assert 'status="500"' not in metrics
    assert 'route="/v1/jobs",status="499"' in metrics


def test_stalled_body_408_and_closed(info_server: Server) -> None:
    """An upload that stops sending: 408 problem, connection closed, folder removed."""
    srv = info_server
    s = socket.create_connection(("127.0.0.1", srv.port))
    t0 = time.monotonic()
    s.sendall(_multipart_head("bnd", 10 * MiB, "X-Request-ID: stalled0body\r\n") + b"s1,1\r\n")
    s.settimeout(TIMEOUT_S + MARGIN_S)
    answer = b""
    while chunk := s.recv(65536):  # until the server closes the connection
        answer += chunk
    elapsed = time.monotonic() - t0
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["status"] == 408
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + MARGIN_S, elapsed
    _wait_for(lambda: not _upload_dirs(srv), 30, "upload folder removed after the timeout")
    line = _wait_for(
        lambda: [ln for ln in _log_lines(srv) if "stalled0body" in ln], 30, "the access line"
    )
    assert len(line) == 1 and json.loads(line[0])["status"] == 408, line


# --------------------------------------------------------------------------- headers, logs
def test_security_headers_and_no_query_in_logs(info_server: Server) -> None:
    secret = "k3y-in-the-query-0123456789"
    with httpx.Client(base_url=info_server.url, timeout=120) as c:
        for path in ("/healthz", "/readyz", "/metrics", "/v1/methods", "/v1/jobs/" + "0" * 32):
            r = c.get(path, params={"api_key": secret})
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert ("cache-control" in r.headers) == path.startswith("/v1/"), path
        with open(sigscore.example_path(), "rb") as fh:
            r = c.post("/v1/jobs", files={"file": ("cohort.tsv", fh)})  # index: has a report
        assert r.status_code == 202, r.text
        assert r.headers["cache-control"] == "no-store"
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "done", info
        for fmt in ("json", "csv", "parquet"):
            res = c.get(f"/v1/jobs/{info['id']}/result?format={fmt}")
            assert res.status_code == 200
            assert res.headers["cache-control"] == "no-store"
            assert res.headers["x-content-type-options"] == "nosniff"
            assert "content-security-policy" not in res.headers
        assert "html" in info["result_formats"], info
        html = c.get(f"/v1/jobs/{info['id']}/result?format=html")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert html.headers["content-security-policy"] == CSP_REPORT
        assert html.headers["cache-control"] == "no-store"
        assert "<script" not in html.text.lower()  # the policy forbids scripts: none needed
        # limits on the head: too many headers, an oversized header, a long request line
        many = {f"x-h{i}": "1" for i in range(150)}
        assert c.get("/healthz", headers=many).status_code == 431
        assert c.get("/healthz", headers={"x-long": "a" * 9000}).status_code == 431
        r = c.get("/healthz?" + "q" * 9000)
        assert r.status_code == 414 and r.headers["x-content-type-options"] == "nosniff"
    assert secret not in info_server.log.read_text(errors="replace")
    assert any('"path": "/v1/methods"' in ln for ln in _log_lines(info_server))


def test_uvicorn_access_log_filter_drops_query() -> None:
    """If an operator turns uvicorn's access log on, the query string still never lands."""
    rec = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/methods?api_key=SECRET", "1.1", 403), None,
    )  # fmt: skip
    assert DropQuery().filter(rec)
    assert rec.getMessage() == '127.0.0.1:5 - "GET /v1/methods HTTP/1.1" 403'


# --------------------------------------------------------------------------- readiness
@contextlib.contextmanager
def _read_only(folder: Path):
    """Make ``folder`` read-only for this process's children too. As root (which ignores
    permissions) by a read-only bind mount of it onto itself; else by chmod."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in (folder, *folder.iterdir()) if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, m in modes.items():
                p.chmod(m)
        return
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("root ignores chmod and there is no mount(8) for a read-only bind mount")
    res = subprocess.run([mount, "--bind", str(folder), str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"root ignores chmod and a bind mount is not allowed here: {res.stderr!r}")
    try:
        res = subprocess.run([mount, "-o", "remount,ro,bind", str(folder)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {res.stderr!r}")
        yield
    finally:
        # the server keeps files open in the folder: if the plain unmount is refused as busy,
        # detach it lazily, so no read-only mount outlives the test
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def _not_ready(c: httpx.Client, member: str) -> dict:
    r = c.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"]
    doc = r.json()
    assert doc[member] is False and doc["status"] == 503, doc
    return doc


def test_readyz_read_only_data_dir(make_server) -> None:
    srv = make_server(EDGE_ENV, cls=ServeServer).start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        assert c.get("/readyz").status_code == 200
        with _read_only(srv.data_dir):
            doc = _not_ready(c, "data_dir")
            assert "not writable" in doc["detail"]
            # an upload now is 503 with Retry-After (storage), not 500
            r = c.post("/v1/jobs", files={"file": ("m.csv", b"sample,GENE1\ns1,1\n")})
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["retry-after"]
        # writable again: ready again
        _wait_for(lambda: c.get("/readyz").status_code == 200, 30, "ready after remount")
        assert 'status="500"' not in c.get("/metrics").text


def test_readyz_corrupt_sqlite_page(make_server) -> None:
    srv = make_server(EDGE_ENV, cls=ServeServer).start()
    db = srv.data_dir / "jobs.db"
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        r = c.post("/v1/jobs", files={"file": ("m.csv", b"sample,GENE1\ns1,1\n")})
        assert r.status_code == 202, r.text
        first = r.json()["id"]
        wait_job(c, first)
        # more rows (copies of the real one under new ids): the file spans many pages
        con = sqlite3.connect(db, timeout=30)
        cols = [row[1] for row in con.execute("PRAGMA table_info(sigscore_jobs)")]
        rest = ", ".join(x for x in cols if x != "id")
        ids = [f"{i:032x}" for i in range(1, 401)]
        with con:
            for job_id in ids:
                con.execute(
                    f"INSERT INTO sigscore_jobs (id, {rest}) SELECT ?, {rest} "
                    "FROM sigscore_jobs WHERE id = ?",
                    (job_id, first),
                )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
        assert c.get("/readyz").status_code == 200
        n_pages = db.stat().st_size // page
        assert n_pages >= 8, n_pages
        with open(db, "r+b") as fh:  # one page in the middle of the file turned to garbage
            fh.seek((n_pages // 2) * page)
            fh.write(os.urandom(page))
            fh.flush()
            os.fsync(fh.fileno())
        doc = _not_ready(c, "job_store")
        assert "job store" in doc["detail"]
        statuses = {c.get(f"/v1/jobs/{job_id}").status_code for job_id in [first, *ids]}
        print(f"\njob status answers with a corrupt page: {sorted(statuses)}")
        assert 500 not in statuses
        assert statuses <= {200, 503}, statuses
    assert "internal error" not in srv.log.read_text(errors="replace")


def test_readiness_query_postgres(tmp_path: Path) -> None:
    """On PostgreSQL the check queries the jobs table; a database that went away is a
    reason, not an exception."""
    import sqlalchemy as sa
    from test_service_recovery import _fresh_pg_database

    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings

    url = os.environ.get("SIGSCORE_TEST_DATABASE_URL")
    if not url:
        pytest.skip('SIGSCORE_TEST_DATABASE_URL unset (eval "$(bash scripts/start_postgres.sh)")')
    db = _fresh_pg_database(url)
    store = JobStore(Settings(data_dir=tmp_path, database_url=db))
    try:
        assert store.check() is None
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:  # gone, with the store's open connections
            c.execute(sa.text(f"DROP DATABASE {db.rsplit('/', 1)[1]} WITH (FORCE)"))
        admin.dispose()
        reason = store.check()
        assert reason is not None and "OperationalError" in reason, reason
    finally:
        store.dispose()
