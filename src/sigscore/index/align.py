"""Per-observation vectors (labels, groups, masks, times) aligned to a result's rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import UsageError


# labels and vectors
def resolve_vector(data: Any, values: Any, what: str, index: pd.Index | None = None) -> Any:
    """A per-observation vector given directly or as an ``obs``/column name of ``data``."""
    if isinstance(values, str):
        obs = getattr(data, "obs", None)
        if obs is not None and values in obs.columns:
            return obs[values].to_numpy()
        if isinstance(data, pd.DataFrame) and values in data.columns:
            return data[values].to_numpy()
        raise UsageError(f"{what}={values!r} is not a column of the data's obs/columns")
    return values


def aligned(values: Any, index: pd.Index, what: str) -> pd.Series:
    """``values`` as a Series on ``index``: matched by label if it is a Series, else by order."""
    if isinstance(values, pd.Series):
        if values.index.equals(index):
            return values
        missing = index.difference(values.index)
        if len(missing) == 0:
            return values.reindex(index)
        if len(values) == len(index):
            raise UsageError(
                f"{what}: a Series whose index does not match the samples "
                f"(e.g. {list(missing[:3])} missing); pass matching labels or a plain array"
            )
        raise UsageError(
            f"{what}: {len(missing)} sample(s) have no value, e.g. {list(missing[:3])}"
        )
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != len(index):
        raise UsageError(f"{what}: expected {len(index)} values (one per sample), got {arr.shape}")
    return pd.Series(arr, index=index)


def binary_labels(values: pd.Series, what: str) -> np.ndarray:
    v = values.to_numpy()
    if v.dtype == bool:
        return v.astype(int)
    try:
        f = v.astype(np.float64)
    except (TypeError, ValueError):
        raise UsageError(
            f"{what} must be 0/1 or True/False (1 = resistant / treated); got values like "
            f"{list(pd.unique(v))[:4]}"
        ) from None
    if np.isnan(f).any():
        raise UsageError(f"{what}: {int(np.isnan(f).sum())} missing value(s); drop those samples")
    if not np.isin(f, (0.0, 1.0)).all():
        raise UsageError(f"{what} must contain only 0 and 1; got {sorted(set(f.tolist()))[:5]}")
    return f.astype(int)
