"""gsva: parity with R GSVA 1.46 (Gaussian, Poisson, none; mx.diff on/off) and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from _r_gsva import index_sets, load_hallmark, load_tcga_log2, max_abs_diff, random_sets
from sigscore.errors import UsageError
from sigscore.scoring.methods import IndexedSet, get_method, gsva

pytestmark = pytest.mark.r


def _counts() -> pd.DataFrame:
    """24 samples × 500 genes of overdispersed counts, plus two constant genes."""
    rng = np.random.default_rng(42)
    mu = rng.lognormal(2.0, 1.5, size=500)
    values = rng.negative_binomial(5, 5 / (5 + mu), size=(24, 500)).astype(float)
    values[:, 10] = 7.0  # constant genes: dropped by GSVA (and by us)
    values[:, 11] = 0.0
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(24)], columns=[f"G{j}" for j in range(500)]
    )


def _ties() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    values = rng.integers(0, 5, size=(20, 300)).astype(float)
    return pd.DataFrame(
        values, index=[f"T{i}" for i in range(20)], columns=[f"H{j}" for j in range(300)]
    )


def _continuous() -> pd.DataFrame:
    """40 samples × 1,500 genes of correlated continuous values: no two genes tie in d."""
    rng = np.random.default_rng(21)
    values = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 1500)) + rng.normal(size=(40, 1500))
    return pd.DataFrame(
        values * rng.uniform(0.2, 3.0, 1500),
        index=[f"C{i}" for i in range(40)],
        columns=[f"K{j}" for j in range(1500)],
    )


def r_case():
    """Matrices, set groups and R jobs for the ``r_results`` fixture (conftest.py)."""
    tcga, hallmark, counts, ties = load_tcga_log2(), load_hallmark(), _counts(), _ties()
    cont = _continuous()
    ksets = {  # named apart from csets' SET0.. (all groups go to R in one .gmt)
        f"K_{k}": v
        for k, v in random_sets(cont.columns, [10, 40, 150, 400], np.random.default_rng(6)).items()
    }
    csets = random_sets(counts.columns, [5, 15, 40, 100], np.random.default_rng(2))
    csets["SET_CONST"] = ["G10", "G11", *csets["SET0"]]  # loses its constant genes
    tsets = {
        f"T_{k}": v
        for k, v in random_sets(ties.columns, [6, 30, 90], np.random.default_rng(4)).items()
    }
    jobs = {
        "tcga_mx": {"matrix": "tcga", "method": "gsva", "kcdf": "Gaussian"},
        "tcga_nomx": {"matrix": "tcga", "method": "gsva", "kcdf": "Gaussian", "mx_diff": False},
        "tcga_abs": {"matrix": "tcga", "method": "gsva", "kcdf": "Gaussian", "abs_ranking": True},
        "pois_mx": {"matrix": "counts", "method": "gsva", "kcdf": "Poisson"},
        "pois_nomx": {"matrix": "counts", "method": "gsva", "kcdf": "Poisson", "mx_diff": False},
        "none_mx": {"matrix": "ties", "method": "gsva", "kcdf": "none"},
        "cont_mx": {"matrix": "cont", "method": "gsva", "kcdf": "Gaussian"},
        "cont_nomx": {"matrix": "cont", "method": "gsva", "kcdf": "Gaussian", "mx_diff": False},
        "cont_abs": {"matrix": "cont", "method": "gsva", "kcdf": "Gaussian", "abs_ranking": True},
    }
    matrices = {"tcga": tcga, "counts": counts, "ties": ties, "cont": cont}
    groups = {"hallmark": hallmark, "csets": csets, "tsets": tsets, "ksets": ksets}
    return matrices, groups, jobs


@pytest.mark.parametrize(
    "key,params",
    [
        ("tcga_mx", {}),
        ("tcga_nomx", {"max_diff": False}),
        ("tcga_abs", {"abs_ranking": True}),
    ],
)
def test_parity_gaussian_tcga(r_results, key, params):
    data = r_results["tcga"]
    sets = index_sets(data.columns, r_results["hallmark"])
    ours = gsva.run(data.to_numpy(), sets, kcdf="gaussian", r_compat=True, **params)
    assert max_abs_diff(ours, r_results["r"][key], data, sets) <= 1e-4


@pytest.mark.parametrize("key,max_diff", [("pois_mx", True), ("pois_nomx", False)])
def test_parity_poisson_counts(r_results, key, max_diff):
    data = r_results["counts"]
    sets = index_sets(data.columns, r_results["csets"])
    ours = gsva.run(data.to_numpy(), sets, kcdf="poisson", max_diff=max_diff, r_compat=True)
    assert max_abs_diff(ours, r_results["r"][key], data, sets) <= 1e-4


def test_parity_ecdf_with_ties(r_results):
    data = r_results["ties"]
    sets = index_sets(data.columns, r_results["tsets"])
    ours = gsva.run(data.to_numpy(), sets, kcdf="none", r_compat=True)
    assert max_abs_diff(ours, r_results["r"]["none_mx"], data, sets) <= 1e-4


@pytest.mark.parametrize(
    "key,params",
    [
        ("cont_mx", {}),
        ("cont_nomx", {"max_diff": False}),
        ("cont_abs", {"abs_ranking": True}),
    ],
)
def test_default_parity_gaussian_without_ties(r_results, key, params):
    """Without ties in the data the default is R's number within the parity tolerance: the
    same tabulated kernel values (bit-identical), summed pairs-once in sorted order instead
    of R's order. Sums of the same table values that are equal in exact arithmetic can come
    out in different last bits in the two orders, which reorders such genes: ~3e-6 here."""
    data = r_results["cont"]
    sets = index_sets(data.columns, r_results["ksets"])
    ours = gsva.run(data.to_numpy(), sets, **params)
    assert max_abs_diff(ours, r_results["r"][key], data, sets) <= 1e-4


def test_default_close_to_r_on_real_data(r_results):
    """TCGA with 10 samples has genes tied exactly in d (e.g. zero but in one sample): the
    default gives a tie block its mean rank score (gene-order free), R orders it by input
    position, so the two differ there (up to ~0.03) while the statistic is the same."""
    data = r_results["tcga"]
    sets = index_sets(data.columns, r_results["hallmark"])
    ours = gsva.run(data.to_numpy(), sets)
    ref = r_results["r"]["tcga_mx"].loc[data.index, [s.name for s in sets]].to_numpy()
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.999
    # the kernel step itself is R's to rounding: only the tie handling differs
    X = data.to_numpy()
    sd = X.std(axis=0, ddof=1)
    keep = sd >= 1e-10
    np.testing.assert_allclose(
        gsva.logodds(X[:, keep], sd[keep], "gaussian", False),
        gsva.logodds(X[:, keep], sd[keep], "gaussian", True),
        rtol=0,
        atol=1e-12,
    )


def test_constant_genes_dropped():
    data = _counts().to_numpy()
    sets = [
        IndexedSet("with_const", np.array([3, 10, 11, 40, 77])),
        IndexedSet("b", np.arange(100, 160)),
    ]
    keep = np.ones(data.shape[1], dtype=bool)
    keep[[10, 11]] = False
    new = np.cumsum(keep) - 1
    reduced = [
        IndexedSet("with_const", new[[3, 40, 77]]),
        IndexedSet("b", new[np.arange(100, 160)]),
    ]
    for kcdf in ("gaussian", "poisson"):
        np.testing.assert_allclose(
            gsva.run(data, sets, kcdf=kcdf), gsva.run(data[:, keep], reduced, kcdf=kcdf), atol=1e-12
        )


@pytest.mark.parametrize("kcdf", ["gaussian", "none"])
def test_gene_and_set_order_invariance(kcdf):
    data = _ties().to_numpy()  # heavy ties in the ECDF log-odds
    rng = np.random.default_rng(12)
    sets = [IndexedSet(f"s{k}", np.sort(rng.choice(300, k, replace=False))) for k in (5, 30, 70)]
    base = gsva.run(data, sets, kcdf=kcdf)
    perm = rng.permutation(300)
    inverse = np.argsort(perm)
    moved = [IndexedSet(s.name, np.sort(inverse[s.up])) for s in sets]
    np.testing.assert_allclose(gsva.run(data[:, perm], moved, kcdf=kcdf), base, atol=1e-12)
    np.testing.assert_array_equal(gsva.run(data, sets[::-1], kcdf=kcdf), base[:, ::-1])


def test_directional_and_sparse():
    data = _counts().to_numpy()
    up, down = np.arange(0, 25), np.arange(200, 240)
    u = gsva.run(data, [IndexedSet("u", up)])[:, 0]
    d = gsva.run(data, [IndexedSet("d", down)])[:, 0]
    np.testing.assert_array_equal(
        gsva.run(data, [IndexedSet("u", up, np.zeros(0, np.int64))])[:, 0], u
    )
    np.testing.assert_allclose(
        gsva.run(data, [IndexedSet("ud", up, down)])[:, 0], u - d, atol=1e-12
    )
    np.testing.assert_allclose(
        gsva.run(data, [IndexedSet("d", np.zeros(0, np.int64), down)])[:, 0], -d, atol=1e-12
    )
    sets = [IndexedSet("u", up), IndexedSet("ud", up, down)]
    for kcdf in ("gaussian", "poisson"):
        np.testing.assert_allclose(
            gsva.run(sp.csr_matrix(data), sets, kcdf=kcdf),
            gsva.run(data, sets, kcdf=kcdf),
            atol=1e-12,
        )


def test_poisson_rejects_negative_values():
    data = _counts().to_numpy()
    data[3, 17] = -2.0
    with pytest.raises(UsageError, match=r"observation #3 has -2 for gene #17"):
        gsva.run(data, [IndexedSet("s", np.arange(10))], kcdf="poisson")
    with pytest.raises(UsageError, match="non-negative"):
        gsva.run(sp.csr_matrix(data), [IndexedSet("s", np.arange(10))], kcdf="poisson")


def test_bad_parameters():
    data = _counts().to_numpy()
    with pytest.raises(UsageError, match="kcdf"):
        gsva.run(data, [IndexedSet("s", np.arange(10))], kcdf="epanechnikov")
    with pytest.raises(UsageError, match="at least 2"):
        gsva.run(data[:1], [IndexedSet("s", np.arange(10))])
    assert get_method("gsva").params()["kcdf"] == "gaussian"


def _r_kernel_logodds(data: np.ndarray, h: np.ndarray) -> np.ndarray:
    """GSVA 1.46's kernel_estimation.c transcribed: every (j, i) pair, the table read at
    ``(int)(fabs(v) / 10 * 10000)``, ``1 - `` that for v < 0, 0/1 beyond ±10."""
    from scipy.special import ndtr

    table = ndtr(10.0 * np.arange(10001) / 10000)
    v = (data[:, None, :] - data[None, :, :]) / h  # v[j, i, g] = (x_gj - x_gi) / h_g
    inside = np.abs(v) <= 10.0
    c = table[np.where(inside, np.abs(v) / 10.0 * 10000, 0).astype(np.int64)]
    k = np.where(inside, np.where(v < 0, 1.0 - c, c), (v > 0).astype(float))
    p = k.sum(axis=1) / data.shape[0]
    return -np.log((1.0 - p) / p)


def test_gaussian_kernel_matches_direct_sum():
    """The windowed, pairs-once kernel equals the plain O(m²) sum over R's Φ table, and the
    table kernel is within φ(0)/1000 of the exact Φ (the documented truncation error)."""
    from scipy.special import ndtr

    rng = np.random.default_rng(5)
    data = rng.normal(size=(60, 40)) * rng.uniform(0.1, 5, size=40)
    data[:30, :5] = 0.0  # ties within a gene
    data[::7, 5:10] += 100.0  # far-apart values: saturated pairs
    data[::5, 10:15] += 2.1 * data[:, 10:15].std(axis=0, ddof=1)  # near the 8.3-bw window
    sd = data.std(axis=0, ddof=1)
    h = sd / 4.0
    expected = _r_kernel_logodds(data, h)
    for values in (data, sp.csr_matrix(data)):
        for r_compat in (False, True):
            np.testing.assert_allclose(
                gsva.logodds(values, sd, "gaussian", r_compat), expected, rtol=0, atol=1e-12
            )
    p_exact = ndtr((data[:, None, :] - data[None, :, :]) / h).mean(axis=1)
    p_table = 1.0 / (1.0 + np.exp(-expected))
    assert np.max(np.abs(p_table - p_exact)) <= 0.4 / 1000
    # float32 input is read as is (no float64 copy) and gives the float64 result of its values
    data32 = data.astype(np.float32)
    np.testing.assert_array_equal(
        gsva.logodds(data32, sd, "gaussian", False),
        gsva.logodds(data32.astype(np.float64), sd, "gaussian", False),
    )


def test_fast_kcdf_on_r_cases(r_results):
    """kcdf="fast" on the R cases (10-40 samples): every gene's exact kernel is cheaper than
    its grid, so it is the default's table kernel, and as close to R as the default."""
    cont = r_results["cont"]
    sets = index_sets(cont.columns, r_results["ksets"])
    ours = gsva.run(cont.to_numpy(), sets, kcdf="fast")
    assert max_abs_diff(ours, r_results["r"]["cont_mx"], cont, sets) <= 1e-4
    tcga = r_results["tcga"]
    hallmark = index_sets(tcga.columns, r_results["hallmark"])
    np.testing.assert_array_equal(
        gsva.run(tcga.to_numpy(), hallmark, kcdf="fast"), gsva.run(tcga.to_numpy(), hallmark)
    )
