"""The bundled example and ``sigscore demo``: small, real symbols, reproducible, and the planted
programme is what the scores find."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

import sigscore
from _support import REPO_ROOT
from sigscore.cli import app
from sigscore.example import example_labels_path, example_path, load_example


@pytest.fixture(scope="module")
def example() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_example()


def test_files_small_and_well_formed(example: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from sigscore.genes import protein_coding_symbols

    expr, labels = example
    total = example_path().stat().st_size + example_labels_path().stat().st_size
    assert total < 1_000_000
    assert expr.shape[0] == 24 and expr.shape[1] > 3000
    assert list(labels.index) == list(expr.index)
    assert set(labels["resistant"].unique()) == {0, 1}
    assert 4 <= labels["resistant"].sum() <= 20  # a programme planted in some samples, not all
    # real approved symbols only (background from NCBI protein-coding; signatures' HGNC)
    pc = set(protein_coding_symbols())
    sig_genes = {
        g.symbol
        for n in sigscore.load_signatures().names
        for g in sigscore.load_signatures()[n].genes
    }
    assert set(expr.columns) <= pc | sig_genes
    # log2(TPM+1)-like: non-negative, bounded, not integer counts
    values = expr.to_numpy()
    assert values.min() >= 0 and values.max() < 25
    assert np.mean(values != np.round(values)) > 0.9
    # every signature gene is present, so coverage is complete
    assert sig_genes <= set(expr.columns)
    assert sigscore.example_path() == example_path()


def test_make_example_is_deterministic(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_example.py"), "--outdir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in ("expression.tsv.gz", "labels.csv"):
        regenerated = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        shipped = hashlib.sha256((example_path().parent / name).read_bytes()).hexdigest()
        assert regenerated == shipped, f"{name} differs: rerun scripts/make_example.py"


def test_scores_recover_the_planted_programme(
    example: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    from sklearn.metrics import roc_auc_score

    expr, labels = example
    scores = sigscore.score(expr)
    idx = sigscore.resistance_index(expr)
    modules = [c.removeprefix("activity_") for c in labels.columns if c.startswith("activity_")]
    for m in modules:
        rho = spearmanr(scores[m], labels[f"activity_{m}"])[0]
        assert rho > 0.9, (m, rho)
    index_modules = [c.removeprefix("contrib_") for c in idx.columns if c.startswith("contrib_")]
    planted = labels[[f"activity_{m}" for m in index_modules]].sum(axis=1)
    assert spearmanr(idx["index"], planted)[0] > 0.85
    assert roc_auc_score(labels["resistant"], idx["index"]) > 0.85


def test_demo_writes_scores_index_and_report(tmp_path: Path) -> None:
    outdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--outdir", str(outdir)])
    assert result.exit_code == 0, result.stderr
    for name in ("scores.csv", "index.csv", "report.html"):
        path = outdir / name
        assert path.exists() and path.stat().st_size > 0
        assert str(path) in result.stdout  # the user is told where each output went
    assert "Research use only; not a diagnostic." in result.stdout
    scores = pd.read_csv(outdir / "scores.csv", index_col=0, float_precision="round_trip")
    expr, _ = load_example()
    pd.testing.assert_frame_equal(scores, sigscore.score(expr), check_exact=True, check_names=False)
    idx = pd.read_csv(outdir / "index.csv", index_col=0)
    assert len(idx) == 24 and idx["index"].notna().all()
    html = (outdir / "report.html").read_text(encoding="utf-8")
    for section in ("summary", "contributions", "heatmap", "distribution", "coverage", "manifest"):
        assert f'<section id="{section}">' in html
    assert hashlib.sha256(example_path().read_bytes()).hexdigest() in html
