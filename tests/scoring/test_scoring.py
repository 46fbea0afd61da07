"""sigscore.score(): inputs, harmonisation, coverage policy, errors, manifest, invariances."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp

import sigscore
from _support import TCGA_TPM10, shared_path
from sigscore.errors import CoverageError, InputError, UsageError

SETS = {
    "stat3_up": ["STAT3", "SOCS3", "JAK2", "IL6ST", "IL6R"],
    "emt_dir": {"up": ["VIM", "CDH2", "TWIST1", "FN1"], "down": ["CDH1", "KRT19", "EPCAM"]},
}


@pytest.fixture(scope="module")
def tcga_log() -> pd.DataFrame:
    """Real TCGA-LIHC TPM (genes × 10 samples, SYMBOL|ENTREZ ids) as log2(TPM + 1)."""
    path = shared_path(*TCGA_TPM10)
    return np.log2(pd.read_csv(path, sep="\t", index_col=0) + 1.0)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    genes = [*SETS["stat3_up"], *SETS["emt_dir"]["up"], *SETS["emt_dir"]["down"]]
    genes += [f"BG{i}" for i in range(60)]
    return pd.DataFrame(
        rng.gamma(2.0, 1.5, size=(12, len(genes))),
        index=[f"s{i}" for i in range(12)],
        columns=genes,
    )


def test_default_scores_shipped_signatures_with_coverage_and_manifest(tcga_log):
    scores = sigscore.score(tcga_log, genes_axis="rows")
    sigs = sigscore.load_signatures()
    assert list(scores.columns) == sigs.names
    assert list(scores.index) == list(tcga_log.columns)  # input order kept
    meta = scores.attrs["sigscore"]
    manifest = meta["manifest"]
    assert manifest["method"] == "singscore"
    assert manifest["signatures"]["hash"] == sigs.content_hash
    assert manifest["input"]["n_obs"] == 10 and manifest["input"]["id_type"] == "symbol_entrez"
    assert manifest["sample_independent"] is True
    cov = {rec["module"]: rec for rec in meta["coverage"]}
    # every module is found almost completely in a real full transcriptome
    assert all(rec["fraction"] >= 0.9 for rec in cov.values()), cov
    # IL4 is absent from this TCGA matrix: reported, not hidden
    assert "IL4" in cov["inflammation"]["missing"]
    # plain identifier lookups (STAT3|6774 for STAT3) are not listed as matched via another name
    assert "STAT3" in cov["il6_jak_stat3"]["found"]
    assert "STAT3" not in cov["il6_jak_stat3"]["matched_via"]


def test_input_types_agree(small):
    expected = sigscore.score(small, SETS)
    adata = ad.AnnData(
        small.to_numpy(), obs=pd.DataFrame(index=small.index), var=pd.DataFrame(index=small.columns)
    )
    from_adata = sigscore.score(adata, SETS)
    from_polars = sigscore.score(pl.from_pandas(small.reset_index(names="sample")), SETS)
    from_rows = sigscore.score(small.T, SETS, genes_axis="rows")
    for other in (from_adata, from_polars, from_rows):
        np.testing.assert_allclose(other.to_numpy(), expected.to_numpy())
        assert list(other.index) == list(small.index)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_invalid_chunk_size_is_a_usage_error(small, bad):
    # -1 used to yield empty row blocks and a raw numpy ValueError when results were stored
    with pytest.raises(UsageError, match="chunk_size"):
        sigscore.score(small, SETS, method="ucell", chunk_size=bad)


def test_aliases_and_duplicates_after_harmonisation(small):
    renamed = small.rename(columns={"CDH1": "E-cadherin", "STAT3": "stat3"})
    scores = sigscore.score(renamed, SETS)
    np.testing.assert_allclose(scores.to_numpy(), sigscore.score(small, SETS).to_numpy())
    cov = {r["module"]: r for r in scores.attrs["sigscore"]["coverage"]}
    assert cov["emt_dir"]["matched_via"]["CDH1"] == "E-cadherin"
    assert cov["emt_dir"]["matched_how"]["CDH1"] == "curated"
    assert cov["stat3_up"]["matched_via"]["STAT3"] == "stat3"  # case matches are reported
    assert cov["stat3_up"]["matched_how"]["STAT3"] == "case"
    # an alias column next to its approved symbol is kept apart (not merged), and reported
    dup = small.assign(**{"PD-L1": small["STAT3"] + 100.0})
    dup = dup.rename(columns={"STAT3": "CD274"})
    kept = sigscore.score(dup, {"x": ["CD274", "SOCS3", "JAK2"]}, method="mean")
    notes = " ".join(kept.attrs["sigscore"]["manifest"]["input"]["notes"])
    assert "PD-L1 (CD274)" in notes and "kept apart" in notes
    alone = sigscore.score(
        dup.drop(columns="PD-L1"), {"x": ["CD274", "SOCS3", "JAK2"]}, method="mean"
    )
    np.testing.assert_allclose(kept.to_numpy(), alone.to_numpy())  # CD274 is the CD274 column


def test_unknown_method_lists_valid_ones(small):
    with pytest.raises(ValueError, match="valid methods: ssgsea, gsva"):
        sigscore.score(small, SETS, method="gsea2")


def test_unknown_parameter_is_a_usage_error(small):
    with pytest.raises(ValueError, match="has no parameter"):
        sigscore.score(small, SETS, method="ucell", alpha=3)


def test_no_genes_matched_raises_coverage_error_with_table(small):
    junk = small.copy()
    junk.columns = [f"NOTAGENE{i}" for i in range(junk.shape[1])]
    with pytest.raises(CoverageError) as info, pytest.warns(UserWarning, match="excluded"):
        sigscore.score(junk, SETS)
    assert "no signature could be scored" in info.value.message
    assert {r["module"] for r in info.value.detail["coverage"]} == set(SETS)


def test_module_below_minimum_is_excluded_as_nan_with_warning(small):
    sets = {**SETS, "tiny": ["STAT3", "NOTAGENE1", "NOTAGENE2", "NOTAGENE3"]}
    with pytest.warns(UserWarning, match="'tiny' excluded: only 1 of 4"):
        scores = sigscore.score(small, sets)
    assert scores["tiny"].isna().all() and scores[["stat3_up", "emt_dir"]].notna().all().all()
    assert scores.attrs["sigscore"]["manifest"]["excluded_sets"] == ["tiny"]
    with pytest.warns(UserWarning, match="low coverage"):
        sigscore.score(small, sets, coverage_policy={"min_genes": 1})


def test_nan_and_inf_are_reported_where(small):
    bad = small.copy()
    bad.loc["s4", "CDH2"] = np.nan
    with pytest.raises(InputError, match=r"first at sample 's4', gene 'CDH2'"):
        sigscore.score(bad, SETS)
    bad.loc["s4", "CDH2"] = np.inf
    with pytest.raises(InputError, match="NaN/Inf"):
        sigscore.score(sp.csr_matrix(bad.to_numpy()), SETS, var_names=bad.columns)


def test_negative_values_refused_by_count_only_option(small):
    neg = small - 2.0
    with pytest.raises(UsageError, match="negative"):
        sigscore.score(neg, SETS, method="gsva", kcdf="poisson")


def test_bad_inputs_are_usage_errors(small):
    with pytest.raises(UsageError, match="gene names are required"):
        sigscore.score(small.to_numpy(), SETS)
    with pytest.raises(UsageError, match="cannot score data of type"):
        sigscore.score(b"bytes are not a matrix", SETS)
    with pytest.raises(InputError, match="not a matrix: file not found"):
        sigscore.score("not a matrix", SETS)  # a str is a path
    with pytest.raises(UsageError, match="genes_axis"):
        sigscore.score(small, SETS, genes_axis="diagonal")
    with pytest.raises(UsageError, match="coverage_policy"):
        sigscore.score(small, SETS, coverage_policy={"min_gens": 2})


def test_gene_stats_streaming_matches_numpy(small):
    X = small.to_numpy()
    stats = sigscore.scoring.gene_stats(sp.csr_matrix(X), chunk_rows=5)
    np.testing.assert_allclose(stats.mean, X.mean(axis=0))
    np.testing.assert_allclose(stats.var, X.var(axis=0, ddof=1))


def test_zscore_with_reference_stats_is_rowwise_and_sample_independent(small):
    prepared = sigscore.scoring.prepare(small, SETS)
    stats = sigscore.scoring.gene_stats(prepared.expr.X)
    batch = sigscore.score(small, SETS, method="zscore", reference_stats=stats, chunk_size=4)
    alone = sigscore.score(small.iloc[[5]], SETS, method="zscore", reference_stats=stats)
    np.testing.assert_allclose(alone.to_numpy()[0], batch.to_numpy()[5])
    assert batch.attrs["sigscore"]["manifest"]["sample_independent"] is True
    # against the batch's own statistics, zscore is batch-relative and says so
    plain = sigscore.score(small, SETS, method="zscore")
    assert plain.attrs["sigscore"]["manifest"]["sample_independent"] is False
    np.testing.assert_allclose(plain.to_numpy(), batch.to_numpy(), atol=1e-10)


def test_empty_matrix_is_an_input_error(small):
    with pytest.raises(InputError, match="the matrix is empty"):
        sigscore.score(small.iloc[:0], SETS)
    with pytest.raises(InputError, match="the matrix is empty"):
        sigscore.score(small.iloc[:, :0], SETS)
