"""Plots of stored sigscore results (``sigscore.tl``), built on scanpy and matplotlib.

Every function reads what :func:`sigscore.tl.score` / :func:`sigscore.tl.resistance_index`
wrote under ``key_added`` (default: ``"sigscore"`` when ``tl.score`` ran, else
``"sigscore_index"``; :func:`contributions` reads ``"sigscore_index"``), returns the matplotlib ``Figure`` (``fig.axes`` holds the axes),
and writes it to ``save`` (a path; format from the suffix) when given. Nothing is shown
unless ``show=True``.

* :func:`embedding` — scores and/or the index coloured on an embedding (``basis="umap"``);
* :func:`violin` — distribution per group (``kind="violin"`` or ``"box"``);
* :func:`heatmap` — module × group mean scores (optionally z-scored per module);
* :func:`contributions` — per-sample (or per-group) signed module contributions to the
  index as stacked bars, or as a waterfall for one sample; they add up to the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import UsageError

__all__ = ["contributions", "embedding", "heatmap", "violin"]


def _finish(fig: Any, save: str | Path | None, show: bool) -> Any:
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def _key(adata: Any, key_added: str | None) -> str:
    """The key to plot: as given, else tl.score's results, else tl.resistance_index's."""
    if key_added is not None:
        return key_added
    from .tl import INDEX_KEY, SCORE_KEY

    for key in (SCORE_KEY, INDEX_KEY):
        if key in adata.obsm:
            return key
    return SCORE_KEY


def _scores(adata: Any, key_added: str) -> pd.DataFrame:
    if key_added not in adata.obsm:
        raise UsageError(
            f"no sigscore results under key {key_added!r} (adata.obsm); run "
            f"sigscore.tl.score(adata, key_added={key_added!r}) first"
        )
    return pd.DataFrame(adata.obsm[key_added], index=adata.obs_names)


def _index_column(adata: Any, key_added: str) -> str | None:
    """The obs column holding the index stored under ``key_added``, or None."""
    from .tl import index_columns

    try:
        return index_columns(adata, key_added)["index"]
    except UsageError:
        return None


def _keys(adata: Any, key_added: str, keys: str | Sequence[str] | None) -> list[str]:
    """obs columns to plot: modules by name, ``"index"``, or obs column names."""
    from .tl import INDEX_KEY

    index_col = _index_column(adata, key_added)
    if keys is None:
        cols = [index_col] if index_col else []
        cols += [f"{key_added}_{m}" for m in _scores(adata, key_added).columns]
        return [c for c in cols if c in adata.obs]
    out = []
    for k in [keys] if isinstance(keys, str) else list(keys):
        if k == "index":
            col = index_col or _index_column(adata, INDEX_KEY)
            if col is None:
                raise UsageError(
                    "no resistance index stored; run sigscore.tl.resistance_index(adata) first"
                )
            out.append(col)
            continue
        for cand in (k, f"{key_added}_{k}"):
            if cand in adata.obs:
                out.append(cand)
                break
        else:
            raise UsageError(
                f"{k!r} is neither a module scored under {key_added!r} nor an obs column"
            )
    return out


def _labels(adata: Any, groupby: str) -> pd.Series:
    if groupby not in adata.obs:
        raise UsageError(
            f"groupby {groupby!r} is not an obs column; available: {', '.join(adata.obs)}"
        )
    s = adata.obs[groupby]
    return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype(str).astype("category")


def embedding(
    adata: Any,
    basis: str = "umap",
    *,
    keys: str | Sequence[str] | None = None,
    key_added: str | None = None,
    ncols: int = 3,
    cmap: str = "viridis",
    save: str | Path | None = None,
    show: bool = False,
    **kwargs: Any,
) -> Any:
    """Module scores / the index coloured on ``obsm[f"X_{basis}"]`` (``sc.pl.embedding``).

    ``keys``: modules (by name), ``"index"``, or obs columns; default the index (if stored)
    and every module. Extra ``kwargs`` go to :func:`scanpy.pl.embedding`.
    """
    import scanpy as sc

    if f"X_{basis}" not in adata.obsm and basis not in adata.obsm:
        raise UsageError(
            f"no embedding {basis!r} in adata.obsm ({', '.join(adata.obsm) or 'none'}); "
            "compute it first (e.g. sc.tl.umap) or pass basis="
        )
    cols = _keys(adata, _key(adata, key_added), keys)
    fig = sc.pl.embedding(
        adata,
        basis=basis,
        color=cols,
        ncols=ncols,
        color_map=cmap,
        show=False,
        return_fig=True,
        **kwargs,
    )
    return _finish(fig, save, show)


def violin(
    adata: Any,
    groupby: str,
    *,
    keys: str | Sequence[str] | None = None,
    key_added: str | None = None,
    kind: str = "violin",
    ncols: int = 3,
    save: str | Path | None = None,
    show: bool = False,
) -> Any:
    """Per-group distribution of each score (``kind="violin"`` or ``"box"``), one panel each."""
    import matplotlib.pyplot as plt

    if kind not in ("violin", "box"):
        raise UsageError(f"kind must be 'violin' or 'box', not {kind!r}")
    key_added = _key(adata, key_added)
    cols = _keys(adata, key_added, keys)
    labels = _labels(adata, groupby)
    groups = [str(c) for c in labels.cat.categories if (labels == c).any()]
    n = len(cols)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(1.0 + 0.6 * len(groups) * ncols + 1.5 * ncols, 3.0 * nrows),
        squeeze=False,
    )
    for ax, col in zip(axes.ravel(), cols, strict=False):
        values = adata.obs[col].to_numpy(dtype=float)
        data = [values[(labels.astype(str) == g).to_numpy() & np.isfinite(values)] for g in groups]
        pos = np.arange(1, len(groups) + 1)
        if kind == "violin":
            keep = [i for i, d in enumerate(data) if d.size > 1 and np.ptp(d) > 0]
            if keep:
                ax.violinplot([data[i] for i in keep], positions=pos[keep], showmedians=True)
        else:
            ax.boxplot(data, positions=pos, showfliers=False)
        ax.set_xticks(pos)
        ax.set_xticklabels(groups, rotation=45, ha="right")
        ax.set_title(col.removeprefix(f"{key_added}_"))
        ax.set_xlabel(groupby)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _finish(fig, save, show)


def heatmap(
    adata: Any,
    groupby: str,
    *,
    key_added: str | None = None,
    standard_scale: str | None = "module",
    cmap: str = "RdBu_r",
    annotate: bool = True,
    save: str | Path | None = None,
    show: bool = False,
) -> Any:
    """Module × group heatmap of mean scores.

    ``standard_scale="module"`` shows each module's group means as z-scores across groups
    (colours comparable between modules); ``None`` shows raw means. Cells are annotated
    with the raw mean score.
    """
    import matplotlib.pyplot as plt

    key_added = _key(adata, key_added)
    scores = _scores(adata, key_added)
    index_col = _index_column(adata, key_added)
    if index_col is not None:
        scores = scores.assign(index=adata.obs[index_col].to_numpy())
    labels = _labels(adata, groupby)
    means = scores.groupby(labels.to_numpy(), observed=True).mean().T  # modules × groups
    means = means.dropna(how="all")
    shown = means
    if standard_scale == "module":
        sd = means.std(axis=1, ddof=0).replace(0, np.nan)
        shown = means.sub(means.mean(axis=1), axis=0).div(sd, axis=0).fillna(0.0)
    elif standard_scale is not None:
        raise UsageError(f"standard_scale must be 'module' or None, not {standard_scale!r}")
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * means.shape[1], 1.0 + 0.45 * means.shape[0]))
    lim = float(np.nanmax(np.abs(shown.to_numpy()))) or 1.0
    im = ax.imshow(shown.to_numpy(), cmap=cmap, aspect="auto", vmin=-lim, vmax=lim)
    ax.set_xticks(range(means.shape[1]))
    ax.set_xticklabels([str(c) for c in means.columns], rotation=45, ha="right")
    ax.set_yticks(range(means.shape[0]))
    ax.set_yticklabels([str(i) for i in means.index])
    ax.set_xlabel(groupby)
    if annotate and means.size <= 400:
        for i in range(means.shape[0]):
            for j in range(means.shape[1]):
                ax.text(j, i, f"{means.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="z-score of group mean" if standard_scale else "mean score")
    fig.tight_layout()
    return _finish(fig, save, show)


def contributions(
    adata: Any,
    *,
    key_added: str = "sigscore_index",
    groupby: str | None = None,
    samples: Sequence[str] | None = None,
    max_samples: int = 30,
    kind: str = "bar",
    save: str | Path | None = None,
    show: bool = False,
) -> Any:
    """Signed module contributions to the resistance index (they add up to the index).

    ``kind="bar"``: one stacked bar per sample (``samples``, default the ``max_samples``
    with the highest index) or per group (``groupby``: mean contributions of its cells),
    positive contributions stacked up, negative down, the index as a black marker.
    ``kind="waterfall"``: one sample (or group) as a running total from 0 to its index.
    """
    import matplotlib.pyplot as plt

    from .tl import index_columns

    cols = index_columns(adata, key_added)
    contrib = pd.DataFrame(adata.obsm[cols["contrib"]], index=adata.obs_names)
    index = pd.Series(adata.obs[cols["index"]].to_numpy(), index=adata.obs_names)
    if groupby is not None:
        labels = _labels(adata, groupby).to_numpy()
        contrib = contrib.groupby(labels, observed=True).mean()
        index = index.groupby(labels, observed=True).mean()
    if samples is not None:
        missing = [s for s in samples if s not in contrib.index]
        if missing:
            raise UsageError(f"samples not found: {missing[:5]}")
        rows = list(samples)
    else:
        rows = list(index.sort_values(ascending=False).index[:max_samples])
    contrib, index = contrib.loc[rows], index.loc[rows]
    modules = list(contrib.columns)
    colors = plt.get_cmap("tab10" if len(modules) <= 10 else "tab20")(np.arange(len(modules)))
    if kind == "waterfall":
        if len(rows) != 1:
            rows = rows[:1]
        name = rows[0]
        vals = contrib.loc[name].fillna(0.0).to_numpy()
        fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(modules), 3.5))
        start = np.concatenate([[0.0], np.cumsum(vals)[:-1]])
        ax.bar(range(len(vals)), vals, bottom=start, color=colors)
        ax.bar(len(vals), index.loc[name], color="black")
        ax.set_xticks(range(len(vals) + 1))
        ax.set_xticklabels([*modules, "index"], rotation=45, ha="right")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{name}: index {index.loc[name]:.3f}")
    elif kind == "bar":
        fig, ax = plt.subplots(figsize=(2.5 + 0.35 * len(rows), 4.0))
        x = np.arange(len(rows))
        pos_base = np.zeros(len(rows))
        neg_base = np.zeros(len(rows))
        for j, m in enumerate(modules):
            v = contrib[m].fillna(0.0).to_numpy()
            up = np.where(v > 0, v, 0.0)
            down = np.where(v < 0, v, 0.0)
            ax.bar(x, up, bottom=pos_base, color=colors[j], label=m)
            ax.bar(x, down, bottom=neg_base, color=colors[j])
            pos_base += up
            neg_base += down
        ax.scatter(x, index.to_numpy(), color="black", marker="_", s=120, zorder=3, label="index")
        ax.set_xticks(x)
        ax.set_xticklabels([str(r) for r in rows], rotation=90)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel("contribution to index")
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    else:
        raise UsageError(f"kind must be 'bar' or 'waterfall', not {kind!r}")
    fig.tight_layout()
    return _finish(fig, save, show)
