"""singscore: rank-based single-sample gene-set scores, with native up/down sets.

Foroutan M et al. (2018) Single sample scoring of molecular phenotypes.
BMC Bioinformatics 19:404. doi:10.1186/s12859-018-2435-4

Per sample, all ``N`` genes are ranked by *increasing* expression (rank ``N`` = highest).
For a set of ``k`` genes with mean rank ``S``, the score is rescaled by its theoretical
bounds ``S_min = (k + 1) / 2`` and ``S_max = (2N - k + 1) / 2``::

    up(S) = (S - S_min) / (S_max - S_min) = (S - (k + 1) / 2) / (N - k)      in [0, 1]

With ``center=True`` (R ``centerScore = TRUE``, the default) 0.5 is subtracted. For a down
set the ranks are reversed (``down = 1 - up(S_down)``, then centred), and a directional
score is ``up + down`` (range [-1, 1] when centred), as in R ``singscore::simpleScore``.
Sets with ``k = N`` have no range and score NaN.

Ties: ``ties="average"`` (default) gives tied genes their average rank, so the score is
invariant to the order of genes; ``ties="min"`` reproduces R ``rankGenes()``'s default.
All zeros of a sparse row form one tie block whose rank is computed in closed form.

Dispersion (R ``TotalDispersion``: the MAD of the set's ranks, up + down) is returned by
:func:`singscore_dispersion`, because ``run`` returns one number per set.

Sample-independent and row-wise: a sample's score depends on that sample alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sigscore.errors import UsageError

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._ranks import (
    ASC_AVERAGE,
    ASC_MIN,
    as_csr,
    row_blocks,
    segment_sums,
    set_layout,
    tie_counts,
)

_TIES = {"average": ASC_AVERAGE, "min": ASC_MIN}
_MAD_CONSTANT = 1.4826  # R ``mad()``: consistent estimator of the sd under normality


def _mode(ties: str) -> int:
    if ties not in _TIES:
        raise UsageError(f"singscore: ties must be one of {sorted(_TIES)}, got {ties!r}")
    return _TIES[ties]


def _norm(rank_sum: np.ndarray, k: int, n_genes: int) -> np.ndarray:
    if k == n_genes:
        return np.full_like(rank_sum, np.nan)
    return (rank_sum / k - (k + 1) / 2.0) / (n_genes - k)


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    center: bool = True,
    ties: str = "average",
) -> np.ndarray:
    """singscore total scores, shape ``(n_obs, n_sets)``; see the module docstring."""
    mode = _mode(ties)
    M = as_csr(X, unmerged_ok=True)
    n_genes = M.shape[1]
    layout = set_layout(sets, n_genes)
    sums = segment_sums(M, layout, mode)
    k = len(sets)
    shift = 0.5 if center else 0.0
    out = np.zeros((M.shape[0], k))
    for j, s in enumerate(sets):
        if s.up.size:
            out[:, j] += _norm(sums[:, j], int(s.up.size), n_genes) - shift
        if s.down.size:
            out[:, j] += 1.0 - _norm(sums[:, k + j], int(s.down.size), n_genes) - shift
    return out


def _mad(ranks: np.ndarray) -> np.ndarray:
    if ranks.shape[1] == 0:
        return np.zeros(ranks.shape[0])
    med = np.median(ranks, axis=1, keepdims=True)
    return _MAD_CONSTANT * np.median(np.abs(ranks - med), axis=1)


def singscore_dispersion(
    X: Matrix, sets: Sequence[IndexedSet], *, ties: str = "average"
) -> np.ndarray:
    """Dispersion of each set's ranks per sample, shape ``(n_obs, n_sets)``.

    ``MAD(ranks of up genes) + MAD(ranks of down genes)`` with R's ``mad`` constant 1.4826,
    on the same ascending ranks as :func:`run` (R ``TotalDispersion``). A high dispersion
    with a high score means only part of the set is highly ranked.
    """
    _mode(ties)
    M = as_csr(X)
    n_genes = M.shape[1]
    layout = set_layout(sets, n_genes)
    out = np.zeros((M.shape[0], len(sets)))
    for rows in row_blocks(M.shape[0], 2 * max(layout.size, 1)):
        greater, equal = tie_counts(M[rows], layout)
        if ties == "average":
            ranks = n_genes + 1.0 - (greater + (equal + 1.0) / 2.0)
        else:
            ranks = (n_genes - greater - equal + 1).astype(np.float64)
        for j in range(len(sets)):
            out[rows, j] = _mad(ranks[:, layout.up[j]]) + _mad(ranks[:, layout.down[j]])
    return out


SPEC = MethodSpec(
    name="singscore",
    run=run,
    summary="singscore: centred mean-rank score per sample, native up/down sets",
    reference="Foroutan et al. 2018, BMC Bioinformatics, doi:10.1186/s12859-018-2435-4",
    rowwise=True,
    sample_independent=True,
    defaults={"center": True, "ties": "average"},
    float32_blocks=True,  # ranks only: float32 blocks are not widened
    merges_in_kernel=True,  # duplicated columns merged by the rank kernel as it reads
)
