"""Where results go: one key per step, never two steps in the same obs columns."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UsageError, user_stacklevel
from ._common import log

SCORE_KEY = "sigscore"
INDEX_KEY = "sigscore_index"


# --------------------------------------------------------------------------------------
# where results go: one key per step, never two steps in the same obs columns
# --------------------------------------------------------------------------------------
def owned_columns(adata: Any) -> dict[str, str]:
    """obs column → the sigscore key that wrote it (from the ``uns`` records)."""
    owners: dict[str, str] = {}
    for key, rec in adata.uns.items():
        if isinstance(rec, dict) and "obs_columns" in rec and "step" in rec:
            for col in np.asarray(rec["obs_columns"]).tolist():
                owners[str(col)] = str(key)
    return owners


def release_key(adata: Any, key: str, step: str, method: str) -> None:
    """Remove what an earlier run wrote under ``key``; say so when it was another run."""
    old = adata.uns.get(key)
    if not isinstance(old, dict) or "step" not in old:
        if key in adata.obsm or key in adata.uns:
            warnings.warn(
                f"sigscore.tl.{step}: replacing adata.obsm/uns[{key!r}] written by something "
                "else; pass key_added= to keep it",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return
    before = f"{old.get('step')} with method {old.get('method')}"
    now = f"{step} with method {method}"
    message = (
        f"sigscore.tl.{step}: replacing the results under key_added={key!r} ({before}) by "
        f"{now}; other keys are kept (pass key_added= to keep both)"
    )
    if before != now:
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
    else:
        log.info(message)
    for col in np.asarray(old.get("obs_columns", [])).tolist():
        if col in adata.obs:
            del adata.obs[col]
    for name in np.asarray(old.get("obsm_keys", [])).tolist():
        if name in adata.obsm:
            del adata.obsm[name]


def check_free(adata: Any, key: str, columns: Sequence[str], step: str) -> None:
    """Refuse to overwrite another sigscore key's columns; warn about foreign ones."""
    owners = owned_columns(adata)
    clash = sorted({owners[c] for c in columns if owners.get(c, key) != key})
    if clash:
        raise UsageError(
            f"sigscore.tl.{step}(key_added={key!r}) would overwrite obs columns written under "
            f"key_added={clash[0]!r}; choose another key_added"
        )
    foreign = [c for c in columns if c in adata.obs and c not in owners]
    if foreign:
        warnings.warn(
            f"sigscore.tl.{step}: overwriting obs column(s) {', '.join(foreign[:5])} that "
            "sigscore did not write; pass key_added= to keep them",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def module_frame(adata: Any, frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        frame.to_numpy(dtype=np.float64),
        index=adata.obs_names.copy(),
        columns=[str(c) for c in frame.columns],
    )


def index_columns(adata: Any, key_added: str = INDEX_KEY) -> dict[str, str]:
    """Where :func:`resistance_index` stored its results under ``key_added``.

    Keys ``index``, ``flags``, ``modules_used``, ``pct`` (obs columns), ``scores`` and
    ``contrib`` (obsm keys). Files written before the per-step keys (index in
    ``obs[f"{key}_index"]``) are read too.
    """
    cols = {
        "index": key_added,
        "flags": f"{key_added}_flags",
        "modules_used": f"{key_added}_modules_used",
        "pct": f"{key_added}_pct",
        "scores": key_added,
        "contrib": f"{key_added}_contrib",
    }
    if key_added not in adata.obs and f"{key_added}_index" in adata.obs:
        cols.update(  # layout of sigscore ≤ 0.1.0: the index lived next to tl.score's results
            index=f"{key_added}_index",
            flags=f"{key_added}_index_flags",
            pct=f"{key_added}_pct_index",
        )
    if cols["index"] not in adata.obs or cols["contrib"] not in adata.obsm:
        raise UsageError(
            f"no resistance index under key {key_added!r}; run sigscore.tl.resistance_index"
            f"(adata, key_added={key_added!r}) first"
        )
    return cols


def index_frame_from_adata(adata: Any, key_added: str = INDEX_KEY) -> pd.DataFrame:
    """Rebuild the per-cell index table stored by :func:`resistance_index`."""
    cols = index_columns(adata, key_added)
    contrib = pd.DataFrame(adata.obsm[cols["contrib"]], index=adata.obs_names)
    scores = pd.DataFrame(
        adata.obsm.get(cols["scores"], contrib.iloc[:, :0]), index=adata.obs_names
    )
    out = pd.DataFrame(index=adata.obs_names.copy())
    out["index"] = adata.obs[cols["index"]].to_numpy()
    out["modules_used"] = adata.obs.get(
        cols["modules_used"], pd.Series("", index=adata.obs_names)
    ).to_numpy()
    out["flags"] = adata.obs[cols["flags"]].to_numpy()
    for m in contrib.columns:
        out[f"score_{m}"] = scores[m].to_numpy() if m in scores else np.nan
        out[f"contrib_{m}"] = contrib[m].to_numpy()
    uns = adata.uns.get(key_added, {})
    manifest = json.loads(uns["manifest_json"]) if "manifest_json" in uns else {}
    out.attrs["sigscore"] = {"manifest": manifest, "coverage": []}
    return out
