"""The HTTP service against a live uvicorn process: parity, jobs, errors, reference routes."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from svc_live import Server, wait_job

import sigscore
from _support import REPO_ROOT
from sigscore.io import read_matrix
from sigscore.scoring import score

BAD = REPO_ROOT / "tests" / "data" / "bad"
STATUS = {"InputError": 400, "UnsupportedFormatError": 415, "UsageError": 422,
          "SignatureError": 422, "CoverageError": 422}  # fmt: skip


def _upload(client: httpx.Client, path: Path, route: str = "/v1/score", **fields: str):
    with open(path, "rb") as fh:
        return client.post(route, files={"file": (path.name, fh)}, data=fields, timeout=120)


def _same(a: float | None, b: float) -> bool:
    return (a is None and math.isnan(b)) or (a is not None and a == b)


def test_health_ready_metrics(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready == {"status": "ready", "job_store": True, "workers": True}
        r = c.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        assert c.get("/v1/methods").status_code == 200
        assert c.get("/v1/jobs/" + "0" * 32).status_code == 404
        text = c.get("/metrics").text
        assert "sigscore_http_requests_total" in text and 'sigscore_jobs{state="queued"}' in text
        # requests are labelled by their route's full template (never the raw path)
        for label in ('method="GET",route="/v1/methods",status="200"',
                      'method="GET",route="/v1/jobs/{job_id}",status="404"'):  # fmt: skip
            assert f"sigscore_http_requests_total{{{label}}}" in text, label


def test_methods_and_signatures(server: Server) -> None:
    from sigscore.scoring.methods import METHOD_NAMES, available_methods
    from sigscore.signatures import load_signatures

    with httpx.Client(base_url=server.url, timeout=120) as c:
        methods = c.get("/v1/methods").json()
        assert [m["name"] for m in methods] == list(METHOD_NAMES)
        for got, spec in zip(methods, available_methods().values(), strict=True):
            assert got == {"name": spec.name, "summary": spec.summary,
                           "reference": spec.reference, "defaults": dict(spec.defaults),
                           "sample_independent": spec.sample_independent}, got  # fmt: skip
        core = load_signatures("core")
        body = c.get("/v1/signatures", params={"tier": "core"}).json()
        assert body["content_hash"] == core.content_hash
        assert [s["name"] for s in body["signatures"]] == core.names
        name = core.names[0]
        assert c.get(f"/v1/signatures/{name}?tier=core").json() == json.loads(
            json.dumps(core[name].to_dict(), default=str)
        )
        gmt = c.get(f"/v1/signatures/{name}", params={"tier": "core", "format": "gmt"}).text
        assert gmt == core.subset([name]).to_gmt()
        r = c.get("/v1/signatures/no_such_module")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_library_cli_http_identical(server: Server, tmp_path: Path) -> None:
    """The same file through the library, `sigscore score` and POST /v1/score: same numbers."""
    path = sigscore.example_path()
    lib = score(read_matrix(path), progress=False)
    out = tmp_path / "cli.csv"
    subprocess.run([sys.executable, "-m", "sigscore.cli", "score", str(path), "-o", str(out)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    cli = pd.read_csv(out, index_col=0, float_precision="round_trip")
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = _upload(c, path, index="false")
        assert r.status_code == 200, r.text
        doc = r.json()
        with open(path, "rb") as fh:
            r_csv = c.post(
                "/v1/score",
                params={"format": "csv"},
                files={"file": (path.name, fh)},
                data={"index": "false"},
            )
        assert r_csv.headers["content-type"].startswith("text/csv"), r_csv.text
    assert doc["kind"] == "scores" and doc["columns"] == list(lib.columns)
    assert [row["sample"] for row in doc["rows"]] == list(lib.index)
    for row, (_, expect) in zip(doc["rows"], lib.iterrows(), strict=True):
        for col in lib.columns:
            assert _same(row[col], float(expect[col])), (row["sample"], col)
    np.testing.assert_array_equal(cli.to_numpy(), lib.to_numpy())  # CSV round-trips exactly
    http_csv = pd.read_csv(io.StringIO(r_csv.text), index_col=0, float_precision="round_trip")
    np.testing.assert_array_equal(http_csv.to_numpy(), lib.to_numpy())
    assert (
        doc["manifest"]["signatures"]["hash"]
        == lib.attrs["sigscore"]["manifest"]["signatures"]["hash"]
    )
    assert doc["coverage"] == json.loads(
        json.dumps(lib.attrs["sigscore"]["coverage"], default=str).replace("NaN", "null")
    )


def test_index_sync_matches_library(server: Server) -> None:
    from sigscore.index import resistance_index

    path = sigscore.example_path()
    lib = resistance_index(read_matrix(path), progress=False)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        doc = _upload(c, path).json()
    assert doc["kind"] == "index"
    got = pd.DataFrame(doc["rows"]).set_index("sample")
    np.testing.assert_array_equal(got["index"].to_numpy(float), lib["index"].to_numpy(float))
    contrib = [c for c in lib.columns if c.startswith("contrib_")]
    np.testing.assert_allclose(got[contrib].sum(axis=1), got["index"], rtol=0, atol=1e-12)


def test_json_matrix_body(server: Server) -> None:
    expr = read_matrix(sigscore.example_path())
    X = np.asarray(expr.X[:5, :400].todense() if hasattr(expr.X, "todense") else expr.X[:5, :400])
    genes, samples = list(expr.var_names[:400]), list(expr.obs_names[:5])
    frame = pd.DataFrame(X, index=samples, columns=genes)
    lib = score(frame, progress=False)
    body = {"matrix": {"samples": samples, "genes": genes, "values": X.tolist()}, "index": False}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = c.post("/v1/score", json=body, timeout=120)
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json()["rows"]).set_index("sample")[list(lib.columns)]
    np.testing.assert_array_equal(got.to_numpy(float), lib.to_numpy(float))


def test_job_submit_poll_fetch_delete(server: Server) -> None:
    path = sigscore.example_path()
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = _upload(c, path, route="/v1/jobs", index="false")
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        job_id = r.json()["id"]
        info = wait_job(c, job_id)
        assert info["state"] == "done" and info["progress"] == 1.0, info
        doc = c.get(f"/v1/jobs/{job_id}/result").json()
        pq = c.get(
            f"/v1/jobs/{job_id}/result", headers={"Accept": "application/vnd.apache.parquet"}
        )
        assert pq.headers["content-type"] == "application/vnd.apache.parquet"
        table = pd.read_parquet(io.BytesIO(pq.content))
        lib = score(read_matrix(path), progress=False)
        np.testing.assert_array_equal(table[list(lib.columns)].to_numpy(), lib.to_numpy())
        assert doc["manifest"]["input_name"] == path.name
        # async index job also gives the HTML report
        r = _upload(c, path, route="/v1/jobs")
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "done", info
        assert info["result_formats"] == ["json", "csv", "parquet", "html"], info
        html = c.get(f"/v1/jobs/{info['id']}/result?format=html")
        assert html.status_code == 200 and "<html" in html.text.lower()
        assert html.headers["content-type"].startswith("text/html")
        # a scores-only job has no report: 406 names the format
        r = c.get(f"/v1/jobs/{job_id}/result", params={"format": "html"})
        assert r.status_code == 406 and r.json()["type"].endswith("not-available"), r.text
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert c.get(f"/v1/jobs/{job_id}").status_code == 404
        assert c.get("/v1/jobs/" + "0" * 32).status_code == 404


def test_a_queued_job_has_no_result_yet(make_server) -> None:
    """An API process without workers: a job stays queued, so its result is 409 (not-done,
    naming the state) until it is done; it can still be read and deleted."""
    srv = make_server({"SIGSCORE_WORKERS": "0"}).start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        r = _upload(c, sigscore.example_path(), route="/v1/jobs", index="false")
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        info = c.get(f"/v1/jobs/{job_id}").json()
        assert (info["state"], info["progress"], info["stage"]) == ("queued", 0.0, None), info
        assert info["links"] == {"self": f"/v1/jobs/{job_id}"} and info["result_formats"] == []
        r = c.get(f"/v1/jobs/{job_id}/result")
        assert r.status_code == 409, r.text
        doc = r.json()
        assert doc["type"].endswith("not-done") and doc["state"] == "queued", doc
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert c.get(f"/v1/jobs/{job_id}/result").status_code == 404


def _corpus() -> list[tuple[str, dict]]:
    """The malformed-file corpus, less the decompression bombs (their own test below)."""
    spec = BAD / "EXPECTED.yaml"
    if not spec.exists():
        return []
    cases = yaml.safe_load(spec.read_text()).items()
    return sorted((k, v) for k, v in cases if not _bomb_limit(v))


def _bomb_limit(expect: dict) -> int | None:
    return (expect.get("kwargs") or {}).get("max_decompressed_bytes")


def test_decompression_bombs_refused_at_upload(make_server) -> None:
    """The corpus's bombs (3 MB from 3 kB) against a server whose cap is the corpus's limit:
    refused while the upload is received (413), before a worker reads them. (With the default
    8 GiB cap they are small matrices, and the reader's parse error is the answer.)"""
    bombs = {k: v for k, v in yaml.safe_load((BAD / "EXPECTED.yaml").read_text()).items()
             if _bomb_limit(v)}  # fmt: skip
    assert sorted(bombs) == ["bomb.csv.gz", "bomb.zip"]
    limits = {_bomb_limit(v) for v in bombs.values()}
    assert len(limits) == 1
    srv = make_server({"SIGSCORE_MAX_DECOMPRESSED_BYTES": str(limits.pop()),
                       "SIGSCORE_WORKERS": "0"}).start()  # fmt: skip
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        for name in bombs:
            r = _upload(c, BAD / name, index="false")
            assert r.status_code == 413, r.text
            doc = r.json()
            assert doc["type"].endswith("decompression-bomb"), doc
            # the reason, not just the file's name (which says "bomb" too)
            assert doc["detail"].startswith(f"{name}: the compressed upload expands to "), doc
            assert "(a decompression bomb" in doc["detail"], doc
    assert not any((srv.data_dir / "uploads").iterdir())  # nothing left behind


@pytest.mark.parametrize(
    ("name", "expect"),
    _corpus() or [pytest.param("", {}, marks=pytest.mark.skip(reason="no malformed-file corpus"))],
)
def test_malformed_corpus_specific_4xx(server: Server, name: str, expect: dict) -> None:
    kwargs = dict(expect.get("kwargs") or {})
    fields = {k: str(v) for k, v in kwargs.items() if k in ("layer", "genes_axis")}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = _upload(c, BAD / name, index="false", **fields)
    assert r.headers["content-type"] == "application/problem+json", r.text
    doc = r.json()
    assert r.status_code == STATUS[expect["error"]], doc
    assert expect["message"] in doc["detail"], doc
    assert str(BAD) not in doc["detail"]  # no server path leaks
