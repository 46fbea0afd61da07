"""The public entry points :func:`resistance_index`, :func:`index_from_scores` and :func:`aggregate`.

They resolve a reference (object or saved path) and call :mod:`.compute`. ``groupby=`` and
``aggregate(how="mean")`` both use :func:`.aggregate.mean_by_group`, so neither calls the
other back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import UsageError
from .aggregate import EXPRESSION_OPTIONS, mean_by_group, pseudobulk_profiles
from .align import resolve_vector
from .compute import index_table, is_index_frame, scores_and_index
from .reference import Reference, as_reference


def index_from_scores(
    scores: pd.DataFrame,
    definition: Any = None,
    coverage: Any = None,
    reference: Reference | str | Path | None = None,
) -> pd.DataFrame:
    """The index, contributions and flags from a module-score frame (samples × modules).

    ``scores`` has one column per module (named ``<module>`` as :func:`sigscore.score`
    returns, or ``score_<module>``). ``coverage`` (a CoverageReport or its records;
    default: ``scores.attrs["sigscore"]["coverage"]``) marks modules the coverage policy
    excluded; a module with no column or an all-NaN column is excluded too. See
    :mod:`sigscore.index` for the formula. Columns of the result: ``index``, ``modules_used``,
    ``flags``, then ``score_<m>`` and ``contrib_<m>`` per module, and with a reference
    (object or saved path) ``pct_index`` and ``pct_<m>`` (mid-rank percentiles, 0-100).
    """
    return index_table(scores, definition, coverage, as_reference(reference))


def resistance_index(
    data: Any,
    signatures: Any = None,
    method: str | None = None,
    reference: Reference | str | Path | None = None,
    definition: Any = None,
    *,
    groupby: Any = None,
    **score_kwargs: Any,
) -> pd.DataFrame:
    """Score ``data`` and return the resistance index per observation, with its reasons.

    Parameters
    ----------
    data
        Any input :func:`sigscore.score` accepts (AnnData, DataFrame samples × genes, ...).
    signatures
        Module gene sets; ``None`` = the shipped signatures of the definition's tier.
    method
        Scoring method; ``None`` = the definition's (singscore: single-sample). Other
        methods are allowed; batch-relative ones are labelled ``sample_independent: false``.
    reference
        A :class:`~sigscore.index.reference.Reference` or its saved path: adds ``pct_index`` and
        ``pct_<module>``, mid-rank percentiles against that cohort.
    definition
        An IndexDefinition or a path to an index YAML; ``None`` = ``resistance_index.yaml``.
    groupby
        Optional group labels per observation (or an ``obs`` column of an AnnData): return
        :func:`aggregate` (mean of cells per group) instead of one row per observation.
    **score_kwargs
        Passed to :func:`sigscore.score` (``layer``, ``genes_axis``, ``coverage_policy``,
        method parameters, ...).

    Returns
    -------
    DataFrame: ``index``, [``pct_index``], ``modules_used``, ``flags``, ``score_<m>``,
    ``contrib_<m>``, [``pct_<m>``]; ``attrs["sigscore"]["manifest"]`` extends the scoring
    manifest with the index definition (name, version, hash) and "Research use only; not a
    diagnostic." Index formula: see :mod:`sigscore.index`.
    """
    _, result = scores_and_index(
        data,
        signatures,
        method=method,
        reference=as_reference(reference),
        definition=definition,
        **score_kwargs,
    )
    if groupby is not None:
        return mean_by_group(result, resolve_vector(data, groupby, "groupby"))
    return result


# single-cell aggregation


def aggregate(
    per_cell_or_data: Any,
    groups: Any,
    *,
    how: Literal["mean", "pseudobulk"] = "mean",
    mask: Any = None,
    definition: Any = None,
    method: str | None = None,
    reference: Reference | str | Path | None = None,
    layer: str | None = None,
    normalize: bool = True,
    min_cells: int = 1,
    **score_kwargs: Any,
) -> pd.DataFrame:
    """The index per group of cells (sample, cluster, cell type), with ``n_cells``.

    ``how="mean"``: the mean over a group's cells of the per-cell index, module scores and
    contributions (a per-cell :func:`resistance_index` result, or data scored first); the
    mean contributions still add up to the mean index. ``how="pseudobulk"``: raw counts are
    summed per group (``layer`` picks the counts of an AnnData), turned into log2(CPM + 1)
    when ``normalize``, and each pseudobulk profile is scored as one sample (with
    ``reference`` percentiles if given). ``groups`` and ``mask`` (e.g. malignant cells only)
    are per-cell vectors or ``obs`` column names. Groups with fewer than ``min_cells`` cells
    are dropped.
    """
    groups = resolve_vector(per_cell_or_data, groups, "groups")
    if mask is not None:
        mask = resolve_vector(per_cell_or_data, mask, "mask")
    if how == "mean":
        frame = (
            per_cell_or_data
            if is_index_frame(per_cell_or_data)
            else resistance_index(
                per_cell_or_data,
                definition=definition,
                method=method,
                layer=layer,
                **score_kwargs,
            )
        )
        return mean_by_group(frame, groups, mask, min_cells)
    if how != "pseudobulk":
        raise UsageError(f"how must be 'mean' or 'pseudobulk', not {how!r}")
    as_kw = {k: score_kwargs.pop(k) for k in EXPRESSION_OPTIONS if k in score_kwargs}
    bulk, n_cells = pseudobulk_profiles(
        per_cell_or_data,
        groups,
        mask,
        layer=layer,
        normalize=normalize,
        min_cells=min_cells,
        **as_kw,
    )
    result = resistance_index(
        bulk, definition=definition, method=method, reference=reference, **score_kwargs
    )
    result.insert(0, "n_cells", n_cells)
    result.index.name = "group"
    result.attrs["sigscore"]["manifest"]["aggregation"] = {
        "how": "pseudobulk",
        "normalize": "log2(CPM+1)" if normalize else None,
        "masked": mask is not None,
    }
    return result
