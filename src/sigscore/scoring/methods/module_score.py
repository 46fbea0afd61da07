"""module_score: Tirosh module score, as computed by scanpy ``tl.score_genes``.

Tirosh I et al. (2016) Dissecting the multicellular ecosystem of metastatic melanoma by
single-cell RNA-seq. Science 352:189-196. doi:10.1126/science.aad0501
(implementation followed: scanpy 1.11 ``tl.score_genes``; Satija et al. 2015 Seurat.)

All genes are binned by their mean expression over the observations (``gene_stats.mean``):
with ``G`` genes of finite mean, ``n_items = round(G / (n_bins - 1))`` and a gene's bin is
``rank_min(mean) // n_items``. For each bin holding a set gene, ``ctrl_size`` control genes
are drawn without replacement from that bin (all of it if it is smaller), set genes are then
removed, and the union over bins is the control set::

    score = mean_{g in set} x_g - mean_{g in control} x_g

The draws reproduce scanpy exactly: a fresh ``numpy.random.RandomState(random_state)`` per
gene list, bins visited in increasing order, ``choice(len(bin), ctrl_size, replace=False)``
on the bin's genes in column order. Scores therefore equal ``scanpy.tl.score_genes`` to
floating-point rounding provided ``gene_stats.mean`` equals scanpy's (float64 column sums /
n_obs): means that tie exactly in one computation but not the other can change the bins.
A fresh seed per set makes the result independent of the order of sets.

Directional sets: ``score(up) - score(down)`` (each part with its own controls), not clipped.

Batch dependence: the control genes depend on the gene means of the scored batch, so a cell's
score depends on the other cells (``sample_independent=False``); given ``gene_stats`` the
score of a row is computed from that row alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from sigscore.errors import UsageError

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from .mean import linear_scores


def gene_bins(means: np.ndarray, n_bins: int) -> np.ndarray:
    """scanpy's expression bin of each gene (``-1`` where the mean is not finite)."""
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 2:
        raise UsageError(f"module_score: n_bins must be an integer >= 2, got {n_bins!r}")
    finite = np.isfinite(means)
    n_items = int(np.round(finite.sum() / (n_bins - 1)))
    if n_items == 0:
        raise UsageError(
            f"module_score: {int(finite.sum())} genes are too few for n_bins={n_bins}; lower n_bins"
        )
    bins = np.full(means.shape[0], -1, dtype=np.int64)
    bins[finite] = rankdata(means[finite], method="min").astype(np.int64) // n_items
    return bins


def control_genes(
    genes: np.ndarray, bins: np.ndarray, ctrl_size: int, random_state: int
) -> np.ndarray:
    """Control gene positions for ``genes``, drawn as scanpy does (see module docstring)."""
    rng = np.random.RandomState(random_state)
    genes = np.asarray(genes, dtype=np.int64)
    chosen: list[np.ndarray] = []
    for b in np.unique(bins[genes][bins[genes] >= 0]):
        members = np.flatnonzero(bins == b)  # column order, as scanpy's var order
        if ctrl_size < members.size:
            members = members[rng.choice(members.size, ctrl_size, replace=False)]
        chosen.append(np.setdiff1d(members, genes))
    return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def coefficients(
    sets: Sequence[IndexedSet],
    means: np.ndarray,
    *,
    ctrl_size: int,
    n_bins: int,
    random_state: int,
) -> sp.csc_matrix:
    """Genes × sets matrix ``C`` with ``score = X @ C``."""
    if isinstance(ctrl_size, bool) or int(ctrl_size) != ctrl_size or ctrl_size < 1:
        raise UsageError(f"module_score: ctrl_size must be a positive integer, got {ctrl_size!r}")
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise UsageError(
            "module_score: random_state must be an integer seed so that control genes are "
            f"reproducible, got {random_state!r}"
        )
    bins = gene_bins(means, n_bins)
    n_genes = means.shape[0]
    C = sp.lil_matrix((n_genes, len(sets)))
    for j, s in enumerate(sets):
        for part, sign in ((s.up, 1.0), (s.down, -1.0)):
            if part.size == 0:
                continue
            ctrl = control_genes(part, bins, int(ctrl_size), int(random_state))
            if ctrl.size == 0:
                raise UsageError(
                    f"module_score: no control genes for set {s.name!r}: its expression bins "
                    "hold no other genes; lower n_bins or score more genes"
                )
            for g in np.asarray(part, dtype=np.int64):
                C[g, j] += sign / part.size
            for g in ctrl:
                C[g, j] -= sign / ctrl.size
    return C.tocsc()


def prepare(
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    ctrl_size: int = 50,
    n_bins: int = 25,
    random_state: int = 0,
) -> dict[str, Any]:
    """Control genes and coefficients, once per call (the dispatcher reuses them per chunk)."""
    if gene_stats is None:
        raise UsageError("module_score needs gene_stats (per-gene means over all observations)")
    means = np.asarray(gene_stats.mean, dtype=np.float64)
    C = coefficients(sets, means, ctrl_size=ctrl_size, n_bins=n_bins, random_state=random_state)
    return {"coefficients": C}


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    ctrl_size: int = 50,
    n_bins: int = 25,
    random_state: int = 0,
    coefficients: Any = None,
) -> np.ndarray:
    """Module scores, shape ``(n_obs, n_sets)``; see the module docstring."""
    if coefficients is None:
        coefficients = prepare(
            sets,
            gene_stats=gene_stats,
            ctrl_size=ctrl_size,
            n_bins=n_bins,
            random_state=random_state,
        )["coefficients"]
    if coefficients.shape[0] != X.shape[1]:
        raise UsageError(
            f"module_score: gene_stats cover {coefficients.shape[0]} genes but the matrix has {X.shape[1]}"
        )
    return linear_scores(X, coefficients)


SPEC = MethodSpec(
    name="module_score",
    run=run,
    summary="Tirosh/Seurat module score with expression-binned control genes (scanpy parity)",
    reference="Tirosh et al. 2016, Science, doi:10.1126/science.aad0501",
    rowwise=True,
    sample_independent=False,
    defaults={"ctrl_size": 50, "n_bins": 25, "random_state": 0},
    needs_gene_stats=True,
    prepare=prepare,
    merges_in_kernel=True,
    # float32 blocks are read as they are: the product widens each value, exactly
    float32_blocks=True,
)
