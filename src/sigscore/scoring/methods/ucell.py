"""UCell: Mann-Whitney U statistic of a gene set within each cell's top-ranked genes.

Andreatta M, Carmona SJ (2021) UCell: robust and scalable single-cell gene signature scoring.
Comput Struct Biotechnol J 19:3796-3798. doi:10.1016/j.csbj.2021.06.043

Per cell, genes are ranked by decreasing expression (rank 1 = highest; ties get their average
rank; all zeros form one tie block at the bottom). Ranks above ``max_rank`` (default 1500)
are set to ``max_rank + 1``. For a set of ``n`` genes with capped ranks ``r_i``::

    U     = sum_i r_i - n (n + 1) / 2
    score = 1 - U / (n * max_rank)

as in the R package. Directional sets: ``score(up) - w_neg * score(down)``, **not clipped at
0** (pyUCell clips negative totals to 0, which hides cells where the down genes dominate).

Differences from pyUCell 0.8 (correlation > 0.999 on real data): pyUCell gives capped genes
and zeros the rank ``max_rank`` (not ``max_rank + 1``) and normalises by
``n * max_rank - n (n + 1) / 2``, so its scores are a near-affine rescaling of these.
Ties are averaged in both. ``max_rank`` larger than the number of genes is reduced to it.

Sample-independent and row-wise: a cell's score depends on that cell alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sigscore.errors import UsageError

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._ranks import UCELL, as_csr, segment_sums, set_layout


def _u_score(rank_sum: np.ndarray, n: int, max_rank: int) -> np.ndarray:
    if n == 0:
        return np.zeros_like(rank_sum)
    u = rank_sum - n * (n + 1) / 2.0
    return 1.0 - u / (n * max_rank)


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    max_rank: int = 1500,
    w_neg: float = 1.0,
) -> np.ndarray:
    """UCell scores, shape ``(n_obs, n_sets)``; see the module docstring for the formula."""
    if isinstance(max_rank, bool) or not float(max_rank).is_integer() or max_rank < 1:
        raise UsageError(f"ucell: max_rank must be a positive integer, got {max_rank!r}")
    if not np.isfinite(w_neg):
        raise UsageError(f"ucell: w_neg must be a finite number, got {w_neg!r}")
    M = as_csr(X, unmerged_ok=True)
    cap = min(int(max_rank), M.shape[1])
    layout = set_layout(sets, M.shape[1])
    sums = segment_sums(M, layout, UCELL, cap)
    k = len(sets)
    out = np.empty((M.shape[0], k))
    for j, s in enumerate(sets):
        up = _u_score(sums[:, j], int(s.up.size), cap)
        down = _u_score(sums[:, k + j], int(s.down.size), cap)
        out[:, j] = up - w_neg * down
    return out


SPEC = MethodSpec(
    name="ucell",
    run=run,
    summary="UCell: Mann-Whitney U of the set within each cell's top max_rank genes",
    reference="Andreatta & Carmona 2021, Comput Struct Biotechnol J, doi:10.1016/j.csbj.2021.06.043",
    rowwise=True,
    sample_independent=True,
    defaults={"max_rank": 1500, "w_neg": 1.0},
    float32_blocks=True,  # ranks only: float32 blocks are not widened
    merges_in_kernel=True,  # duplicated columns merged by the rank kernel as it reads
)
