"""Reference cohorts: build, save, reload, percentiles checked against numpy/scipy."""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.stats import percentileofscore

from _support import TCGA_TPM10, shared_path
from sigscore.errors import CoverageError, InputError
from sigscore.index import resistance_index
from sigscore.index.reference import Distribution, Reference


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


@cache
def lihc_subsets() -> pd.DataFrame:
    """363 TCGA-LIHC tumours × 189 genes (log2(FPKM+1)-like); clinical columns dropped."""
    path = shared_path("tcga_lihc_subsets", "diffAREGeneexprClin_onlyTumor.txt")
    tab = pd.read_csv(path, sep="\t", index_col=0)
    clinical = ["id", "futime", "fustat", "age", "gender", "grade", "stage", "T", "M", "N"]
    return tab.drop(columns=clinical).astype(float)


@cache
def lihc_tpm10() -> pd.DataFrame:
    path = shared_path(*TCGA_TPM10)
    return np.log2(pd.read_csv(path, sep="\t", index_col=0) + 1.0).T


def test_distribution_midrank_percentiles_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    smooth = rng.normal(size=363)
    probes = np.percentile(smooth, [5, 10, 25, 50, 75, 90, 95], method="hazen")
    np.testing.assert_allclose(
        Distribution.from_values(smooth).percentile(probes), [5, 10, 25, 50, 75, 90, 95], atol=0.1
    )
    # mid-rank: (#below + ½ #equal) / n, as scipy's kind="mean", also with ties
    x = np.round(smooth, 1)
    dist = Distribution.from_values(x)
    by_scipy = [percentileofscore(x, v, kind="mean") for v in x]
    np.testing.assert_allclose(dist.percentile(x), by_scipy, atol=0.15)
    assert dist.percentile([x.min() - 1, x.max() + 1]).tolist() == [0.0, 100.0]
    assert np.isnan(dist.percentile([np.nan])[0])


def test_build_save_reload_and_percentiles_on_tcga_subsets(tmp_path):
    """A mechanism test: the 189-gene subset covers at most one gene per module, so the
    default policy refuses it and only a permissive policy (min_genes=1) scores it."""
    data = lihc_subsets()
    with pytest.raises(CoverageError):
        quiet(resistance_index, data)
    permissive = {"min_genes": 1, "warn_below": 0.0}
    ref = quiet(
        Reference.build,
        data,
        name="TCGA-LIHC 363 tumours (189 genes)",
        coverage_policy=permissive,
    )
    result = quiet(resistance_index, data, coverage_policy=permissive)
    assert ref.distributions["index"].n == 363
    path = ref.save(tmp_path / "lihc.json")
    text = path.read_text()
    assert path.stat().st_size < 200_000
    # no expression data and no sample identifiers inside
    assert "TCGA-2Y" not in text and "SOCS3" not in text
    assert "Research use only" in text
    loaded = Reference.load(path)
    assert (
        loaded.definition_hash == result.attrs["sigscore"]["manifest"]["index_definition"]["hash"]
    )
    assert set(loaded.modules) == {
        c.removeprefix("score_")
        for c in result.columns
        if c.startswith("score_") and result[c].notna().any()
    }
    # percentiles of the cohort's own samples = their mid-rank percentiles, by hand
    idx = result["index"].to_numpy()
    np.testing.assert_allclose(
        loaded.percentile("index", idx),
        [percentileofscore(idx, v, kind="mean") for v in idx],
        atol=0.15,
    )
    probes = np.percentile(idx, [10, 50, 90], method="hazen")
    np.testing.assert_allclose(loaded.percentile("index", probes), [10, 50, 90], atol=0.1)
    # resistance_index(reference=path) adds the same percentiles
    with_ref = quiet(resistance_index, data.iloc[:20], reference=path, coverage_policy=permissive)
    np.testing.assert_allclose(
        with_ref["pct_index"], loaded.percentile("index", with_ref["index"]), atol=1e-12
    )
    for m in loaded.modules:
        np.testing.assert_allclose(
            with_ref[f"pct_{m}"], loaded.percentile(m, with_ref[f"score_{m}"]), atol=1e-12
        )


def test_reference_from_tpm10_and_from_an_index_result(tmp_path):
    data = lihc_tpm10()
    result = quiet(resistance_index, data)
    a = Reference.build(result, name="ten")
    b = quiet(Reference.build, data, name="ten")
    np.testing.assert_allclose(
        a.distributions["index"].quantiles, b.distributions["index"].quantiles, atol=1e-12
    )
    loaded = Reference.load(a.save(tmp_path / "ten.json"))
    # with 10 samples the i-th smallest sits at (i - 0.5) * 10 percent
    order = np.argsort(result["index"].to_numpy())
    pct = loaded.percentile("index", result["index"].to_numpy()[order])
    np.testing.assert_allclose(pct, (np.arange(10) + 0.5) * 10, atol=0.1)


def test_load_rejects_corrupt_wrong_and_mismatched_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a sigscore reference"):
        Reference.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/1"}))
    with pytest.raises(InputError, match="schema"):
        Reference.load(other)
    with pytest.raises(InputError, match="not found"):
        Reference.load(tmp_path / "missing.json")
    with pytest.raises(InputError, match="cannot read reference file"):
        Reference.load(tmp_path)  # a folder: was a raw IsADirectoryError
    data = lihc_tpm10()
    path = quiet(Reference.build, data).save(tmp_path / "ok.json")
    obj = json.loads(path.read_text())
    obj["distributions"]["index"]["quantiles"] = obj["distributions"]["index"]["quantiles"][::-1]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(obj))
    with pytest.raises(InputError, match="non-decreasing"):
        Reference.load(broken)
    obj = json.loads(path.read_text())
    obj["index_definition"]["hash"] = "0" * 64
    mismatched = tmp_path / "mismatch.json"
    mismatched.write_text(json.dumps(obj))
    with pytest.raises(InputError, match="rebuild the reference"):
        quiet(resistance_index, data, reference=mismatched)
    with pytest.raises(InputError, match="method"):
        quiet(resistance_index, data, reference=path, method="ucell")
