"""sigscore.score / resistance_index entry handling: orientation, paths, coverage diagnoses.

Orientation is checked on the real TCGA-LIHC matrix (genes in rows, as downloaded): every
way of handing it over must give the scores of the explicitly oriented call. Coverage errors
must name the cause the data shows, with advice spelled for the caller (Python keywords,
CLI flags, HTTP form fields).
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import sigscore
from _support import REPO_ROOT, TCGA_TPM10, shared_path
from sigscore.cli import app
from sigscore.errors import CoverageError, UsageError


@pytest.fixture(scope="module")
def tcga() -> pd.DataFrame:
    """TCGA-LIHC 10 samples, genes (SYMBOL|ENTREZ) × samples, read with pandas."""
    return pd.read_csv(shared_path(*TCGA_TPM10), sep="\t", index_col=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_orientation_is_detected_for_frames_paths_and_files(tcga) -> None:
    want = sigscore.score(tcga.T, genes_axis="columns")  # samples × genes, stated
    assert want.shape == (10, 8) and want.notna().all().all()
    for got in (
        sigscore.score(tcga),  # genes × samples, detected
        sigscore.score(tcga.T),
        sigscore.score(str(shared_path(*TCGA_TPM10))),
        sigscore.score(shared_path(*TCGA_TPM10)),
        sigscore.score(tcga, genes_axis="rows"),
    ):
        pd.testing.assert_frame_equal(got, want)
    with open(shared_path(*TCGA_TPM10), "rb") as fh:
        pd.testing.assert_frame_equal(sigscore.score(fh), want)
    text = io.StringIO(tcga.to_csv(sep="\t"))
    np.testing.assert_allclose(sigscore.score(text).to_numpy(), want.to_numpy(), rtol=1e-12)
    idx = sigscore.resistance_index(tcga)
    np.testing.assert_array_equal(
        idx["index"].to_numpy(), sigscore.resistance_index(tcga.T)["index"].to_numpy()
    )
    assert list(idx.index) == list(tcga.columns)


def test_numpy_orientation_follows_var_names(tcga) -> None:
    genes = list(tcga.index)
    rows = sigscore.score(tcga.to_numpy(), var_names=genes, obs_names=list(tcga.columns))
    cols = sigscore.score(tcga.T.to_numpy(), var_names=genes, obs_names=list(tcga.columns))
    np.testing.assert_array_equal(rows.to_numpy(), cols.to_numpy())
    with pytest.raises(UsageError, match="genes_axis must be"):
        sigscore.score(tcga, genes_axis="diagonal")


def test_forced_wrong_axis_is_diagnosed_as_transposed(tcga) -> None:
    with pytest.raises(CoverageError) as info:
        sigscore.score(tcga, genes_axis="columns")
    exc = info.value
    assert exc.detail["cause"] == "transposed"
    assert "looks transposed" in exc.message and "genes_axis='rows'" in exc.message
    assert "--genes-axis rows" in exc.message_for("cli")
    assert "form field genes_axis=rows" in exc.message_for("http")
    assert "genes_axis=" not in exc.message_for("cli")


def test_panel_without_signature_genes_says_how_many_are_there(tcga) -> None:
    sigs = sigscore.load_signatures()
    sig_genes = {g for s in sigs.gene_sets(context="up").values() for g in (*s.up, *s.down)}
    symbols = pd.Index([str(i).split("|")[0] for i in tcga.index])
    keep_sig = sorted(sig_genes & set(symbols))[:3]  # three signature genes on the panel
    others = [g for g in symbols.unique() if g not in sig_genes and g != "?"][:186]
    panel = tcga.set_axis(symbols, axis=0)
    panel = panel[~panel.index.duplicated()].loc[keep_sig + others]
    assert panel.shape[0] == 189
    with pytest.raises(CoverageError) as info:
        sigscore.score(panel)
    exc = info.value
    assert exc.detail["cause"] == "panel"
    assert exc.detail["signature_genes_in_file"] == keep_sig
    assert exc.detail["n_signature_genes"] == len(sig_genes)
    assert f"only 3 of the {len(sig_genes)} signature genes" in exc.message
    assert re.search(r"1[0-9]{2} of the 189 genes are recognised", exc.message)
    assert "Check the gene identifiers" not in exc.message
    best = max(rec["n_found"] for rec in exc.detail["coverage"])  # the module with most found
    assert 1 <= best <= 3
    assert f"coverage_policy={{'min_genes': {best}}}" in exc.message
    assert f"--min-genes {best}" in exc.message_for("cli")


def test_unknown_identifiers_are_diagnosed_as_id_type() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        rng.random((4, 300)),
        index=[f"patient_{c}" for c in "abcd"],
        columns=[f"G{i:05d}" for i in range(300)],
    )
    with pytest.raises(CoverageError) as info:
        sigscore.score(df)
    assert info.value.detail["cause"] == "id_type"
    assert "0 of 300 gene identifiers were recognised" in info.value.message
    assert "--id-type" in info.value.message_for("cli")


def test_cli_error_uses_flags(tmp_path) -> None:
    path = tmp_path / "t.tsv"
    pd.read_csv(shared_path(*TCGA_TPM10), sep="\t", index_col=0).to_csv(path, sep="\t")
    result = CliRunner().invoke(app, ["score", str(path), "--genes-axis", "columns"])
    assert result.exit_code == 4, result.stderr
    assert "--genes-axis rows" in result.stderr and "genes_axis=" not in result.stderr


def test_readme_quick_start_runs_as_written() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## Quick start (library)") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["scores"].shape == (24, 8)
    assert scope["idx"]["index"].notna().all()


# --------------------------------------------------------------------------------------
# scale: stated per method, detected into the manifest, impossible values warned about
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["singscore", "ucell", "aucell", "ssgsea"])
def test_rank_methods_give_the_same_scores_on_any_scale(tcga, method) -> None:
    """What the README and --help state: TPM and log2(TPM + 1) score alike.

    log2(x + 1) keeps every order, except that rounding makes a few tiny TPMs (< 1e-15
    apart) equal, which changes their tied mid-ranks: hence the small tolerance.
    """
    linear = sigscore.score(tcga, method=method)
    logged = sigscore.score(np.log2(tcga + 1.0), method=method)
    np.testing.assert_allclose(linear.to_numpy(), logged.to_numpy(), rtol=1e-3, atol=1e-4)
    assert linear.attrs["sigscore"]["manifest"]["input"]["value_scale"] == "linear"
    assert logged.attrs["sigscore"]["manifest"]["input"]["value_scale"] == "log"
    assert "any scale" in linear.attrs["sigscore"]["manifest"]["input"]["scale_expected"]


def test_negative_values_in_a_linear_matrix_are_warned_at_the_callers_line(tcga) -> None:
    bad = tcga.copy()
    bad.iloc[:50, 0] = -1.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sigscore.score(bad)
    neg = [w for w in caught if "negative value" in str(w.message)]
    assert len(neg) == 1 and "50 negative value(s) (lowest -1.5)" in str(neg[0].message)
    assert neg[0].filename == __file__  # the user's line, not sigscore's internals
    assert result.attrs["sigscore"]["manifest"]["input"]["value_scale"] == "linear"
    # log data below 1 is negative legitimately: no warning, scale "log"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logged = sigscore.score(np.log2(tcga + 0.5))
    assert not [w for w in caught if "negative value" in str(w.message)]
    assert logged.attrs["sigscore"]["manifest"]["input"]["value_scale"] == "log"


def test_coverage_warnings_point_at_the_callers_line(tcga) -> None:
    sets = {"ok": ["STAT3", "SOCS3", "JAK2", "IL6ST"], "thin": ["STAT3", "NOTAGENE1", "NOTAGENE2"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sigscore.score(tcga, sets)
        sigscore.resistance_index(tcga.iloc[:2000])
    mine = [w for w in caught if "excluded" in str(w.message) or "low" in str(w.message)]
    assert mine, [str(w.message) for w in caught]
    assert {w.filename for w in mine} == {__file__}


def test_http_problem_documents_name_form_fields(tcga) -> None:
    pytest.importorskip("fastapi")
    from sigscore_service.problems import error_to_problem

    with pytest.raises(CoverageError) as info:
        sigscore.score(tcga, genes_axis="columns")
    doc = error_to_problem(info.value)
    assert doc["status"] == 422 and doc["extra"]["cause"] == "transposed"
    assert "the form field genes_axis=rows" in doc["detail"]
    assert "genes_axis='rows'" not in doc["detail"] and "--genes-axis" not in doc["detail"]
