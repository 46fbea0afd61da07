"""CLI options that used to guess: -o without an extension, --layer raw, install hints."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import sigscore
from _support import shared_path
from sigscore import errors
from sigscore.cli import app
from sigscore.example import example_path

runner = CliRunner()


def test_output_without_extension_is_a_usage_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["score", str(example_path()), "-o", "x"])
    assert r.exit_code == 2, r.stderr
    assert "no extension" in r.stderr and "x.csv" in r.stderr and "x/" in r.stderr
    assert not (tmp_path / "x").exists()
    # a trailing slash (or an existing folder) still means one file per input
    r = runner.invoke(app, ["score", str(example_path()), "-o", "x/"])
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["expression.scores.csv"]


def test_layer_raw_scores_the_h5ad_raw(tmp_path) -> None:
    ad = pytest.importorskip("anndata")
    path = shared_path("singlecell", "scanpy_10x_pbmc68k_reduced.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(path)
        expr = sigscore.read_matrix(path, layer="raw")
        want = sigscore.score(adata, use_raw=True)
    assert expr.shape == adata.raw.shape and "matrix: raw.X" in expr.notes
    np.testing.assert_array_equal(np.asarray(expr.X.todense()), adata.raw.X.toarray())
    out = tmp_path / "raw.csv"
    r = runner.invoke(app, ["score", str(path), "--layer", "raw", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    got = pd.read_csv(out, index_col=0, float_precision="round_trip")
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


class _Dist:
    def __init__(self, doc: dict | None) -> None:
        self.doc = doc

    def read_text(self, name: str) -> str | None:
        return None if self.doc is None else json.dumps(self.doc)


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        (
            {"url": "file:///src/sig%20score", "dir_info": {"editable": True}},
            "pip install -e '/src/sig score[service]'",
        ),
        ({"url": "file:///src/sigscore", "dir_info": {}}, "pip install '/src/sigscore[service]'"),
        (None, "pip install 'sigscore[service]'"),
        ({"url": "https://files/x.whl", "archive_info": {}}, "pip install 'sigscore[service]'"),
    ],
)
def test_install_hint_matches_how_sigscore_was_installed(monkeypatch, doc, want) -> None:
    from importlib import metadata

    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(doc))
    assert errors.install_hint("service").startswith(want)


def test_install_hint_for_this_checkout() -> None:
    from importlib import metadata

    text = metadata.distribution("sigscore").read_text("direct_url.json")
    if not text or "dir_info" not in json.loads(text):
        pytest.skip("sigscore is not installed from a source folder here")
    root = Path(__file__).resolve().parents[1]
    assert f"'{root}[dask]'" in errors.install_hint("dask")


def test_reader_advice_is_spelled_for_the_caller(tmp_path) -> None:
    from sigscore.errors import UsageError

    with pytest.raises(UsageError, match=r"layer='counts' applies to h5ad input only"):
        sigscore.read_matrix(example_path(), layer="counts")
    r = runner.invoke(app, ["score", str(example_path()), "--layer", "counts"])
    assert r.exit_code == 2
    assert "--layer counts applies to h5ad input only" in r.stderr and "layer=" not in r.stderr
    one_gene = tmp_path / "one.csv"
    one_gene.write_text("sample,STAT3\na,1\nb,2\n")
    r = runner.invoke(app, ["score", str(one_gene), "--genes-axis", "columns"])
    assert r.exit_code == 3 and "(--genes-axis)" in r.stderr, r.stderr


def test_method_help_is_built_from_the_registry(tmp_path, monkeypatch) -> None:
    """--method help lists the registry's methods (default first) and groups them by the
    scale each expects; built when help is shown and kept in the per-user cache."""
    from sigscore.scoring import DEFAULT_METHOD
    from sigscore.scoring.methods import available_methods
    from sigscore.scoring.prepare import SCALE_EXPECTED

    monkeypatch.setenv("SIGSCORE_CACHE_DIR", str(tmp_path))
    names = list(available_methods())
    for command in (["score"], ["index"], ["report"], ["reference", "build"]):
        r = runner.invoke(app, [*command, "--help"], terminal_width=2000)
        assert r.exit_code == 0, r.output
        text = " ".join(r.stdout.split())
        listed = text.split("scoring method: ", 1)[1].split(". Input scale: ", 1)[0]
        assert listed.split(", ") == [
            f"{DEFAULT_METHOD} (default)",
            *(n for n in names if n != DEFAULT_METHOD),
        ]
        scales = text.split(". Input scale: ", 1)[1]
        ranked = scales.split(" rank values within each sample", 1)[0].replace(" and ", ", ")
        logged = scales.split("(TPM, counts or log); ", 1)[1].split(" expect log-scale", 1)[0]
        for name in names:
            rank = SCALE_EXPECTED[name].startswith("any scale")
            assert (name in ranked.split(", ")) == rank
            assert (name in logged.replace(" and ", ", ").split(", ")) == (not rank)
        assert "gsva takes raw counts with -p kcdf=poisson" in text
    assert len(list(tmp_path.glob("method-help-*.pickle"))) == 1
    cached = runner.invoke(app, ["score", "--help"], terminal_width=2000).stdout
    monkeypatch.setenv("SIGSCORE_CACHE_DIR", "off")  # built afresh: the same text
    assert runner.invoke(app, ["score", "--help"], terminal_width=2000).stdout == cached
