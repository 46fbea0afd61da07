"""``sigscore.score``: the one call that scores any expression input with any method.

Steps: :func:`~sigscore.scoring.prepare.prepare` (read, orient, harmonise, resolve sets,
coverage), then :func:`~sigscore.scoring.run.run_method` over row chunks sized by a memory
budget (rank methods never see more than one chunk densified); the result is a DataFrame
whose ``attrs["sigscore"]`` holds the coverage report and a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from .. import __version__
from ..genes.coverage import CoveragePolicy
from .methods import GeneStats, MethodSpec, get_method
from .prepare import SCALE_EXPECTED, GenesAxis, PreparedInput, prepare
from .run import is_sample_independent, run_method

DEFAULT_METHOD = "singscore"


def manifest(
    prepared: PreparedInput, spec: MethodSpec, params: Mapping[str, Any], fixed_stats: bool
) -> dict[str, Any]:
    """What a result needs to be reproduced and cited."""
    sigset = prepared.signatures
    return {
        "sigscore_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": spec.name,
        "method_reference": spec.reference,
        "params": {
            k: (v if isinstance(v, str | int | float | bool | None) else repr(v))
            for k, v in params.items()
        },
        "sample_independent": is_sample_independent(spec, params, fixed_stats),
        "reference_gene_stats": fixed_stats,
        "signatures": {
            "hash": sigset.content_hash,
            "version": sigset.version,
            "tier": sigset.tier,
            "source": sigset.source,
            "n_sets": len(prepared.set_names),
        },
        "input": {
            "source": prepared.expr.source,
            "n_obs": int(prepared.expr.shape[0]),
            "n_genes": int(prepared.expr.shape[1]),
            "sparse": prepared.expr.is_sparse,
            "id_type": prepared.id_type,
            "value_scale": prepared.expr.value_scale or "unknown",
            "scale_expected": SCALE_EXPECTED.get(spec.name, ""),
            "notes": list(prepared.expr.notes),
        },
        "excluded_sets": prepared.coverage.excluded,
        "research_use_only": "Research use only; not a diagnostic.",
    }


def score(
    data: Any,
    gene_sets: Any = None,
    method: str = DEFAULT_METHOD,
    *,
    tier: str = "extended",
    id_type: str = "auto",
    coverage_policy: CoveragePolicy | Mapping[str, Any] | None = None,
    context: Literal["up", "exclude"] = "up",
    layer: str | None = None,
    use_raw: bool = False,
    genes_axis: GenesAxis = "auto",
    var_names: Any = None,
    obs_names: Any = None,
    reference_stats: GeneStats | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Score every gene set for every observation.

    Parameters
    ----------
    data
        AnnData (obs × var), pandas/polars DataFrame, a numpy/scipy matrix with
        ``var_names``, or a file path / open file in any format :func:`sigscore.read_matrix`
        reads (``layer`` picks an h5ad layer).
    genes_axis
        ``"auto"`` (default) finds the gene axis of a DataFrame or file by which names are
        gene identifiers (as the readers do); ``"rows"`` / ``"columns"`` force it.
    gene_sets
        ``None`` for the shipped signatures (``tier`` "core" or "extended"), a
        ``SignatureSet``, a mapping ``{name: genes | {"up": [...], "down": [...]}}``, or a
        path to a .gmt/.yaml/.json file.
    method
        One of :data:`sigscore.scoring.methods.METHOD_NAMES`; ``**params`` are its parameters.
    reference_stats
        Fixed per-gene mean/variance (in the matrix's column order after harmonisation) for
        ``mean``/``module_score``/``zscore``; makes those methods sample-independent.

    Returns
    -------
    DataFrame of observations × sets (input order). Sets excluded by the coverage policy
    are NaN columns. ``result.attrs["sigscore"]`` = ``{"manifest": ..., "coverage": ...}``.
    """
    spec = get_method(method)
    full_params = spec.params(**params)
    prepared = prepare(
        data,
        gene_sets,
        tier=tier,
        id_type=id_type,
        coverage_policy=coverage_policy,
        context=context,
        layer=layer,
        use_raw=use_raw,
        genes_axis=genes_axis,
        var_names=var_names,
        obs_names=obs_names,
    )
    values = run_method(
        prepared.expr.X,
        prepared.sets,
        spec,
        full_params,
        stats=reference_stats,
        chunk_size=chunk_size,
        progress=progress,
    )
    result = pd.DataFrame(
        np.nan, index=prepared.expr.obs_names.copy(), columns=pd.Index(prepared.set_names)
    )
    result.loc[:, [s.name for s in prepared.sets]] = values
    result.index.name = "sample"
    result.attrs["sigscore"] = {
        "manifest": manifest(prepared, spec, full_params, reference_stats is not None),
        "coverage": prepared.coverage.to_records(),
    }
    return result
