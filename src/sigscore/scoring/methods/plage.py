r"""Pathway level analysis of gene expression (PLAGE), as implemented in R GSVA 1.46.

Tomfohr J, Lu J, Kepler TB (2005) Pathway level analysis of gene expression using singular
value decomposition. BMC Bioinformatics 6:225. doi:10.1186/1471-2105-6-225

Formula. The set's genes are standardised across the ``m`` observations (sample sd,
``ddof = 1``), giving ``Z_S`` (``k`` genes × ``m`` samples). With the SVD
``Z_S = U Σ Vᵀ`` the score of sample ``j`` is ``v_1j``, the ``j``-th entry of the first right
singular vector (unit norm, so scores shrink as ``1/√m`` with batch size).

Sign. A singular vector's sign is arbitrary (GSVA returns whatever LAPACK gives). We fix it
so that ``v_1`` correlates positively with the set's mean z-score across samples
(``v_1 · mean_g(Z_S) > 0``; both have mean 0 across samples, so the dot product has the
correlation's sign): a high score means the set's genes are, on average, high. Compare with
GSVA up to sign.

Batch dependence: the standardisation and the SVD use the whole batch; scores are neither
row-wise nor sample-independent (``gene_stats`` is ignored). Constant genes (sd < 1e-10)
are dropped from their sets, as GSVA does. A one-gene set scores ``z / ‖z‖`` (GSVA 1.46
returns a scalar ±1 there, a bug of R's vector dropping). Directional sets:
``PLAGE(up) - PLAGE(down)``, each sign-fixed as above; never clipped. Only the sets' columns
are densified.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import combine, standardized_parts


def first_right_singular_vector(Z: np.ndarray) -> np.ndarray:
    """``v_1`` of ``Z`` (genes × samples), oriented to correlate positively with the mean."""
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    v = vt[0]
    if float(v @ Z.mean(axis=0)) < 0:
        v = -v
    return v


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
) -> np.ndarray:
    """PLAGE scores, shape (n_obs, n_sets)."""
    del gene_stats  # the SVD is a batch statistic; a reference mean/sd would not fix that
    n_obs = X.shape[0]
    z, plan, col = standardized_parts(X, sets, None)
    part_scores = np.full((n_obs, len(plan.parts)), np.nan)
    with _one_blas_thread():
        for j, part in enumerate(plan.parts):
            if part.genes.size == 0 or n_obs < 2:
                continue
            part_scores[:, j] = first_right_singular_vector(z[:, col[part.genes]].T)
    return combine(part_scores, plan)


def _one_blas_thread() -> AbstractContextManager[object]:
    """BLAS limited to one thread for the SVDs: a set's matrix is small (genes × samples),
    and OpenBLAS's threads spinning against numba's and other processes' made the SVDs
    5-40× slower in wall time on a busy 2-core machine (0.23-2.7 s vs 0.06 s for 10 sets of
    50 × 200). threadpoolctl comes with scikit-learn, a dependency; without it, no limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


SPEC = MethodSpec(
    name="plage",
    run=run,
    summary="PLAGE: first right singular vector of the set's standardised genes (sign-fixed)",
    reference="Tomfohr J, Lu J, Kepler TB. BMC Bioinformatics 2005;6:225. "
    "doi:10.1186/1471-2105-6-225",
    rowwise=False,
    sample_independent=False,
    defaults={},
    accepts_weights=False,
    reads_set_columns_only=True,
)
