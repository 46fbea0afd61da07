"""The resistance index: exact contributions, coverage exclusion, single-sample invariance,
user definitions, treatment × index interaction, single-cell aggregation."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import yaml

from _support import TCGA_TPM10, shared_path
from sigscore.errors import UsageError
from sigscore.index import (
    aggregate,
    evaluate,
    index_from_scores,
    resistance_index,
)
from sigscore.index.definition import load_index_definition

# the index's modules, in the definition's order (what index_from_scores reads)
MODULES = load_index_definition().module_names


@cache
def tcga_log_tpm() -> pd.DataFrame:
    """TCGA-LIHC 10 samples as samples × genes log2(TPM + 1) (gene names ``SYMBOL|ENTREZ``)."""
    path = shared_path(*TCGA_TPM10)
    tpm = pd.read_csv(path, sep="\t", index_col=0)
    return np.log2(tpm + 1.0).T


@cache
def tcga_unique_symbols() -> pd.DataFrame:
    """The TCGA matrix with one column per harmonised symbol (first occurrence kept).

    The scoring engine merges duplicate symbols by the highest mean over the batch, which
    depends on the other samples; collapsing them beforehand, per column, isolates the
    index's own single-sample property (see test_duplicate_merge_is_batch_dependent).
    """
    from sigscore.genes import harmonise

    expr = tcga_log_tpm()
    h = harmonise(list(expr.columns))
    keys = pd.Index([s if s is not None else q for q, s in zip(h.queries, h.symbols, strict=True)])
    keep = ~keys.duplicated()
    out = expr.loc[:, keep]
    out.columns = keys[keep]
    return out


def quiet_index(*args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return resistance_index(*args, **kwargs)


def write_definition(tmp_path, modules, name="lab_index", **extra):
    """A user index YAML built from the shipped one with ``modules`` replaced."""
    shipped = load_index_definition()
    doc = shipped.to_dict()
    doc.update(name=name, version="0.1.0", modules=modules, **extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------
# the formula, on hand-made score frames
# --------------------------------------------------------------------------------------
def test_contributions_sum_to_index_and_match_hand_formula():
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(rng.normal(0, 0.2, size=(40, len(MODULES))), columns=MODULES)
    definition = load_index_definition()
    out = index_from_scores(scores, definition)
    contrib = out[[f"contrib_{m}" for m in MODULES]]
    assert np.max(np.abs(contrib.sum(axis=1) - out["index"])) < 1e-9
    # hand formula: Σ sign·w·s / Σ w over the definition's terms
    w = np.array([t.weight for t in definition.modules], dtype=float)
    sgn = np.array([t.sign for t in definition.modules], dtype=float)
    expected = scores[[t.module for t in definition.modules]].to_numpy() @ (sgn * w) / w.sum()
    np.testing.assert_allclose(out["index"], expected, rtol=0, atol=1e-12)
    assert (out["modules_used"] == ",".join(MODULES)).all()
    assert (out["flags"] == "").all()
    man = out.attrs["sigscore"]["manifest"]
    assert man["index_definition"]["hash"] == definition.content_hash
    assert man["research_use_only"] == "Research use only; not a diagnostic."


def test_excluded_module_renormalises_and_flags():
    rng = np.random.default_rng(2)
    scores = pd.DataFrame(rng.normal(size=(6, len(MODULES))), columns=MODULES)
    coverage = [{"module": m, "n_genes": 14, "n_found": 14, "status": "ok"} for m in MODULES]
    emt = MODULES.index("emt")
    coverage[emt] = {"module": "emt", "n_genes": 14, "n_found": 2, "status": "excluded"}
    out = index_from_scores(scores, load_index_definition(), coverage=coverage)
    kept = [m for m in MODULES if m != "emt"]
    # shipped weights are equal, so the index is the mean of the six remaining modules
    np.testing.assert_allclose(out["index"], scores[kept].mean(axis=1), atol=1e-12)
    assert out["score_emt"].isna().all() and out["contrib_emt"].isna().all()
    assert (out["flags"].str.contains(r"excluded: emt \(2/14 genes\)")).all()
    assert "emt" not in out["modules_used"].iloc[0].split(",")
    assert out.attrs["sigscore"]["manifest"]["modules_excluded"] == ["emt"]


def test_module_below_coverage_excluded_on_real_data():
    """Drop all but two EMT genes from TCGA: EMT is excluded, flagged, and the index renormalised."""
    from sigscore.signatures import load_signatures

    expr = tcga_log_tpm()
    symbols = expr.columns.str.split("|").str[0]
    emt = load_signatures(load_index_definition().tier).gene_sets()["emt"]
    emt_genes = set(emt.up) | set(emt.down)
    others = set()
    for name, spec in load_signatures(load_index_definition().tier).gene_sets().items():
        if name != "emt":
            others |= set(spec.up) | set(spec.down)
    droppable = emt_genes - others
    keep_two = sorted(emt_genes & set(symbols))[:2]
    drop = (symbols.isin(droppable) & ~symbols.isin(keep_two)) | symbols.isin(
        (emt_genes & others) - set(keep_two)
    )
    reduced = expr.loc[:, ~drop]
    with pytest.warns(UserWarning, match="emt"):
        out = resistance_index(reduced)
    assert out["score_emt"].isna().all()
    assert out["flags"].str.contains(r"excluded: emt \(\d+/\d+ genes\)").all()
    full = quiet_index(expr)
    assert full["score_emt"].notna().all()
    contrib = out.filter(like="contrib_")
    np.testing.assert_allclose(contrib.sum(axis=1), out["index"], atol=1e-9)


# --------------------------------------------------------------------------------------
# real data: exactness and single-sample invariance
# --------------------------------------------------------------------------------------
def test_real_data_contributions_and_single_sample_invariance():
    expr = tcga_unique_symbols()
    batch = quiet_index(expr)
    man = batch.attrs["sigscore"]["manifest"]
    assert man["method"] == "singscore" and man["sample_independent"] is True
    assert man["index_definition"]["name"] == load_index_definition().name
    contrib = batch.filter(like="contrib_")
    assert np.max(np.abs(contrib.sum(axis=1) - batch["index"])) < 1e-9
    for sample in expr.index:
        alone = quiet_index(expr.loc[[sample]])
        a = alone.select_dtypes("number").iloc[0]
        b = batch.loc[sample, a.index].astype(float)
        np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=0, atol=1e-12)
    # a batch-relative method is labelled as such
    gsva = quiet_index(expr, method="gsva")
    assert gsva.attrs["sigscore"]["manifest"]["sample_independent"] is False


def test_duplicate_symbols_do_not_break_single_sample_invariance():
    # raw TCGA ids collapse 32 duplicated symbols; the default merge is per sample

    expr = tcga_log_tpm()
    batch = quiet_index(expr)
    alone = quiet_index(expr.iloc[[0]])
    np.testing.assert_allclose(alone["index"].iloc[0], batch["index"].iloc[0], rtol=0, atol=1e-12)


def test_user_definition_yaml_loads_and_changes_index(tmp_path):
    expr = tcga_log_tpm()
    shipped = quiet_index(expr)
    only_il6 = write_definition(tmp_path, [{"module": "il6_jak_stat3", "sign": 1, "weight": 1.0}])
    out = quiet_index(expr, definition=only_il6)
    np.testing.assert_allclose(out["index"], shipped["score_il6_jak_stat3"], atol=1e-12)
    assert out.attrs["sigscore"]["manifest"]["index_definition"]["name"] == "lab_index"
    # flipping a sign and doubling a weight changes the index exactly as the formula says
    path = write_definition(
        tmp_path,
        [
            {"module": "il6_jak_stat3", "sign": 1, "weight": 2.0},
            {"module": "proliferation", "sign": -1, "weight": 1.0},
        ],
        name="lab_index_2",
    )
    out2 = quiet_index(expr, definition=path)
    expected = (2 * shipped["score_il6_jak_stat3"] - shipped["score_proliferation"]) / 3
    np.testing.assert_allclose(out2["index"], expected, atol=1e-12)
    assert not np.allclose(out2["index"], shipped["index"])


# --------------------------------------------------------------------------------------
# treatment × index interaction (BIOSTORM: predictive claims need the interaction)
# --------------------------------------------------------------------------------------
def synthetic_trial(interaction: float, n: int = 800, seed: int = 7):
    rng = np.random.default_rng(seed)
    idx = pd.Series(rng.normal(size=n), index=[f"P{i}" for i in range(n)])
    treated = rng.integers(0, 2, n)
    # prognostic effect of the index in both arms (0.5), plus the planted interaction
    eta = -0.2 + 0.5 * idx.to_numpy() + 0.3 * treated + interaction * idx.to_numpy() * treated
    labels = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    hazard = np.exp(0.3 * idx.to_numpy() - 0.4 * treated + interaction * idx.to_numpy() * treated)
    t_event = rng.exponential(1 / hazard)
    t_cens = rng.exponential(2.0, n)
    time = np.minimum(t_event, t_cens)
    event = (t_event <= t_cens).astype(int)
    return idx, labels, treated, time, event


def test_interaction_detected_when_planted():
    idx, y, tr, time, event = synthetic_trial(interaction=1.0)
    rep = evaluate(idx, y, treatment=tr, time=time, event=event, n_boot=200)
    for model in ("logistic", "cox"):
        row = rep.interaction.loc[("resistance index", model)]
        assert row["p"] < 1e-3, (model, row)
        assert row["ci_low"] > 0
        # the planted value is per SD of the index (≈1 here), so it lies in the CI
        assert row["ci_low"] < 1.0 / idx.std() < row["ci_high"]
    auc = rep.auc.loc["resistance index"]
    assert auc["ci_low"] < auc["auc"] < auc["ci_high"]
    assert "Research use only" in rep.to_markdown()


def test_interaction_not_detected_without_it():
    idx, y, tr, time, event = synthetic_trial(interaction=0.0)
    rep = evaluate(idx, y, treatment=tr, time=time, event=event, n_boot=200)
    for model in ("logistic", "cox"):
        row = rep.interaction.loc[("resistance index", model)]
        assert row["p"] > 0.05, (model, row)
        assert row["ci_low"] < 0 < row["ci_high"]
    # yet the index is prognostic in both arms: a within-cohort AUC alone would mislead
    assert rep.auc.loc["resistance index", "auc"] > 0.55


def test_auc_matches_sklearn_and_baselines_on_tcga():
    from sklearn.metrics import roc_auc_score

    expr = tcga_log_tpm()
    tumour = pd.Series([int(s.endswith("01A")) for s in expr.index], index=expr.index)
    gmt = shared_path("msigdb_hallmark", "h.all.v7.0.symbols.gmt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = evaluate(expr, tumour, hallmark_gmt=gmt, n_boot=200)
        idx = resistance_index(expr)["index"]
    assert rep.auc.loc["resistance index", "auc"] == pytest.approx(roc_auc_score(tumour, idx))
    il6 = expr.loc[:, expr.columns.str.startswith("IL6|")].iloc[:, 0]
    assert rep.auc.loc["gene IL6", "auc"] == pytest.approx(roc_auc_score(tumour, il6))
    assert {"gene STAT3", "gene CD274"} <= set(rep.auc.index)
    assert any(k.startswith("Hallmark IL6_JAK_STAT3") for k in rep.auc.index)


def test_evaluate_rejects_non_binary_labels():
    with pytest.raises(UsageError, match="0 and 1"):
        evaluate(pd.Series([0.1, 0.2, 0.3]), [0, 1, 2], n_boot=10)


# --------------------------------------------------------------------------------------
# single cell: mean of cells and pseudobulk
# --------------------------------------------------------------------------------------
@cache
def sc_counts() -> pd.DataFrame:
    path = shared_path("singlecell", "celltypist_sample_cell_by_gene.csv.gz")
    counts = np.rint(pd.read_csv(path, index_col=0, nrows=120))
    # the file stores some counts as 0.999999999999999; integers keep sums exact. Genes with
    # no count in these cells are dropped to keep the test fast (both sides see the same).
    return counts.loc[:, counts.sum(axis=0) > 0]


def test_aggregate_mean_matches_groupby_and_keeps_exactness():
    counts = sc_counts()
    logn = np.log1p(counts.div(counts.sum(axis=1), axis=0) * 1e4)
    per_cell = quiet_index(logn)
    groups = np.array(["a", "b", "c"])[np.arange(len(logn)) % 3]
    mask = np.arange(len(logn)) % 4 != 0
    agg = aggregate(per_cell, groups, mask=mask)
    sub = per_cell.loc[mask]
    exp_mean = sub["index"].groupby(groups[mask]).mean()
    np.testing.assert_allclose(agg["index"], exp_mean.loc[agg.index], atol=1e-12)
    np.testing.assert_array_equal(
        agg["n_cells"], pd.Series(groups[mask]).value_counts().sort_index()
    )
    np.testing.assert_allclose(agg.filter(like="contrib_").sum(axis=1), agg["index"], atol=1e-9)


def test_aggregate_pseudobulk_equals_scoring_summed_counts():
    counts = sc_counts()
    groups = np.array(["g1", "g2"])[np.arange(len(counts)) % 2]
    out = quiet_aggregate(counts, groups, how="pseudobulk")
    summed = counts.groupby(groups).sum()
    by_hand = np.log2(summed.div(summed.sum(axis=1), axis=0) * 1e6 + 1)
    expected = quiet_index(by_hand)
    np.testing.assert_allclose(out["index"], expected["index"], atol=1e-12)
    assert out["n_cells"].tolist() == [60, 60]


def quiet_aggregate(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return aggregate(*args, **kwargs)
