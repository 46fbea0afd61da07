r"""Single-sample GSEA (ssGSEA), as implemented in R GSVA 1.46.

Barbie DA et al. (2009) Systematic RNA interference reveals that oncogenic KRAS-driven
cancers require TBK1. Nature 462:108-112. doi:10.1038/nature08460

Formula. In each sample the ``n`` genes are ranked by expression (ascending, ties averaged),
``r_g`` in ``1..n``. For a set ``S`` of ``k`` genes with weights ``a_g = r_g^alpha``, the
running-sum walk down the genes sorted by decreasing rank adds ``a_g / Σ_S a`` at a set
gene and subtracts ``1/(n-k)`` elsewhere; ssGSEA sums the walk over all ``n`` positions.
The sum has a closed form (no walk is materialised)::

    ES(S) = Σ_{g∈S} a_g r_g / Σ_{g∈S} a_g  -  (n(n+1)/2 - Σ_{g∈S} r_g) / (n - k)

where ``r_g`` also stands for "``n + 1 -`` position of ``g`` in the decreasing order".

Parameters (defaults in ``SPEC.defaults``):

* ``alpha = 0.25`` — the weight exponent (``tau`` in GSVA);
* ``normalize = False`` — GSVA's ``ssgsea.norm``: divide the whole score matrix by its
  range (max − min over all sets and samples). That makes a sample's score depend on the
  other samples and sets in the batch, so it is off by default and runs as ``finalize``
  on the assembled matrix; with it off, ssGSEA is sample-independent (``rowwise``);
* ``r_compat = False`` — reproduce GSVA 1.46 exactly: it stores the averaged ranks as
  integers (``mode(R) <- "integer"``), which truncates tied ``.5`` ranks, and it breaks
  ties in the decreasing order by the genes' input order (R's stable ``order``), so its
  scores depend on gene order when there are ties (zeros in RNA-seq!). The default uses
  exact average ranks both as weights and as positions, which is invariant to gene order;
  without ties both modes are identical.

Directional sets: ``ES(up) - ES(down)`` (ssGSEA has no native up/down form); never clipped.
Constant genes are kept (as GSVA does for ssGSEA). Per row only the set genes' ranks are
found (dense rows: each value is placed among the sorted set-gene values through a uniform
bucket grid, :func:`._gsva_common.set_tie_counts`, O(n + u log u) for the ``u`` set genes;
sparse rows: binary search over the stored values only, :mod:`._ranks`) and each set costs
O(its size); rows run in parallel and sparse input is never densified.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import combine, expand_sets, set_tie_counts
from ._ranks import as_csr, average_rank_desc, ordinal_ranks, row_blocks, set_layout, tie_counts


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    alpha: float = 0.25,
    normalize: bool = False,
    r_compat: bool = False,
) -> np.ndarray:
    """ssGSEA enrichment scores, shape (n_obs, n_sets); ``normalize`` is applied by ``finalize``."""
    del gene_stats, normalize  # ranks need no reference; normalisation is batch-level
    n_obs, n = X.shape
    plan = expand_sets(sets)
    part_scores = np.full((n_obs, len(plan.parts)), np.nan)
    # Only the set genes' ranks enter the closed form, so each row's values are binned into
    # the sorted set-gene values (O(n log u)) instead of ranking all n genes.
    layout = set_layout([IndexedSet(str(j), p.genes) for j, p in enumerate(plan.parts)], n)
    total = n * (n + 1) / 2.0
    dense = not sp.issparse(X)
    for rows in row_blocks(n_obs, max(layout.size, 1)):
        if dense:
            # the kernel walks each row: a column-major block (e.g. after a duplicate-gene
            # merge) is made row-major first, one copy instead of a cache miss per value
            block = np.ascontiguousarray(X[rows])
            greater, equal, before = set_tie_counts(block, layout, ordinal=r_compat)
        else:
            M = as_csr(X[rows])
            greater, equal = tie_counts(M, layout)
        avg = n + 1.0 - average_rank_desc(greater, equal)  # ascending, ties averaged
        if r_compat:
            # GSVA 1.46 stores averaged ranks as integers (truncating tied .5 ranks) and
            # places ties in its decreasing order by input position (R's stable ``order``).
            weight = np.trunc(avg) ** alpha
            ordinal = greater + before + 1 if dense else ordinal_ranks(M, layout)
            pos = n + 1.0 - ordinal
        else:
            weight = avg**alpha
            pos = avg
        for j, part in enumerate(plan.parts):
            k = part.genes.size
            if k == 0 or k == n:
                continue
            cols = layout.up[j]
            a = weight[:, cols]
            p = pos[:, cols]
            in_set = (a * p).sum(axis=1) / a.sum(axis=1)
            out_set = (total - p.sum(axis=1)) / (n - k)
            part_scores[rows, j] = in_set - out_set
    return combine(part_scores, plan)


def finalize(scores: np.ndarray, *, normalize: bool = False, **_: Any) -> np.ndarray:
    """GSVA's ``ssgsea.norm``: divide by the range of the whole matrix (batch-dependent)."""
    if not normalize:
        return scores
    finite = scores[np.isfinite(scores)]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    if span == 0.0:
        warnings.warn(
            "ssgsea normalize=True: all scores are equal (one sample and one set?), so the "
            "range is 0; returning the unnormalised scores",
            RuntimeWarning,
            stacklevel=2,
        )
        return scores
    return scores / span


SPEC = MethodSpec(
    name="ssgsea",
    run=run,
    summary="single-sample GSEA: closed-form rank-weighted running sum (as in GSVA)",
    reference="Barbie DA et al. Nature 2009;462:108-112. doi:10.1038/nature08460",
    rowwise=True,
    sample_independent=True,  # unless normalize=True, which acts in finalize
    defaults={"alpha": 0.25, "normalize": False, "r_compat": False},
    finalize=finalize,
    accepts_weights=False,
)
