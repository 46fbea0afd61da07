"""schemathesis (v4 CLI) against ``/openapi.json`` of a live server: zero 5xx, no schema
violations, at least 1,000 generated requests, bounded in time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MIN_REQUESTS = 1000
MAX_TIME_S = 60
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def _count(report: Path) -> dict[int, int]:
    """Status codes of every request recorded in the NDJSON report."""
    codes: dict[int, int] = {}

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            if isinstance(o.get("response"), dict) and "request" in o:
                s = int(o["response"].get("status_code", 0))
                codes[s] = codes.get(s, 0) + 1
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for line in report.read_text().splitlines():
        if line.strip():
            walk(json.loads(line))
    return codes


def test_schemathesis_openapi(make_server, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis CLI (st) not installed")
    # every upload answered as a job: fuzzed matrices never block the pool synchronously
    srv = make_server({"SIGSCORE_SYNC_MAX_BYTES": "0"}).start()
    rep = tmp_path / "report"
    cmd = [
        st, "run", srv.url + "/openapi.json", "--checks", CHECKS, "-n", "12",
        "--max-time", str(MAX_TIME_S), "--seed", "7", "--no-color", "--workers", "1",
        "--report", "ndjson", "--report-dir", str(rep), "--request-timeout", "60",
        "--suppress-health-check", "all", "--warnings", "off",
        "--generation-database", "none",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=MAX_TIME_S + 120)
    reports = list(rep.glob("*.ndjson"))
    assert reports, run.stdout[-3000:] + run.stderr[-2000:]
    codes = _count(reports[0])
    total = sum(codes.values())
    print(f"schemathesis: {total} requests; status codes {sorted(codes.items())}")
    assert run.returncode == 0, run.stdout[-6000:]
    assert not [c for c in codes if c >= 500], codes
    assert total >= MIN_REQUESTS, codes
