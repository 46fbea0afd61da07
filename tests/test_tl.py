"""sigscore.tl: scverse conventions (use_raw/layer/copy, key_added), uns provenance, index.

Reference values come from calling :func:`sigscore.score` / :func:`sigscore.index` on the
matrix the option is documented to select, extracted by hand from the AnnData, so a wrong
matrix choice inside ``tl`` shows up as a mismatch.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sigscore
import sigscore.tl as tl
from _sc_support import celltypist_lognorm
from _support import shared_path
from sigscore.errors import UsageError

ad = pytest.importorskip("anndata")

PBMC_SETS = {
    "myeloid": ["LYZ", "CST3", "FCER1G", "S100A8", "S100A9"],
    "t_cell": ["CD3E", "CD3D", "IL7R"],
    "b_nk": ["CD79A", "MS4A1", "NKG7", "GNLY"],
}


@pytest.fixture(scope="module")
def pbmc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(shared_path("singlecell", "scanpy_10x_pbmc68k_reduced.h5ad"))


@pytest.fixture(scope="module")
def cells():
    return celltypist_lognorm()


def _frame(X, names, obs) -> pd.DataFrame:
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return pd.DataFrame(X, index=obs, columns=names)


def _ref(X, names, obs, method="singscore") -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sigscore.score(_frame(X, names, obs), PBMC_SETS, method).to_numpy()


# --------------------------------------------------------------------------------------
# which matrix
# --------------------------------------------------------------------------------------
def test_use_raw_none_scores_X_not_raw(pbmc) -> None:
    a = pbmc.copy()
    out = tl.score(a, PBMC_SETS, "singscore", progress=False)
    assert out is None
    got = a.obsm["sigscore"].to_numpy()
    np.testing.assert_allclose(got, _ref(a.X, a.var_names, a.obs_names), rtol=1e-12)
    raw = _ref(a.raw.X, a.raw.var_names, a.obs_names)
    assert not np.allclose(got, raw)  # .X (scaled) and .raw (log) really differ here
    assert a.uns["sigscore"]["matrix"] == "X"


def test_use_raw_true_scores_raw(pbmc) -> None:
    a = pbmc.copy()
    tl.score(a, PBMC_SETS, "singscore", use_raw=True, progress=False)
    np.testing.assert_allclose(
        a.obsm["sigscore"].to_numpy(), _ref(a.raw.X, a.raw.var_names, a.obs_names), rtol=1e-12
    )
    assert a.uns["sigscore"]["matrix"] == "raw.X"


def test_layer_is_scored_and_recorded(pbmc) -> None:
    a = pbmc.copy()
    a.layers["lognorm"] = a.raw[:, a.var_names].X.copy()
    tl.score(a, PBMC_SETS, "mean", layer="lognorm", progress=False)
    ref = _ref(a.layers["lognorm"], a.var_names, a.obs_names, "mean")
    np.testing.assert_allclose(a.obsm["sigscore"].to_numpy(), ref, rtol=1e-10)
    assert a.uns["sigscore"]["matrix"] == "layers['lognorm']"
    with pytest.raises(UsageError, match="cannot be combined"):
        tl.score(a, PBMC_SETS, layer="lognorm", use_raw=True, progress=False)
    with pytest.raises(UsageError, match="not found"):
        tl.score(a, PBMC_SETS, layer="nope", progress=False)


def test_copy_returns_new_object_and_leaves_input(pbmc) -> None:
    a = pbmc.copy()
    b = tl.score(a, PBMC_SETS, "ucell", copy=True, key_added="uc", progress=False)
    assert b is not a and isinstance(b, ad.AnnData)
    assert "uc" in b.obsm and "uc" not in a.obsm and "uc_myeloid" not in a.obs
    for m in PBMC_SETS:
        np.testing.assert_array_equal(b.obs[f"uc_{m}"].to_numpy(), b.obsm["uc"][m].to_numpy())


def test_options_are_keyword_only(pbmc) -> None:
    with pytest.raises(TypeError):
        tl.score(pbmc.copy(), PBMC_SETS, "mean", None)  # layer positionally
    with pytest.raises(UsageError, match="AnnData"):
        tl.score(pd.DataFrame({"LYZ": [1.0]}), PBMC_SETS)


# --------------------------------------------------------------------------------------
# what is stored
# --------------------------------------------------------------------------------------
def test_uns_provenance_survives_h5ad_round_trip(cells, tmp_path) -> None:
    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="ucell", groupby="lyz_level", progress=False, max_rank=1000)
    uns = a.uns["sigscore"]
    assert uns["method"] == "ucell" and uns["params"]["max_rank"] == 1000
    assert uns["matrix"] == "X"
    assert len(uns["signature_hash"]) >= 16
    assert uns["versions"]["sigscore"] == sigscore.__version__
    cov = uns["coverage"]
    assert set(cov.index) == set(a.obsm["sigscore"].columns)
    assert (cov["n_found"] <= cov["n_genes"]).all()
    # coverage agrees with a direct check of the matrix's genes for one module
    il6 = sigscore.load_signatures(tier="extended").gene_sets(context="up")["il6_jak_stat3"]
    genes = list(il6.up) + list(il6.down)
    assert cov.loc["il6_jak_stat3", "n_genes"] == len(genes)
    # by-group means equal pandas' groupby on the stored obs columns
    by = uns["by_group"]
    want = a.obsm["sigscore"].groupby(a.obs["lyz_level"].astype(str).to_numpy()).mean()
    np.testing.assert_allclose(by.loc[want.index, want.columns].to_numpy(), want.to_numpy())
    assert by["n_cells"].sum() == a.n_obs
    path = tmp_path / "scored.h5ad"
    a.write_h5ad(path)
    b = ad.read_h5ad(path)
    np.testing.assert_array_equal(b.obsm["sigscore"].to_numpy(), a.obsm["sigscore"].to_numpy())
    assert b.uns["sigscore"]["method"] == "ucell"
    assert list(b.uns["sigscore"]["coverage"].index) == list(cov.index)
    manifest = json.loads(b.uns["sigscore"]["manifest_json"])
    assert manifest["method"] == "ucell" and manifest["input"]["n_obs"] == a.n_obs


def test_backed_result_equals_in_memory(cells, tmp_path) -> None:
    plain = ad.AnnData(cells.X, obs=cells.obs[[]].copy(), var=cells.var[[]].copy())
    plain.write_h5ad(tmp_path / "c.h5ad")
    backed = ad.read_h5ad(tmp_path / "c.h5ad", backed="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(plain, method="aucell", progress=False)
        tl.score(backed, method="aucell", progress=False, chunk_size=97)
    np.testing.assert_array_equal(
        backed.obsm["sigscore"].to_numpy(), plain.obsm["sigscore"].to_numpy()
    )
    with pytest.raises(UsageError, match="backed"):
        tl.score(backed, method="aucell", copy=True, progress=False)


def test_n_jobs_does_not_change_scores(cells) -> None:
    a, b = cells.copy(), cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="ucell", n_jobs=1, progress=False)
        tl.score(b, method="ucell", n_jobs=-1, progress=False)
    np.testing.assert_array_equal(a.obsm["sigscore"].to_numpy(), b.obsm["sigscore"].to_numpy())


def test_progress_default_off_without_tty_and_forced_on(cells, capsys) -> None:
    assert tl.resolve_progress(None) is False  # pytest captures stderr: not a terminal
    assert tl.resolve_progress(True) is True
    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="mean", progress=True, chunk_size=100)
    err = capsys.readouterr().err
    assert "sigscore mean" in err


# --------------------------------------------------------------------------------------
# index and aggregation call sigscore.index
# --------------------------------------------------------------------------------------
def test_resistance_index_matches_index_module(cells, tmp_path) -> None:
    from sigscore.index import resistance_index

    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.resistance_index(a, progress=False)
        ref = resistance_index(
            ad.AnnData(a.X, obs=a.obs[[]].copy(), var=a.var[[]].copy()), progress=False
        )
    np.testing.assert_allclose(a.obs["sigscore_index"].to_numpy(), ref["index"].to_numpy())
    contrib = a.obsm["sigscore_index_contrib"]
    # contributions add up to the index exactly (per cell)
    np.testing.assert_allclose(
        contrib.sum(axis=1, skipna=True).to_numpy(), a.obs["sigscore_index"].to_numpy()
    )
    assert a.uns["sigscore_index"]["index_definition"]["hash"]
    assert a.uns["sigscore_index"]["step"] == "resistance_index"
    assert "sigscore" not in a.obsm and "sigscore" not in a.uns  # tl.score's key is untouched
    a.write_h5ad(tmp_path / "idx.h5ad")
    assert "sigscore_index" in ad.read_h5ad(tmp_path / "idx.h5ad").obs


def test_aggregate_mean_matches_index_aggregate(cells) -> None:
    from sigscore.index import aggregate, resistance_index

    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.resistance_index(a, progress=False)
        got = tl.aggregate(a, groupby=["lyz_level", "donor"])
        per_cell = resistance_index(
            ad.AnnData(a.X, obs=a.obs[[]].copy(), var=a.var[[]].copy()), progress=False
        )
    labels = (a.obs["lyz_level"].astype(str) + " | " + a.obs["donor"].astype(str)).to_numpy()
    want = aggregate(per_cell, labels)
    assert list(got.index) == list(want.index.astype(str))
    np.testing.assert_allclose(got["index"].to_numpy(), want["index"].to_numpy())
    np.testing.assert_array_equal(got["n_cells"].to_numpy(), want["n_cells"].to_numpy())
    assert got["n_cells"].sum() == a.n_obs
    assert "sigscore_index_aggregate" in a.uns


def test_aggregate_pseudobulk_from_counts_layer(cells) -> None:
    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tl.aggregate(a, groupby="lyz_level", how="pseudobulk", layer="counts")
    assert set(got.index) == {"low", "mid", "high"}
    assert np.isfinite(got["index"]).all()


def test_aggregate_pseudobulk_streams_a_backed_file_like_in_memory(cells, tmp_path) -> None:
    import anndata as ad

    a = cells.copy()
    a.X = a.layers["counts"].copy()  # pseudobulk sums raw counts
    del a.layers["counts"]
    a.obs = a.obs[["lyz_level"]]
    path = tmp_path / "counts.h5ad"
    a.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = tl.aggregate(a, groupby="lyz_level", how="pseudobulk")
        got = tl.aggregate(backed, groupby="lyz_level", how="pseudobulk")
    np.testing.assert_allclose(got["index"].to_numpy(), want["index"].to_numpy(), atol=1e-12)
    np.testing.assert_array_equal(got["n_cells"].to_numpy(), want["n_cells"].to_numpy())


def test_aggregate_unknown_mask_column_is_a_usage_error(cells) -> None:
    with pytest.raises(UsageError, match="mask column 'malignant' not found"):
        tl.aggregate(cells.copy(), groupby="lyz_level", mask="malignant")


# --------------------------------------------------------------------------------------
# keys: one per step, never overwritten by another step
# --------------------------------------------------------------------------------------
def test_index_after_score_keeps_the_score_results(cells) -> None:
    """README order: tl.score(ucell) then tl.resistance_index must not touch the ucell scores."""
    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="ucell", progress=False)
    ucell = a.obsm["sigscore"].copy()
    ucell_col = a.obs["sigscore_il6_jak_stat3"].to_numpy().copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.resistance_index(a, progress=False)
    assert not [w for w in caught if "replacing" in str(w.message)]
    pd.testing.assert_frame_equal(a.obsm["sigscore"], ucell)
    np.testing.assert_array_equal(a.obs["sigscore_il6_jak_stat3"].to_numpy(), ucell_col)
    assert a.uns["sigscore"]["method"] == "ucell" and a.uns["sigscore"]["step"] == "score"
    idx = a.uns["sigscore_index"]
    assert idx["method"] == "singscore" and idx["step"] == "resistance_index"
    # the index key holds the singscore module scores it used, which differ from ucell's
    used = a.obsm["sigscore_index"]
    assert not np.allclose(used["il6_jak_stat3"].to_numpy(), ucell["il6_jak_stat3"].to_numpy())
    np.testing.assert_array_equal(
        a.obs["sigscore_index_il6_jak_stat3"].to_numpy(), used["il6_jak_stat3"].to_numpy()
    )
    assert set(np.asarray(idx["obs_columns"]).tolist()) >= {
        "sigscore_index",
        "sigscore_index_flags",
        "sigscore_index_il6_jak_stat3",
    }


def test_rerun_with_another_method_replaces_only_its_key_and_says_so(cells) -> None:
    a = cells.copy()
    small = {"myeloid": ["LYZ", "CST3", "S100A8", "S100A9"], "t": ["CD3E", "CD3D", "IL7R"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="ucell", progress=False)
        tl.score(a, small, method="mean", key_added="mine", progress=False)
    ucell = a.obsm["sigscore"].copy()
    with pytest.warns(
        UserWarning, match=r"replacing .*key_added='mine' \(score with method mean\)"
    ):
        tl.score(a, small, method="ucell", key_added="mine", progress=False)
    pd.testing.assert_frame_equal(a.obsm["sigscore"], ucell)  # the other key is kept
    assert a.uns["mine"]["method"] == "ucell" and a.uns["sigscore"]["method"] == "ucell"
    # a rerun with other sets drops the earlier run's stale module columns
    with pytest.warns(UserWarning, match="replacing"):
        tl.score(
            a, {"b": ["CD79A", "MS4A1", "CD19"]}, method="mean", key_added="mine", progress=False
        )
    assert "mine_myeloid" not in a.obs and "mine_b" in a.obs
    assert list(a.obsm["mine"].columns) == ["b"]


def test_same_method_rerun_is_quiet_and_clashing_key_is_refused(cells) -> None:
    a = cells.copy()
    sets = {"index": ["LYZ", "CST3", "S100A8", "S100A9"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.resistance_index(a, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.resistance_index(a, progress=False)
    assert not [w for w in caught if "replacing" in str(w.message)]
    # a module named "index" scored under key "sigscore" would write obs["sigscore_index"]
    with (
        pytest.raises(UsageError, match="would overwrite obs columns written under"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        tl.score(a, sets, method="mean", progress=False)
    assert a.uns["sigscore_index"]["step"] == "resistance_index"


def test_replacement_warning_points_at_the_callers_line(cells) -> None:
    a = cells.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, method="mean", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.score(a, method="ucell", progress=False)
    mine = [w for w in caught if "replacing" in str(w.message)]
    assert mine and mine[0].filename == __file__
