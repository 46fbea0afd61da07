"""Contract properties every registered method keeps, checked through ``sigscore.score``.

Every name in ``METHOD_NAMES`` runs on seeded data of two kinds: ``continuous`` (gamma, no
ties) and ``counts`` (Poisson, a third zeros and many tied values, as in single-cell data).

* contract: observations × sets in input order, index named ``sample``, every fully covered
  set finite; the manifest names the method, its parameters and the registry's
  ``sample_independent`` claim;
* storage: CSR equals dense, float32 equals the same values widened to float64, row chunks
  equal one block;
* order: permuting genes, the genes inside a set or the sets changes nothing; permuting
  samples permutes the rows (a batch-dependent method depends on *which* samples are in the
  batch, never on their order);
* batch: what the manifest claims holds both ways: a sample-independent result scores each
  sample alone as in the batch, a batch-dependent one changes when the batch does; fixed
  ``reference_stats`` make the gene-statistics methods sample-independent, and ssGSEA's
  ``normalize=True`` makes ssGSEA batch-dependent;
* direction: an up/down set is its documented combination of the up and down parts, swapping
  up and down negates it, a down-only set is minus its genes' score, and raising the up genes
  while lowering the down genes in half the samples puts all of those above the rest;
* locality: methods that read only the set's genes (zscore, plage, mean) ignore an added
  gene; the whole-profile (rank) methods do not.

Method-specific behaviour (parity with R, scanpy, pyUCell and decoupler, tie rules,
parameters, hand-computed cases) lives in the per-method modules next to this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import sigscore
from sigscore.scoring import gene_stats
from sigscore.scoring.methods import METHOD_NAMES, get_method

N_OBS, N_GENES = 12, 70
GENES = [f"G{j:03d}" for j in range(N_GENES)]
# not sorted, so "input order kept" cannot pass by sorting
OBS = [f"S{(7 * i) % N_OBS:02d}" for i in range(N_OBS)]
UP, DOWN, WIDE = GENES[:8], GENES[8:14], GENES[20:35]
SETS: dict[str, Any] = {"up": UP, "down": DOWN, "dir": {"up": UP, "down": DOWN}, "wide": WIDE}
KINDS = ("continuous", "counts")

# Which methods read only the set's genes, and which rank the whole profile: from each
# module's docstring. module_score reads all genes' means (control bins) but one added gene
# changes its scores only when it lands in a bin with set genes, so it is in neither list.
SET_GENES_ONLY = ("zscore", "plage", "mean")
WHOLE_PROFILE = ("ssgsea", "gsva", "singscore", "aucell", "ucell")
# Methods whose gene statistics can be fixed by ``reference_stats`` (registry flags).
STATS_METHODS = tuple(
    m for m in METHOD_NAMES if get_method(m).needs_gene_stats or get_method(m).rowwise_with_stats
)

same = {"rtol": 1e-9, "atol": 1e-12}  # equal up to summation order


def expression(kind: str, seed: int = 0) -> pd.DataFrame:
    """A seeded samples × genes frame of ``kind`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    shape = (N_OBS, N_GENES)
    if kind == "continuous":
        values = rng.gamma(2.0, 1.5, size=shape)
    else:
        values = rng.poisson(1.0, size=shape).astype(np.float64)
    return pd.DataFrame(values, index=pd.Index(OBS), columns=pd.Index(GENES))


def run(data: Any, method: str, sets: Mapping[str, Any] = SETS, **kwargs: Any) -> pd.DataFrame:
    """``sigscore.score`` with identifiers taken as given and genes in columns."""
    if not isinstance(data, pd.DataFrame):  # a matrix: names travel separately
        kwargs = {"var_names": GENES, "obs_names": OBS, **kwargs}
    return sigscore.score(
        data, sets, method=method, id_type="exact", genes_axis="columns", **kwargs
    )


def test_every_method_is_classified() -> None:
    """A new registry entry must say here whether it reads only its set's genes."""
    assert set(SET_GENES_ONLY) | set(WHOLE_PROFILE) | {"module_score"} == set(METHOD_NAMES)
    assert not set(SET_GENES_ONLY) & set(WHOLE_PROFILE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_contract_and_manifest(method: str, kind: str) -> None:
    data = expression(kind)
    got = run(data, method)
    assert got.shape == (N_OBS, len(SETS))
    assert list(got.index) == OBS and got.index.name == "sample"
    assert list(got.columns) == list(SETS)
    assert np.isfinite(got.to_numpy()).all()
    assert got.to_numpy().std(axis=0).min() > 0  # scores vary across samples
    spec = get_method(method)
    manifest = got.attrs["sigscore"]["manifest"]
    assert manifest["method"] == method
    assert manifest["params"] == dict(spec.defaults)
    assert manifest["sample_independent"] is spec.sample_independent
    assert (manifest["input"]["n_obs"], manifest["input"]["n_genes"]) == (N_OBS, N_GENES)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_sparse_float32_and_chunks_equal_dense(method: str, kind: str) -> None:
    data = expression(kind)
    dense = run(data, method).to_numpy()
    X = data.to_numpy()
    np.testing.assert_allclose(run(sp.csr_matrix(X), method).to_numpy(), dense, **same)
    np.testing.assert_allclose(run(data, method, chunk_size=5).to_numpy(), dense, **same)
    # float32 is read in place and widened as it goes: same scores as the widened values
    x32 = X.astype(np.float32)
    widened = run(x32.astype(np.float64), method).to_numpy()
    np.testing.assert_allclose(run(x32, method).to_numpy(), widened, **same)
    np.testing.assert_allclose(run(sp.csr_matrix(x32), method).to_numpy(), widened, **same)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHOD_NAMES)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_gene_set_and_sample_order(method: str, kind: str, seed: int) -> None:
    # module_score draws controls by column position inside a mean bin; with 70 genes in 24
    # bins every bin is smaller than ctrl_size, so all of it is used and order cannot matter.
    data = expression(kind, seed)
    base = run(data, method)
    rng = np.random.default_rng(seed)
    genes = rng.permutation(N_GENES)
    shuffled = {
        name: (
            {k: v[::-1] for k, v in SETS[name].items()}
            if isinstance(SETS[name], dict)
            else SETS[name][::-1]
        )
        for name in rng.permutation(list(SETS))
    }
    got = run(data.iloc[:, genes], method, sets=shuffled)
    assert list(got.columns) == list(shuffled)
    np.testing.assert_allclose(got[base.columns].to_numpy(), base.to_numpy(), **same)
    rows = rng.permutation(N_OBS)
    got = run(data.iloc[rows], method)
    assert list(got.index) == [OBS[i] for i in rows]
    np.testing.assert_allclose(got.loc[base.index].to_numpy(), base.to_numpy(), **same)


BATCH_CASES = [
    *[(m, {}, False) for m in METHOD_NAMES],
    ("ssgsea", {"normalize": True}, False),
    *[(m, {}, True) for m in STATS_METHODS],
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "method,params,fixed_stats",
    BATCH_CASES,
    ids=[f"{m}-{'-'.join(p) or 'default'}{'-reference' if f else ''}" for m, p, f in BATCH_CASES],
)
def test_alone_or_in_a_batch_as_the_manifest_claims(
    method: str, params: dict[str, Any], fixed_stats: bool, kind: str
) -> None:
    data = expression(kind)
    stats = gene_stats(data.to_numpy()) if fixed_stats else None
    batch = run(data, method, reference_stats=stats, **params)
    claimed = batch.attrs["sigscore"]["manifest"]["sample_independent"]
    if fixed_stats:
        assert claimed is True
    elif params.get("normalize"):
        assert claimed is False
    if claimed:
        for i in (0, 5, N_OBS - 1):
            alone = run(data.iloc[[i]], method, reference_stats=stats, **params)
            np.testing.assert_allclose(alone.to_numpy(), batch.iloc[[i]].to_numpy(), **same)
    else:  # the claim is not just caution: a half batch really scores differently (either
        # half: ssGSEA's normalisation range may lie within one of them)
        diff = 0.0
        for half in (slice(0, N_OBS // 2), slice(N_OBS // 2, N_OBS)):
            alone = run(data.iloc[half], method, **params).to_numpy()
            diff = max(diff, np.abs(alone - batch.iloc[half].to_numpy()).max())
        assert diff > 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_up_down_sets(method: str, kind: str) -> None:
    data = expression(kind)
    got = run(data, method)
    up, down, both = (got[k].to_numpy() for k in ("up", "down", "dir"))
    if method == "mean":  # a weighted mean over all the set's genes, down genes negated
        expected = (len(UP) * up - len(DOWN) * down) / (len(UP) + len(DOWN))
    else:  # score(up) - score(down); singscore's and UCell's native forms reduce to it
        expected = up - down
    np.testing.assert_allclose(both, expected, **same)
    assert (both < 0).any() and (both > 0).any()  # never clipped
    flipped = run(data, method, sets={"dir": {"up": DOWN, "down": UP}, "d": {"down": DOWN}})
    np.testing.assert_allclose(flipped["dir"].to_numpy(), -both, **same)
    np.testing.assert_allclose(flipped["d"].to_numpy(), -down, **same)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_planted_direction_is_found(method: str, kind: str) -> None:
    """Up genes raised and down genes lowered in six samples, the reverse in the other six:
    every method ranks all six of the first group above the second on the up/down set."""
    data = expression(kind)
    X = data.to_numpy().copy()
    up = [GENES.index(g) for g in UP]
    down = [GENES.index(g) for g in DOWN]
    first, second = np.arange(6), np.arange(6, N_OBS)
    X[np.ix_(first, up)] = 8 * X[np.ix_(first, up)] + 8  # zeros move up too
    X[np.ix_(first, down)] /= 8
    X[np.ix_(second, up)] /= 8
    X[np.ix_(second, down)] = 8 * X[np.ix_(second, down)] + 8
    scores = run(pd.DataFrame(X, index=data.index, columns=data.columns), method)["dir"]
    assert scores.iloc[first].min() > scores.iloc[second].max(), scores


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", [*SET_GENES_ONLY, *WHOLE_PROFILE])
def test_an_added_gene_changes_only_whole_profile_methods(method: str, kind: str) -> None:
    data = expression(kind)
    base = run(data, method).to_numpy()
    # the new gene is the highest in every sample, so every set gene's rank moves
    extra = data.assign(GEXTRA=data.max(axis=1) + 1.0)
    got = run(extra, method).to_numpy()
    if method in SET_GENES_ONLY:
        np.testing.assert_allclose(got, base, **same)
    else:
        assert np.abs(got - base).max() > 1e-9
