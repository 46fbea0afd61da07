r"""Combined z-score, as implemented in R GSVA 1.46 (``method="zscore"``).

Lee E, Chuang HY, Kim JW, Ideker T, Lee D (2008) Inferring pathway activity toward precise
disease classification. PLoS Comput Biol 4(11):e1000217. doi:10.1371/journal.pcbi.1000217

Formula. Each gene is standardised across the observations, ``z_gj = (x_gj - mean_g) / sd_g``
(sample sd, ``ddof = 1``, as R's ``scale``), and a set ``S`` of ``k`` genes scores::

    Z_Sj = Σ_{g∈S} z_gj / √k            (weighted: Σ w_g z_gj / √(Σ w_g²))

The weighted form keeps the statistic's null variance at 1 for independent standard-normal
``z`` (Stouffer's weighted z); with all ``w = 1`` it is Lee's / GSVA's formula.

Batch dependence: with the default, ``mean_g`` and ``sd_g`` come from the batch being
scored, so a sample's score depends on the others. When ``gene_stats`` (a
:class:`~sigscore.scoring.methods.GeneStats` from a reference cohort) is passed, genes are
standardised with the reference mean and sd instead and each row is scored on its own.

Constant genes (sd < 1e-10, in the batch or the reference) have no z-score; they are dropped
from their sets as GSVA does (``k`` counts the remaining genes; a set left empty is NaN).
Directional sets: ``Z(up) - Z(down)`` (no native up/down form); never clipped.
Only the sets' columns are densified. GSVA 1.46 matches the default to ~1e-15; there is no
``r_compat`` mode because there is no quirk to reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import combine, standardized_parts


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
) -> np.ndarray:
    """Combined z-scores, shape (n_obs, n_sets)."""
    n_obs = X.shape[0]
    z, plan, col = standardized_parts(X, sets, gene_stats)
    part_scores = np.full((n_obs, len(plan.parts)), np.nan)
    for j, part in enumerate(plan.parts):
        if part.genes.size == 0:
            continue
        zp = z[:, col[part.genes]]
        if part.weights is None:
            part_scores[:, j] = zp.sum(axis=1) / np.sqrt(part.genes.size)
        else:
            w = np.asarray(part.weights, dtype=float)
            part_scores[:, j] = zp @ w / np.sqrt(np.sum(w**2))
    return combine(part_scores, plan)


SPEC = MethodSpec(
    name="zscore",
    run=run,
    summary="combined z-score: Σz/√k of genes standardised across samples (Lee 2008)",
    reference="Lee E et al. PLoS Comput Biol 2008;4(11):e1000217. doi:10.1371/journal.pcbi.1000217",
    rowwise=False,  # row-wise only when gene_stats (a reference) is given
    sample_independent=False,
    defaults={},
    needs_gene_stats=False,
    rowwise_with_stats=True,
    accepts_weights=True,
    reads_set_columns_only=True,
)
