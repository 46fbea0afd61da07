"""Smoke test of the peer benchmark runner (benchmarks/run.py) on a tiny bulk matrix.

Only sigscore runs here (the peers are optional and slow to import); timings are not
asserted, only that every method ran in its own process and the doc section was replaced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.run import BEGIN, END, _agreement  # noqa: E402


def test_tiny_bulk_run_writes_results_and_doc(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\n{BEGIN}\nstale table\n{END}\n\nkept text\n")
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "benchmarks.run", "--tiny", "--only", "bulk"]
    cmd += ["--tools", "sigscore", "sigscore-tcga", "--workdir", str(work), "--doc", str(doc)]
    subprocess.run(cmd, cwd=REPO, check=True, timeout=900, capture_output=True)
    rows = json.loads((work / "results.json").read_text())["rows"]
    ours = [r for r in rows if r["tool"] == "sigscore"]
    assert {r["method"] for r in ours} == {"ssgsea", "gsva", "gsva_rcompat", "zscore", "plage"}
    tcga = [r for r in rows if r["tool"] == "sigscore-tcga"]
    if (REPO.parent / "shared" / "data" / "tcga_lihc_tpm10").exists():
        # the TCGA-names variant: same matrix, renamed columns; scores agree with sigscore's
        assert {r["method"] for r in tcga} == {"ssgsea", "gsva", "zscore", "plage"}
        for r in tcga:
            assert "error" not in r, r
            assert r["tcga_counts"]["renamed"] > 0 and r["r_min"] > 0.9, r
    for r in ours:
        assert "error" not in r, r
        assert r["cold"] > 0 and r["warm"] > 0 and r["peak"] >= 0
    text = doc.read_text()
    assert "stale table" not in text and "kept text" in text
    assert "| sigscore | gsva |" in text and "load average" in text


def test_agreement_aligns_plage_sign():
    rng = np.random.default_rng(0)
    ours = rng.normal(size=(30, 3))
    theirs = ours * np.array([1.0, -1.0, 1.0])  # one set's singular vector flipped
    res = _agreement(ours, theirs, same=True)
    assert res["r_min"] > 0.999999 and res["max_abs_diff"] < 1e-12
    res = _agreement(ours, ours + 0.1, same=True)
    assert abs(res["max_abs_diff"] - 0.1) < 1e-12
