"""Calibration on labels: fit recovers planted weights, CV AUC is honest, the fitted
definition round-trips through YAML and every consumer accepts it."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from _support import load_script
from sigscore.errors import InputError
from sigscore.index import fit, resistance_index
from sigscore.index.definition import load_index_definition
from sigscore.synthetic import bulk_cohort

# The planted weights of the validation report (scripts/validate.py, its one definition):
# distinct magnitudes and one negative, so ranking them is a real test.
PLANTED: dict[str, float] = load_script("validate").PLANTED


@cache
def disjoint_modules() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """The shipped modules' genes, each gene kept in its first module only.

    Genes shared between modules would tie their planted activities together; the test is
    of the calibration, not of the overlap between curated sets.
    """
    from sigscore.signatures import load_signatures
    from sigscore.synthetic import disjoint_modules as first_module_only

    return first_module_only(
        load_signatures(load_index_definition().tier).gene_sets(), list(PLANTED)
    )


@cache
def planted_cohort():
    cohort = bulk_cohort(
        disjoint_modules(),
        n_samples=600,
        n_background=1500,
        weights=PLANTED,
        effect=1.0,
        noise=0.5,
        label_strength=10.0,
        seed=11,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        scores = resistance_index(cohort.expression)
    return cohort, scores


def test_fit_recovers_planted_weights_and_auc():
    cohort, scores = planted_cohort()
    res = fit(scores, cohort.labels, n_boot=200, seed=0)
    planted = pd.Series(PLANTED)
    rho = spearmanr(res.coef_standardized[planted.index], planted).statistic
    assert rho >= 0.9, (rho, res.coef_standardized)
    assert res.cv_auc >= 0.9
    lo, hi = res.cv_auc_ci
    assert lo < res.cv_auc < hi
    # signs of the clearly non-zero weights are recovered
    for m, w in PLANTED.items():
        if abs(w) >= 0.6:
            term = next(t for t in res.definition.modules if t.module == m)
            assert int(term.sign) == int(np.sign(w)), m
    assert "Research use only" in res.summary()


def test_fit_on_shuffled_labels_is_at_chance():
    cohort, scores = planted_cohort()
    shuffled = pd.Series(
        np.random.default_rng(3).permutation(cohort.labels.to_numpy()), index=cohort.labels.index
    )
    res = fit(scores, shuffled, n_boot=200, seed=0)
    assert abs(res.cv_auc - 0.5) <= 0.1, res.cv_auc


def test_fitted_definition_round_trips_and_is_monotone_in_the_fit(tmp_path):
    cohort, scores = planted_cohort()
    res = fit(scores, cohort.labels, n_boot=50, seed=0, name="lab_calibrated")
    path = tmp_path / "fitted.yaml"
    res.definition.to_yaml(path)
    loaded = load_index_definition(path)
    assert loaded.name == "lab_calibrated"
    assert loaded.content_hash == res.definition.content_hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        refit = resistance_index(cohort.expression, definition=path)
    # the new index is an increasing affine function of the fitted linear predictor
    modules = res.modules
    eta = (
        res.intercept
        + scores[[f"score_{m}" for m in modules]].to_numpy() @ res.coef[modules].to_numpy()
    )
    slope, intercept = np.polyfit(eta, refit["index"], 1)
    assert slope > 0
    np.testing.assert_allclose(refit["index"], slope * eta + intercept, atol=1e-9)
    man = refit.attrs["sigscore"]["manifest"]["index_definition"]
    assert man["name"] == "lab_calibrated" and man["hash"] == loaded.content_hash


def test_fit_rejects_single_class_labels():
    _, scores = planted_cohort()
    with pytest.raises(InputError, match="each class"):
        fit(scores, np.zeros(len(scores), int), n_boot=10)


def test_fit_rejects_scores_that_are_all_constant():
    _, scores = planted_cohort()
    flat = pd.DataFrame(0.25, index=scores.index, columns=scores.columns)
    labels = np.arange(len(flat)) % 2
    with pytest.raises(InputError, match="every module score is constant"):
        fit(flat, labels, n_boot=10)
