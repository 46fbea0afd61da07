"""The uniform interface every scoring method implements.

A method is a module in :mod:`sigscore.scoring.methods` that defines ``SPEC``, a :class:`MethodSpec`.
The dispatcher (:mod:`sigscore.scoring`) has already matched gene identifiers, so a method
only sees an expression matrix ``X`` (observations × genes; ``numpy.ndarray`` or
``scipy.sparse.csr_matrix``, float64) and a list of :class:`IndexedSet` whose gene
positions index the columns of ``X``.

Contract for ``run(X, sets, *, gene_stats=None, **params) -> ndarray (n_obs, n_sets)``:

* never densify a whole sparse ``X``; densify at most the set columns or one row chunk;
* ``rowwise=True`` methods compute each row from that row alone (plus ``gene_stats`` when
  ``needs_gene_stats``), so the dispatcher may call them on row chunks, from disk or Dask;
* ``prepare(sets, *, gene_stats, **params) -> dict``, when given, runs once per call before
  the row chunks; its result is passed to every ``run`` as extra keyword arguments (e.g. the
  coefficient matrix of a linear method, so it is not rebuilt for each chunk);
* ``finalize(scores, **params)``, when given, runs once on the assembled score matrix
  (e.g. ssGSEA's batch normalisation) — anything it does is batch-dependent;
* directional sets: ``IndexedSet.down`` may be non-empty; a method without a native
  up/down form returns ``score(up) - score(down)``, never clipped;
* deterministic: any randomness is drawn from ``params["random_state"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...errors import UsageError

Matrix = np.ndarray | sp.csr_matrix


@dataclass(frozen=True)
class IndexedSet:
    """A gene set resolved to column positions of the matrix being scored."""

    name: str
    up: np.ndarray  # int64 column indices, unique
    down: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    up_weights: np.ndarray | None = None  # same length as ``up``; None = unweighted
    down_weights: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.up.size + self.down.size)

    @property
    def all_genes(self) -> np.ndarray:
        return np.concatenate([self.up, self.down])

    @property
    def is_directional(self) -> bool:
        return self.down.size > 0


@dataclass(frozen=True)
class GeneStats:
    """Per-gene statistics over all observations, computed in one streaming pass."""

    mean: np.ndarray
    var: np.ndarray  # sample variance, ddof=1
    n_obs: int

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.var)


@dataclass(frozen=True)
class MethodSpec:
    """Registry entry of one scoring method."""

    name: str
    run: Callable[..., np.ndarray]
    summary: str
    reference: str  # citation with DOI
    rowwise: bool  # True: a row's score needs only that row (+ gene_stats)
    sample_independent: bool  # True: a sample scores the same alone or in any batch
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_gene_stats: bool = False
    # True: rowwise once fixed reference ``gene_stats`` are given (e.g. zscore against a cohort)
    rowwise_with_stats: bool = False
    finalize: Callable[..., np.ndarray] | None = None
    prepare: Callable[..., Mapping[str, Any]] | None = None
    accepts_weights: bool = False
    # True: ``run`` (and ``prepare``) read only the sets' columns of ``X`` (and of
    # ``gene_stats``), so the dispatcher may hand it just those columns, sets renumbered;
    # scores must be bit-identical either way (tests/scoring/test_run.py checks each method)
    reads_set_columns_only: bool = False
    # True: ``run`` only compares values within a row (ranks) or widens each value itself
    # (module_score's float64 dot products), so row blocks read as float32 are handed over
    # as float32, not widened by a copy (exact either way; io.blocks.float32_kept)
    float32_blocks: bool = False
    # True: ``run`` accepts row blocks whose duplicated gene columns are still to be merged
    # (genes.merge_kernels.UnmergedRows; io.blocks.merge_deferred) and merges as it reads;
    # their raw rows may be float32 whatever float32_blocks says (read exactly)
    merges_in_kernel: bool = False

    def params(self, **given: Any) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names are an error."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise UsageError(
                f"method {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        return {**self.defaults, **given}
